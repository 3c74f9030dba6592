"""The HTTP server beside gRPC: a Starlette app served by uvicorn on the gRPC server's event loop.

:func:`build_app` assembles the routes (OpenAI-compatible ``/v1``, native ``/api/v1``,
``/health``, ``/openapi.json``, ``/docs``, the browser playground at ``/``) behind the
admission middleware. :class:`HttpServer`
binds the port at construction (so a busy port fails ``create_server`` like a busy gRPC
port does), serves TLS / mutual TLS from the same config keys as gRPC, and stops with the
app: after the shared drain, open connections get ``grace`` seconds, then are closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from rnnserve.edge.admission import AdmissionInterceptor
from rnnserve.edge.errors import ConfigurationError, code_for_http_status
from rnnserve.edge.http.admission import AdmissionMiddleware
from rnnserve.edge.http.calls import call_var, error_body, error_headers
from rnnserve.edge.http.completions import Completions
from rnnserve.edge.http.docs_page import docs_html
from rnnserve.edge.http.json_api import json_routes
from rnnserve.edge.http.openapi import openapi_document
from rnnserve.edge.http.playground import ASSETS_PATH, playground_routes
from rnnserve.edge.http.servicers import Servicers
from rnnserve.host.registry import ModelRegistry
from rnnserve.ops.config import ServerConfig

log = logging.getLogger("rnnserve.http")

#: Paths, and path prefixes, that need no token and are never refused (like gRPC health): they hold no model work.
PUBLIC_PATHS = ("/health", "/openapi.json", "/docs", "/")
PUBLIC_PREFIXES = (ASSETS_PATH + "/",)


def build_app(servicers: Servicers, registry: ModelRegistry, admission: AdmissionInterceptor,
              config: ServerConfig) -> Starlette:
    """The ASGI application: every route, behind :class:`~rnnserve.edge.http.admission.AdmissionMiddleware`."""
    limits = config.limits
    document = openapi_document()
    page = docs_html(document)

    async def health(request: Request) -> Response:
        if admission.draining:
            return JSONResponse({"status": "NOT_SERVING"}, 503)
        return JSONResponse({"status": "SERVING"})

    async def openapi(request: Request) -> Response:
        return JSONResponse(document)

    async def docs(request: Request) -> Response:
        return HTMLResponse(page)

    async def http_error(request: Request, exc: Exception) -> Response:
        """Starlette's own errors (no such route, wrong method) in the API's error shape."""
        assert isinstance(exc, HTTPException)
        code = code_for_http_status(exc.status_code)
        call = call_var.get()
        if call is not None:
            call.code = code
        return JSONResponse(error_body(code, f"{exc.detail}: {request.method} {request.url.path}"), exc.status_code,
                            headers={**error_headers(code), **(exc.headers or {})})

    routes = [
        *Completions(servicers, registry, limits.max_message_bytes, limits.max_texts_per_call).routes(),
        *json_routes(servicers, limits.max_message_bytes),
        Route("/health", health, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
        *playground_routes(),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: http_error},
                     middleware=[Middleware(AdmissionMiddleware, admission=admission, public=PUBLIC_PATHS,
                                            public_prefixes=PUBLIC_PREFIXES)])


def _bind(host: str, port: int) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, _, _, _, address = infos[0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        raise ConfigurationError(f"cannot listen for HTTP on {host}:{port}: {exc.strerror or exc} (--http-port 0 "
                                 "turns HTTP off)") from exc
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def _tls(config: ServerConfig) -> dict[str, Any]:
    """uvicorn's TLS settings from the config's tls_cert / tls_key / tls_client_ca (checked by ``edge/auth.py``)."""
    if not config.tls_cert:
        return {}
    settings: dict[str, Any] = {"ssl_certfile": str(config.path(config.tls_cert)),
                                "ssl_keyfile": str(config.path(config.tls_key or ""))}
    if config.tls_client_ca:
        settings |= {"ssl_ca_certs": str(config.path(config.tls_client_ca)), "ssl_cert_reqs": ssl.CERT_REQUIRED}
    return settings


def _quiet_uvicorn() -> None:
    """Per-request lines come from the admission middleware (DEBUG, with the request id, as for
    gRPC calls); uvicorn's access log would repeat them at INFO, and its lifecycle lines say
    nothing ``edge/app.py`` does not."""
    access = logging.getLogger("uvicorn.access")
    access.handlers, access.propagate = [], False  # what uvicorn's own logging config does with access_log off
    lifecycle = logging.getLogger("uvicorn.error")
    if lifecycle.level == logging.NOTSET:
        lifecycle.setLevel(logging.WARNING)


class HttpServer:
    """uvicorn serving ``app`` on ``host:port`` (0: a free port), run as tasks of the current event loop."""

    def __init__(self, app: Starlette, host: str, port: int, config: ServerConfig) -> None:
        self.app = app
        self._socket = _bind(host, port)
        self.port: int = self._socket.getsockname()[1]
        settings = uvicorn.Config(app, loop="none", lifespan="off", log_config=None, access_log=False,
                                  server_header=False, ws="websockets-sansio",
                                  ws_max_size=config.limits.max_message_bytes, timeout_graceful_shutdown=1,
                                  **_tls(config))
        try:
            settings.load()
        except (OSError, ssl.SSLError) as exc:
            self._socket.close()
            raise ConfigurationError(f"cannot serve HTTPS: {exc}") from exc
        _quiet_uvicorn()
        self._server = uvicorn.Server(settings)
        self._server.lifespan = settings.lifespan_class(settings)  # "off": a no-op (what Server.serve sets)
        self._ticks: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._server.startup(sockets=[self._socket])
        self._ticks = asyncio.create_task(self._server.main_loop(), name="rnnserve-http")

    async def stop(self) -> None:
        """Stop accepting, close open connections (after at most a second), release the port."""
        self._server.should_exit = True
        if self._ticks is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticks
        if self._server.started:
            await self._server.shutdown(sockets=[self._socket])
        self._socket.close()
