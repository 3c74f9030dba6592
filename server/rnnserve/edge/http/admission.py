"""Admission for HTTP: the gRPC side's rules, counters and metrics, as ASGI middleware.

Every HTTP request and WebSocket except the public paths (health, the API document and its
page, the playground's static files) goes through the server's one
:class:`~rnnserve.edge.admission.AdmissionInterceptor`,
in the gRPC interceptor's order: request id (the client's ``x-request-id`` header if well
formed, else a new one; set for the call's logs and returned as a response header), bearer
token (``Authorization: Bearer <token>``, or for a WebSocket, which a browser cannot give
headers, the ``rnnserve.bearer.`` subprotocol of ``socket_token.py``; 401), draining (503), the global in-flight cap
``limits.max_in_flight`` shared with gRPC calls (429 with ``retry-after-ms``). When a request
ends, its route, status code name and duration go to the same latency histogram as RPCs
(method label: ``HTTP <verb> <route>``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

import grpc
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from rnnserve.edge.admission import AdmissionInterceptor
from rnnserve.edge.errors import REQUEST_ID_KEY, RnnserveError, code_for_http_status, retry_after_ms_var
from rnnserve.edge.http.calls import HttpCall, call_var, error_response
from rnnserve.edge.http.socket_token import take_socket_token
from rnnserve.ops.logs import request_id_from, request_id_var

log = logging.getLogger("rnnserve.calls")


def _headers(scope: Scope) -> list[tuple[str, str]]:
    return [(key.decode("latin-1").lower(), value.decode("latin-1")) for key, value in scope.get("headers", ())]


class AdmissionMiddleware:
    """ASGI middleware admitting requests through the server's shared admission (see the module docstring)."""

    def __init__(self, app: ASGIApp, admission: AdmissionInterceptor, public: Iterable[str] = (),
                 public_prefixes: Iterable[str] = ()) -> None:
        self.app = app
        self.admission = admission
        #: Paths, and path prefixes, that need no token and are never refused.
        self.public = tuple(public)
        self.public_prefixes = tuple(public_prefixes)

    def _is_public(self, path: str) -> bool:
        return path in self.public or path.startswith(self.public_prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        scope, socket_token = take_socket_token(scope)  # only a WebSocket's scope has subprotocols
        headers = _headers(scope)
        if socket_token is not None and all(k != "authorization" for k, _ in headers):
            headers.append(("authorization", f"Bearer {socket_token}"))
        request_id = request_id_from(next((v for k, v in headers if k == REQUEST_ID_KEY), None))
        request_id_var.set(request_id)
        retry_after_ms_var.set(self.admission.retry_after_ms)
        call = HttpCall(request_id)
        call_var.set(call)
        status = [200]

        async def send_with_id(message: Message) -> None:
            if message["type"] in ("http.response.start", "websocket.http.response.start", "websocket.accept"):
                status[0] = message.get("status", 101)
                message["headers"] = [*message.get("headers", ()), (REQUEST_ID_KEY.encode(), request_id.encode())]
            await send(message)

        if self._is_public(scope["path"]):
            await self.app(scope, receive, send_with_id)
            return
        refusal = self.admission.refusal(self.admission.authorized(headers), exempt=False)
        started = time.perf_counter()
        if refusal is not None:
            await self._refuse(scope, receive, send_with_id, refusal)
            self._observe(scope, call, status[0], started)
            return
        self.admission.enter()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            call.finish()
            self.admission.leave()
            self._observe(scope, call, status[0], started)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, refusal: RnnserveError) -> None:
        log.debug("%s %s refused: %s", scope.get("method", "WEBSOCKET"), scope["path"], refusal.code.name)
        response = error_response(refusal)
        if scope["type"] == "http":
            await response(scope, receive, send)
            return
        socket = WebSocket(scope, receive, send)
        if "websocket.http.response" in scope.get("extensions", {}):
            await socket.send_denial_response(response)
        else:
            await socket.close(code=1008 if refusal.code == grpc.StatusCode.UNAUTHENTICATED else 1013)

    def _observe(self, scope: Scope, call: HttpCall, status: int, started: float) -> None:
        observe = self.admission.observe
        if observe is None and not log.isEnabledFor(logging.DEBUG):
            return
        route = scope.get("route")
        path = getattr(route, "path", None) or "(unrouted)"
        method = f"HTTP {scope.get('method', 'WEBSOCKET')} {path}"
        code = (call.code or code_for_http_status(status)).name
        seconds = time.perf_counter() - started
        if observe is not None:
            observe(method, code, seconds)
        log.debug("%s %s %.1f ms", method, code, seconds * 1e3)
