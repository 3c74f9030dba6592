"""The example third-party plugin (examples/plugins/jordan_lm), installed by scripts/bootstrap:
discovered through its entry point, its model served by a default server, its command registered."""

from __future__ import annotations

from rnnserve.host.plugins import load_plugins
from rnnserve.ops.config import ServerConfig
from rnnserve.testing.server import running_server
from rnnserve_client import Client


def test_jordan_lm_is_discovered_and_its_model_is_served_by_default() -> None:
    host = load_plugins()
    jordan = host.plugin("jordan-lm")
    assert jordan is not None, "run ./scripts/bootstrap: it installs examples/plugins/jordan_lm"
    assert (jordan.distribution, jordan.state) == ("rnnserve-jordan-lm", "loaded"), jordan
    assert jordan.hooks == ["register_backends", "register_commands", "register_models"]
    assert jordan.models == ["austen-jordan-lm"] and jordan.commands == ["train jordan-lm"]
    with running_server(ServerConfig(), host) as server, Client(server.target, timeout=30) as client:
        model = client.get_model("austen-jordan-lm")
        assert (model.state, model.backend, model.kind) == ("ready", "jordan-lm", "language-model")
        assert model.card.metrics["val_perplexity"] > 1 and "Jordan" in model.card.description
        assert "austen-jordan-lm" in [m.name for m in client.list_models()]
        result = client.generate("austen-jordan-lm", "Mr. Bennet", max_new_tokens=12, seed=1)
        assert result.text and result.finish_reason in ("length", "end_of_text")
