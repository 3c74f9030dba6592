"""Shared fixtures: a real server on a loopback port hosting the toy test plugin."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from rnnserve.config import Limits, ModelSpec, ServerConfig
from rnnserve.plugins import PluginHost, load_plugins
from rnnserve.testing.server import ServerThread, running_server
from rnnserve_client import Client
from tests.support import toy_plugin

# Test guard: rnnserve's own tests load only these plugins, whatever else a developer has
# installed (an exported RNNSERVE_PLUGINS still wins).
os.environ.setdefault("RNNSERVE_PLUGINS", "char-lstm,writing-assistant,gru-seq2seq,jordan-lm")

TOY_MODELS = (
    ModelSpec("toy-slow", "toy-lm", options={"step_delay": 0.01}),
    ModelSpec("toy-crash", "toy-lm", options={"fail_after": 3}),
    ModelSpec("toy-tr", "toy-translator", options={"delay": 0.05}),
    ModelSpec("toy-assist", "toy-assistant"),
    ModelSpec("toy-broken", "toy-broken"),
)


@pytest.fixture(scope="session")
def toy_host() -> PluginHost:
    """Plugins: only the toy test plugin, registered through the regular hooks."""
    return load_plugins(extra=[("toy", toy_plugin)], discover=False)


@pytest.fixture(scope="module")
def server(toy_host: PluginHost) -> Iterator[ServerThread]:
    """A running server with the toy models (``toy`` comes from the plugin's register_models)."""
    with running_server(ServerConfig(models=TOY_MODELS, limits=Limits(max_queue=64)), toy_host) as srv:
        yield srv


@pytest.fixture
def client(server: ServerThread) -> Iterator[Client]:
    with Client(server.target, timeout=30) as c:
        yield c


def backend(server: ServerThread, name: str) -> toy_plugin.RecitingLM:
    """The backend object of a model hosted by ``server`` (to read its counters)."""
    model = server.app.registry.find(name).backend
    assert model is not None
    return model  # type: ignore[return-value]
