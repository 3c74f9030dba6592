"""Domain errors and the one place that maps them to gRPC status codes.

Code anywhere in the server raises these named errors; only :func:`grpc_errors` (applied
to every servicer method) and :func:`abort` (used by it and by the admission interceptor)
turn them into a status. The HTTP API (``rnnserve.edge.http``) reaches the same servicers and
answers with the HTTP status :data:`HTTP_STATUS` gives each code, so both transports
report an error alike. Any other exception becomes INTERNAL with a generic message and
the call's request id; its traceback goes to the server log, never to the client.

Every status leaves through :func:`abort`, which attaches the trailing metadata:
``x-request-id`` always, and ``retry-after-ms`` on RESOURCE_EXHAUSTED (whether a
scheduler's bounded queue or the server's in-flight cap refused the call). Messages are
passed through :func:`redact_paths` (absolute file-system paths become their last
component) and clipped to :data:`MAX_MESSAGE_CHARS`.
"""

from __future__ import annotations

import functools
import inspect
import logging
import re
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, TypeVar

import grpc
from grpc import aio

from rnnserve.ops.logs import new_request_id, request_id_var

log = logging.getLogger("rnnserve.errors")

REQUEST_ID_KEY = "x-request-id"
RETRY_AFTER_KEY = "retry-after-ms"
#: Suggested client back-off (ms) sent with RESOURCE_EXHAUSTED; the server sets it per call
#: from ``limits.retry_after_ms``.
DEFAULT_RETRY_AFTER_MS = 500
retry_after_ms_var: ContextVar[int] = ContextVar("rnnserve_retry_after_ms", default=DEFAULT_RETRY_AFTER_MS)
#: Status messages travel in HTTP/2 trailers: keep them well below metadata size limits.
MAX_MESSAGE_CHARS = 1000

_SEGMENT = r"[^\s'\"`:,;()\[\]{}<>|/\\]+"
#: POSIX (``/a/b``, ``~/a/b``) and Windows (``C:\a\b``) absolute paths, not URLs or ratios.
_ABSOLUTE_PATH = re.compile(
    r"(?<=['\"])~?/[^'\"\n]*?([^'\"\n/]+)/?(?=['\"])"  # quoted: may hold spaces
    rf"|(?<![\w.:/\\-])~?/(?:{_SEGMENT}/)*({_SEGMENT})/?"
    rf"|\b[A-Za-z]:\\(?:{_SEGMENT}\\)*({_SEGMENT})\\?"
)


def redact_paths(text: str) -> str:
    """``text`` with every absolute file-system path replaced by its last component.

    The one place that keeps server paths out of what clients see: model FAILED reasons
    (``host/registry.py``) and every status message (:func:`status_for`) go through it.
    """
    return _ABSOLUTE_PATH.sub(lambda m: next(g for g in m.groups() if g is not None), text)


class RnnserveError(Exception):
    """Base of all errors that carry a client-facing message."""

    code = grpc.StatusCode.INTERNAL


class InvalidArgument(RnnserveError):
    """A parameter is malformed or out of range."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class LimitExceeded(InvalidArgument):
    """An input is over a configured limit; the message names the limit."""

    def __init__(self, what: str, value: int | float, limit_name: str, limit: int | float) -> None:
        super().__init__(f"{what} is {value}, over the server limit {limit_name}={limit}")


class ModelNotFound(RnnserveError):
    """No model of that name (or of that kind) is configured; the message lists what is.

    ``kind`` is the kind asked for as the API names kinds ("language-model", "translator",
    "assistant"; "" for any model). When a model of that name exists but is of another
    kind, ``actual`` names its kind and the service that serves it, e.g.
    ``("language-model", "rnnserve.v1.Generation")``.
    """

    code = grpc.StatusCode.NOT_FOUND

    def __init__(self, name: str, kind: str, available: list[str], actual: tuple[str, str] | None = None) -> None:
        models = f"models of kind {kind}" if kind else "models"
        listing = f"{models}: {', '.join(available)}" if available else f"this server has no {models}"
        if actual is not None:
            actual_kind, service = actual
            super().__init__(f"model {name!r} is {_article(actual_kind)} {actual_kind}, served by {service}, "
                             f"not {_article(kind)} {kind}; {listing}")
        else:
            super().__init__(f"no {kind or 'model'} named {name!r}; {listing}")


def _article(noun: str) -> str:
    return "an" if noun[:1] in "aeiou" else "a"


class ModelUnavailable(RnnserveError):
    """The model exists but is still loading; retrying shortly will work."""

    code = grpc.StatusCode.UNAVAILABLE


class ModelFailed(RnnserveError):
    """The model failed to load (the reason is included); retrying will not help."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class Overloaded(RnnserveError):
    """A bounded queue is full; retry later."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Draining(RnnserveError):
    """The server is shutting down and accepts no new calls."""

    code = grpc.StatusCode.UNAVAILABLE

    def __init__(self) -> None:
        super().__init__("server is shutting down; retry on another replica")


class SessionError(RnnserveError):
    """A Session stream was used out of protocol (e.g. an edit before ``open``)."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class Unauthenticated(RnnserveError):
    """The call carries no valid bearer token."""

    code = grpc.StatusCode.UNAUTHENTICATED

    def __init__(self) -> None:
        super().__init__("missing or invalid bearer token (metadata 'authorization: Bearer <token>')")


class ModelHung(RnnserveError):
    """The model's step ran longer than ``step_timeout_s``: it is marked FAILED and its requests fail."""

    code = grpc.StatusCode.UNAVAILABLE


class ConfigurationError(RnnserveError):
    """The configuration is invalid; the message lists the valid choices."""


class PluginError(RnnserveError):
    """A plugin failed to import or registered something invalid."""


#: Each gRPC status code's HTTP status (the mapping ``google.rpc.Code`` documents, as
#: grpc-gateway uses it) and the error ``type`` the HTTP API reports with it (the names of
#: OpenAI's error objects, which OpenAI-style clients show).
HTTP_STATUS: dict[grpc.StatusCode, tuple[int, str]] = {
    grpc.StatusCode.OK: (200, ""),
    grpc.StatusCode.CANCELLED: (499, "cancelled"),
    grpc.StatusCode.UNKNOWN: (500, "server_error"),
    grpc.StatusCode.INVALID_ARGUMENT: (400, "invalid_request_error"),
    grpc.StatusCode.DEADLINE_EXCEEDED: (504, "timeout_error"),
    grpc.StatusCode.NOT_FOUND: (404, "not_found_error"),
    grpc.StatusCode.ALREADY_EXISTS: (409, "invalid_request_error"),
    grpc.StatusCode.PERMISSION_DENIED: (403, "permission_error"),
    grpc.StatusCode.UNAUTHENTICATED: (401, "authentication_error"),
    grpc.StatusCode.RESOURCE_EXHAUSTED: (429, "rate_limit_error"),
    grpc.StatusCode.FAILED_PRECONDITION: (400, "invalid_request_error"),
    grpc.StatusCode.ABORTED: (409, "server_error"),
    grpc.StatusCode.OUT_OF_RANGE: (400, "invalid_request_error"),
    grpc.StatusCode.UNIMPLEMENTED: (501, "server_error"),
    grpc.StatusCode.INTERNAL: (500, "server_error"),
    grpc.StatusCode.UNAVAILABLE: (503, "service_unavailable_error"),
    grpc.StatusCode.DATA_LOSS: (500, "server_error"),
}


def code_for_http_status(status: int) -> grpc.StatusCode:
    """The status code an HTTP status stands for (the first in :data:`HTTP_STATUS`; 2xx is OK),
    for HTTP errors no servicer raised (an unknown path, a wrong method)."""
    if status < 400:
        return grpc.StatusCode.OK
    for code, (http, _) in HTTP_STATUS.items():
        if http == status:
            return code
    return grpc.StatusCode.INVALID_ARGUMENT if status < 500 else grpc.StatusCode.INTERNAL


def status_for(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """The status code and client-facing message for an exception.

    Anything but an :class:`RnnserveError` is INTERNAL with a generic message naming the
    call's request id; the exception and its traceback go to the server log only.
    """
    if isinstance(exc, RnnserveError):
        message = redact_paths(str(exc))
        if len(message) > MAX_MESSAGE_CHARS:
            message = message[: MAX_MESSAGE_CHARS - 3] + "..."
        return exc.code, message
    request_id = request_id_var.get() or new_request_id()
    log.error("internal error (request id %s): %s", request_id, type(exc).__name__, exc_info=exc)
    return grpc.StatusCode.INTERNAL, f"internal error (request id {request_id}); details are in the server log"


def trailing_metadata(code: grpc.StatusCode | None = None) -> tuple[tuple[str, str], ...]:
    """The call's trailing metadata: its request id, and a retry hint with RESOURCE_EXHAUSTED."""
    items: list[tuple[str, str]] = []
    request_id = request_id_var.get()
    if request_id:
        items.append((REQUEST_ID_KEY, request_id))
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        items.append((RETRY_AFTER_KEY, str(retry_after_ms_var.get())))
    return tuple(items)


async def abort(context: aio.ServicerContext, exc: BaseException) -> None:
    """End the call with the status for ``exc`` and the call's trailing metadata (raises AbortError)."""
    code, message = status_for(exc)
    await context.abort(code, message, trailing_metadata(code))


F = TypeVar("F", bound=Callable[..., Any])


def grpc_errors(method: F) -> F:
    """Wrap an async servicer method (unary or streaming) so errors become statuses."""

    if inspect.isasyncgenfunction(method):

        @functools.wraps(method)
        async def stream_wrapper(self: Any, request: Any, context: aio.ServicerContext) -> Any:
            try:
                async for item in method(self, request, context):
                    yield item
            except aio.AbortError:
                raise
            except Exception as exc:
                await abort(context, exc)

        return stream_wrapper  # type: ignore[return-value]

    @functools.wraps(method)
    async def unary_wrapper(self: Any, request: Any, context: aio.ServicerContext) -> Any:
        try:
            return await method(self, request, context)
        except aio.AbortError:
            raise
        except Exception as exc:
            await abort(context, exc)

    return unary_wrapper  # type: ignore[return-value]
