"""One real server on a loopback port with exactly what a default ``rnnserve serve`` loads.

The plugins come from their entry points, as the CLI finds them (``RNNSERVE_PLUGINS``,
set in tests/conftest.py, keeps a developer's other plugins out); the config is the
default one (no file), so the server loads every model the installed plugins ship.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rnnserve.host.plugins import PluginHost, load_plugins
from rnnserve.ops.config import load_config
from rnnserve.testing.server import ServerThread, running_server
from rnnserve_client import Client

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "shipped"
#: One line per model measured by test_shipped_quality.py, shown at the end of the run (pass or fail).
QUALITY: list[str] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if QUALITY:
        terminalreporter.write_sep("-", "shipped model quality (tests/shipped/test_shipped_quality.py FLOORS)")
        for line in QUALITY:
            terminalreporter.write_line(line)


@pytest.fixture(scope="package")
def shipped_host() -> PluginHost:
    """The plugins `rnnserve serve` loads (entry-point discovery, allowlist honoured)."""
    return load_plugins()


@pytest.fixture(scope="package")
def shipped_server(shipped_host: PluginHost) -> Iterator[ServerThread]:
    """A server with the default config: every shipped model, loaded (READY or FAILED)."""
    with running_server(load_config(None), shipped_host) as server:
        yield server


@pytest.fixture
def shipped_client(shipped_server: ServerThread) -> Iterator[Client]:
    with Client(shipped_server.target, timeout=120) as client:
        yield client
