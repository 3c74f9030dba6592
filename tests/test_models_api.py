"""Models service: list, get, states, cards, kinds."""

from __future__ import annotations

import pytest

from rnnserve.host.plugins import PluginHost
from rnnserve.ops.config import ModelSpec, ServerConfig
from rnnserve.testing.server import running_server
from rnnserve_client import Client, errors


def test_list_models_reports_every_model_with_its_state(client: Client) -> None:
    models = {m.name: m for m in client.list_models()}
    assert set(models) == {"toy", "toy-slow", "toy-crash", "toy-tr", "toy-assist", "toy-broken"}
    assert models["toy"].state == "ready" and models["toy"].kind == "language-model"
    assert models["toy-tr"].kind == "translator" and models["toy-assist"].kind == "assistant"
    broken = models["toy-broken"]
    assert broken.state == "failed" and "weights are corrupt" in broken.reason


def test_list_models_filters_by_kind(client: Client) -> None:
    assert [m.name for m in client.list_models(kind="translator")] == ["toy-tr"]


def test_get_model_has_plugin_card_and_counters(client: Client) -> None:
    client.generate("toy", "the", max_new_tokens=4)
    model = client.get_model("toy")
    assert model.backend == "toy-lm" and model.plugin == "local"
    assert model.parameter_count == 42
    assert model.card.description == "reciting toy model"
    assert model.card.metrics == {"test_bits_per_char": 0.5}
    assert model.stats.steps_total >= 3 and model.stats.requests_total >= 1


def test_get_unknown_model_is_not_found(client: Client) -> None:
    with pytest.raises(errors.NotFound, match="toy-slow"):
        client.get_model("nope")


def test_loaded_models_are_kept_out_of_the_garbage_collectors_scans(toy_host: PluginHost) -> None:
    """What a model keeps for good is frozen (gc.freeze) once it is loaded: a full collection
    over it held the interpreter lock for ~100 ms under every request in flight."""
    import gc

    gc.unfreeze()
    config = ServerConfig(default_models=False, models=(ModelSpec("toy", "toy-lm"),))
    with running_server(config, toy_host) as srv:
        model = srv.app.registry.find("toy").backend
        assert gc.get_freeze_count() > 0
        assert not any(o is model for o in gc.get_objects())  # frozen objects are left out of the scans
