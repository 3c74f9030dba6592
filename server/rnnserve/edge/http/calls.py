"""An HTTP request as a call of the gRPC servicers: the context they are given, and errors as JSON.

The HTTP routes are adapters: they build the servicer's protobuf request, call the very
servicer method gRPC calls (``services/*.py``) with a :class:`CallContext` standing in for
``grpc.aio.ServicerContext``, and render what comes back. A servicer ends a failed call
through ``errors.abort`` -> ``context.abort(code, message)``, which here raises
:class:`CallAborted`; :func:`error_response` turns it (or any exception of the HTTP layer's
own, through ``errors.status_for``) into the HTTP status ``errors.HTTP_STATUS`` gives the
code, with a body in the shape OpenAI-style clients parse::

    {"error": {"message": "...", "type": "invalid_request_error", "param": null, "code": "invalid_argument"}}
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc
from grpc import aio
from starlette.requests import Request
from starlette.responses import JSONResponse

from rnnserve.edge.errors import HTTP_STATUS, REQUEST_ID_KEY, RETRY_AFTER_KEY, retry_after_ms_var, status_for
from rnnserve.ops.logs import request_id_var

T = TypeVar("T")


class CallAborted(aio.AbortError):
    """A servicer ended the call with a status (raised by :meth:`CallContext.abort`)."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


class CallContext:
    """What the servicers use of ``grpc.aio.ServicerContext``, for a call that arrived over HTTP.

    ``add_done_callback`` callbacks run once, from :meth:`finish`, when the HTTP request ends
    for any reason (answered, failed, or the client went away): that is how a servicer's
    request is cancelled, exactly as when a gRPC call ends.
    """

    def __init__(self) -> None:
        self._callbacks: list[Callable[[Any], None]] = []
        self._done = False
        call = call_var.get()
        if call is not None:  # finished with the HTTP request at the latest, however it ends
            call.contexts.append(self)

    def add_done_callback(self, callback: Callable[[Any], None]) -> None:
        if self._done:
            callback(self)
        else:
            self._callbacks.append(callback)

    async def abort(self, code: grpc.StatusCode, details: str = "", trailing_metadata: Any = ()) -> None:
        raise CallAborted(code, details)

    def finish(self) -> None:
        """The HTTP request ended: run the done callbacks (once)."""
        if self._done:
            return
        self._done = True
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback(self)


@dataclass
class HttpCall:
    """What the admission middleware records about one HTTP request (shared with its handler's tasks)."""

    request_id: str
    #: The status code of the outcome, when a handler knows it better than the HTTP status does.
    code: grpc.StatusCode | None = None
    #: The servicer calls the request made; the middleware finishes them when the request ends.
    contexts: list[CallContext] = field(default_factory=list)

    def finish(self) -> None:
        for context in self.contexts:
            context.finish()


#: The HTTP request being served (set by the admission middleware).
call_var: ContextVar[HttpCall | None] = ContextVar("rnnserve_http_call", default=None)


def error_status(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """The status code and client-facing message of ``exc`` (a servicer's abort, or any exception)."""
    if isinstance(exc, CallAborted):
        return exc.code, exc.details
    return status_for(exc)


def error_body(code: grpc.StatusCode, message: str, param: str | None = None) -> dict[str, Any]:
    """The JSON error object for a status: OpenAI's shape, ``code`` the status code's name in lower case."""
    return {"error": {"message": message, "type": HTTP_STATUS[code][1], "param": param, "code": code.name.lower()}}


def error_headers(code: grpc.StatusCode) -> dict[str, str]:
    """The request id, and with RESOURCE_EXHAUSTED the retry hint (``retry-after-ms`` and ``Retry-After``)."""
    headers = {}
    request_id = request_id_var.get()
    if request_id:
        headers[REQUEST_ID_KEY] = request_id
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        retry_ms = retry_after_ms_var.get()
        headers[RETRY_AFTER_KEY] = str(retry_ms)
        headers["retry-after"] = str(max(1, math.ceil(retry_ms / 1000)))
    return headers


def error_response(exc: BaseException) -> JSONResponse:
    """The HTTP answer for an error: status from ``errors.HTTP_STATUS``, OpenAI-shaped body, no traceback."""
    code, message = error_status(exc)
    call = call_var.get()
    if call is not None:
        call.code = code
    return JSONResponse(error_body(code, message, getattr(exc, "param", None)), HTTP_STATUS[code][0],
                        headers=error_headers(code))


class ClientGone(Exception):
    """The client disconnected before its answer was ready."""


async def unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """``work``'s result; if the client disconnects first (its body already read), ``work`` is cancelled
    (and with it the servicer's request, through its context) and :class:`ClientGone` raised."""
    task = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(_disconnect(request))
    try:
        await asyncio.wait((task, watch), return_when=asyncio.FIRST_COMPLETED)
    finally:
        watch.cancel()
    if not task.done():
        task.cancel()
        call = call_var.get()
        if call is not None:
            call.code = grpc.StatusCode.CANCELLED
        raise ClientGone
    return task.result()


async def _disconnect(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass
