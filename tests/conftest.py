"""Shared fixtures: a real server on a loopback port hosting the toy test plugin."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest
import torch

from rnnserve.host import precision
from rnnserve.host.plugins import PluginHost, load_plugins
from rnnserve.ops.config import Limits, ModelSpec, ServerConfig
from rnnserve.testing.server import ServerThread, running_server
from rnnserve_client import Client
from tests.support import toy_plugin

# Test guard: rnnserve's own tests load only these plugins, whatever else a developer has
# installed (an exported RNNSERVE_PLUGINS still wins).
os.environ.setdefault("RNNSERVE_PLUGINS", "char-lstm,writing-assistant,gru-seq2seq,jordan-lm")
# Hermetic precision choices (rnnserve.host.precision_choice): one cache for the session, shared by
# the servers it starts (a shipped model measures once), never the developer's own.
os.environ["RNNSERVE_CACHE_DIR"] = tempfile.mkdtemp(prefix="rnnserve-test-cache-")
atexit.register(shutil.rmtree, os.environ["RNNSERVE_CACHE_DIR"], ignore_errors=True)

#: The CPU features that decide kernels and ``dtype = "auto"`` (printed in the pytest header).
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_bf16", "amx_int8")
#: Environment variables that force those choices.
FORCING_ENV = (*precision.KERNEL_LIMITS, precision.NATIVE_BF16_ENV, "RNNSERVE_PRECISION")


def pytest_report_header() -> list[str]:
    """Which CPU this run is on: results of reduced-precision paths depend on it."""
    flags = precision.cpu_flags()
    forced = " ".join(f"{name}={os.environ[name]}" for name in FORCING_ENV if name in os.environ) or "none"
    return [f"cpu: {precision.cpu_model()}, {os.cpu_count()} cores; "
            + " ".join(f"{flag}={'yes' if flag in flags else 'no'}" for flag in ISA_FLAGS),
            f"torch {torch.__version__}: kernels {torch.backends.cpu.get_cpu_capability()}, "
            f"dtype auto: measured per model (unmeasured guess {precision.precision_of({'dtype': 'auto'}, 'auto')}); "
            f"forced: {forced}"]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """``-q`` hides the header: say the CPU at the end instead."""
    if config.get_verbosity() < 0:
        for line in pytest_report_header():
            terminalreporter.write_line(line)


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
