"""Domain errors and the one place that maps them to gRPC status codes.

Code anywhere in the server raises these named errors; only :func:`grpc_errors` (applied
to every servicer method) turns them into a status. Any other exception becomes INTERNAL
with a generic message and a request id; its traceback goes to the server log, never to
the client.
"""

from __future__ import annotations

import functools
import inspect
import logging
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import grpc
from grpc import aio

log = logging.getLogger("rnnserve.errors")


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
    """No model of that name (or of that kind) is configured; the message lists what is."""

    code = grpc.StatusCode.NOT_FOUND

    def __init__(self, name: str, kind: str, available: list[str]) -> None:
        listing = ", ".join(available) if available else "none"
        super().__init__(f"no {kind} model named {name!r}; available {kind} models: {listing}")


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


class ConfigurationError(RnnserveError):
    """The configuration is invalid; the message lists the valid choices."""


class PluginError(RnnserveError):
    """A plugin failed to import or registered something invalid."""


def status_for(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """The status code and client-facing message for an exception."""
    if isinstance(exc, RnnserveError):
        return exc.code, str(exc)
    request_id = uuid.uuid4().hex[:12]
    log.error("internal error (request id %s)", request_id, exc_info=exc)
    return grpc.StatusCode.INTERNAL, f"internal error (request id {request_id}); details are in the server log"


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
                await context.abort(*status_for(exc))

        return stream_wrapper  # type: ignore[return-value]

    @functools.wraps(method)
    async def unary_wrapper(self: Any, request: Any, context: aio.ServicerContext) -> Any:
        try:
            return await method(self, request, context)
        except aio.AbortError:
            raise
        except Exception as exc:
            await context.abort(*status_for(exc))

    return unary_wrapper  # type: ignore[return-value]
