"""A real rnnserve server on a free loopback port, run on a background thread.

Used by rnnserve's own tests and by plugin authors' tests (see ``rnnserve.testing``)::

    with running_server(config, host) as server:
        client = Client(server.target)
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from rnnserve.edge.app import App, create_server
from rnnserve.host.plugins import PluginHost
from rnnserve.ops.config import ServerConfig

T = TypeVar("T")


class ServerThread:
    """An event loop on its own thread hosting one started ``App``."""

    def __init__(self, config: ServerConfig, host: PluginHost | None, http: bool = False) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="rnnserve-test-server", daemon=True)
        self._thread.start()
        self.app: App = self.call(self._start(config, host, http))

    async def _start(self, config: ServerConfig, host: PluginHost | None, http: bool) -> App:
        app = create_server("127.0.0.1:0", config, host, http_port=0 if http else None)
        await app.start()
        return app

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.app.port}"

    @property
    def http_url(self) -> str:
        """Base URL of the HTTP API (``running_server(..., http=True)``), e.g. ``http://127.0.0.1:41234``."""
        if self.app.http is None:
            raise RuntimeError("this server has no HTTP API: start it with running_server(..., http=True)")
        return f"{'https' if self.app.tls else 'http'}://127.0.0.1:{self.app.http.port}"

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        """Run a coroutine on the server's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self, grace: float = 0.5) -> None:
        try:
            self.call(self.app.stop(grace))
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=10)
            self.loop.close()


@contextmanager
def running_server(config: ServerConfig | None = None, host: PluginHost | None = None,
                   wait_loaded: float = 120, http: bool = False) -> Iterator[ServerThread]:
    """Start a server on 127.0.0.1:0 (with ``http``, the HTTP API on another free port), wait until
    every model is loaded, stop it afterwards."""
    server = ServerThread(config or ServerConfig(), host, http)
    try:
        server.app.registry.wait_loaded(wait_loaded)
        yield server
    finally:
        server.close()
