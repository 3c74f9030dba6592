"""Models service: list, get, states, cards, kinds."""

from __future__ import annotations

import pytest

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
