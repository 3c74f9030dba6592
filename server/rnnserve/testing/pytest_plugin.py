"""rnnserve's pytest plugin (entry point ``pytest11``: loaded automatically wherever rnnserve is installed).

Fixtures for a plugin author's own tests, each overridable in a ``conftest.py`` or a
test class:

* ``rnnserve_plugins`` (class scope): the plugins to load, as entry-point names or hooks
  modules; default ``None``: every installed plugin (``RNNSERVE_PLUGINS`` applies).
* ``rnnserve_config`` (class scope): the :class:`~rnnserve.ops.config.ServerConfig`; default:
  serve what the plugins ship.
* ``rnnserve_host`` (class scope): the :class:`~rnnserve.host.plugins.PluginHost` built from them.
* ``rnnserve_server`` (class scope): a real server on ``127.0.0.1:0`` in a thread, every
  model loaded (``.target`` is its address, ``.app.registry`` its models).
* ``rnnserve_client``: a :class:`rnnserve_client.Client` connected to it.

Example ``conftest.py``::

    import pytest
    from rnnserve.ops.config import ModelSpec, ServerConfig

    @pytest.fixture(scope="class")
    def rnnserve_plugins():
        return ["my-lm"]

    @pytest.fixture(scope="class")
    def rnnserve_config():
        return ServerConfig(default_models=False, models=(ModelSpec("m", "my-lm", path="model"),))

The conformance contracts (:mod:`rnnserve.testing.contracts`) bring their own fixtures
of the same names and do not need this plugin. This module imports nothing heavy:
torch, grpc and the server load only when a fixture is used.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from rnnserve.host.plugins import PluginHost
    from rnnserve.ops.config import ServerConfig
    from rnnserve.testing.server import ServerThread
    from rnnserve_client import Client

# Plain asserts in the contracts report their operands (pytest rewrites them on import).
pytest.register_assert_rewrite("rnnserve.testing.contracts")


@pytest.fixture(scope="class")
def rnnserve_plugins() -> Sequence[Any] | None:
    """The plugins to load (entry-point names or hooks modules); None: every installed one."""
    return None


@pytest.fixture(scope="class")
def rnnserve_config() -> ServerConfig:
    """The server's configuration; by default it serves the models the plugins ship."""
    from rnnserve.ops.config import ServerConfig

    return ServerConfig()


@pytest.fixture(scope="class")
def rnnserve_host(rnnserve_plugins: Sequence[Any] | None) -> PluginHost:
    from rnnserve.host.plugins import load_plugins
    from rnnserve.testing.hosts import plugin_host

    return load_plugins() if rnnserve_plugins is None else plugin_host(*rnnserve_plugins)


@pytest.fixture(scope="class")
def rnnserve_server(rnnserve_config: ServerConfig, rnnserve_host: PluginHost) -> Iterator[ServerThread]:
    from rnnserve.testing.server import running_server

    with running_server(rnnserve_config, rnnserve_host) as server:
        yield server


@pytest.fixture
def rnnserve_client(rnnserve_server: ServerThread) -> Iterator[Client]:
    from rnnserve_client import Client

    with Client(rnnserve_server.target, timeout=60) as client:
        yield client
