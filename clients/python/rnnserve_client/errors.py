"""Typed exceptions for failed calls.

Every gRPC status the server returns (on a unary call, or in the middle of a stream)
reaches the caller as a subclass of :class:`RnnserveError`, one per status code, so code
can catch ``errors.NotFound`` instead of comparing ``grpc.StatusCode`` values. The
original ``grpc.RpcError`` stays available as ``__cause__``.
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc
from grpc import aio

#: Trailing metadata key in which the server may suggest a delay before retrying.
RETRY_AFTER_KEY = "retry-after-ms"


class RnnserveError(Exception):
    """Base of every error raised for a failed call.

    Attributes:
        code: The gRPC status code.
        details: The server's message.
        retry_after: Seconds the server asked the client to wait before retrying (from
            the ``retry-after-ms`` trailing metadata), or None.
    """

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, details: str, *, retry_after: float | None = None) -> None:
        super().__init__(f"{self.code.name}: {details}")
        self.details = details
        self.retry_after = retry_after


class Cancelled(RnnserveError):
    """The call was cancelled (usually by the client)."""

    code = grpc.StatusCode.CANCELLED


class Unknown(RnnserveError):
    """UNKNOWN status, or an RPC failure that carries no status at all."""

    code = grpc.StatusCode.UNKNOWN


class InvalidArgument(RnnserveError):
    """A parameter is malformed, out of range or over a server limit."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class InvalidParameter(InvalidArgument, ValueError):
    """A call's parameter the client refused before sending anything: out of its field's range
    (e.g. a negative ``top_k``), of the wrong type, or an unknown name for an enum.

    The same ``code`` (INVALID_ARGUMENT) as the server's refusals, and like them the message
    names the parameter; ``parameter`` holds its name. Also a ``ValueError``.
    """

    def __init__(self, parameter: str, details: str) -> None:
        super().__init__(details)
        self.parameter = parameter


class DeadlineExceeded(RnnserveError):
    """The call's timeout expired before it finished."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED


class NotFound(RnnserveError):
    """No model of that name (or of that kind)."""

    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(RnnserveError):
    """ALREADY_EXISTS status."""

    code = grpc.StatusCode.ALREADY_EXISTS


class PermissionDenied(RnnserveError):
    """The caller is authenticated but not allowed to make this call."""

    code = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhausted(RnnserveError):
    """The server is overloaded (a queue is full) or a message is over the size limit."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class FailedPrecondition(RnnserveError):
    """The call is out of protocol, e.g. a session edit before the session is open."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class Aborted(RnnserveError):
    """ABORTED status."""

    code = grpc.StatusCode.ABORTED


class OutOfRange(RnnserveError):
    """OUT_OF_RANGE status."""

    code = grpc.StatusCode.OUT_OF_RANGE


class Unimplemented(RnnserveError):
    """The server does not implement this method (e.g. an older server)."""

    code = grpc.StatusCode.UNIMPLEMENTED


class Internal(RnnserveError):
    """The server (or the call's protocol) failed unexpectedly."""

    code = grpc.StatusCode.INTERNAL


class Unavailable(RnnserveError):
    """The server is unreachable, shutting down, or the model is not ready."""

    code = grpc.StatusCode.UNAVAILABLE


class DataLoss(RnnserveError):
    """DATA_LOSS status."""

    code = grpc.StatusCode.DATA_LOSS


class Unauthenticated(RnnserveError):
    """The call carries no valid credentials (e.g. a missing or wrong bearer token)."""

    code = grpc.StatusCode.UNAUTHENTICATED


_BY_CODE: dict[grpc.StatusCode, type[RnnserveError]] = {
    cls.code: cls
    for cls in (
        Cancelled,
        Unknown,
        InvalidArgument,
        DeadlineExceeded,
        NotFound,
        AlreadyExists,
        PermissionDenied,
        ResourceExhausted,
        FailedPrecondition,
        Aborted,
        OutOfRange,
        Unimplemented,
        Internal,
        Unavailable,
        DataLoss,
        Unauthenticated,
    )
}


def from_status(
    code: grpc.StatusCode | None,
    details: str | None,
    trailing_metadata: Iterable[tuple[str, str | bytes]] = (),
) -> RnnserveError:
    """The typed error for a status code, its message and the call's trailing metadata."""
    cls = _BY_CODE.get(code, Unknown) if code is not None else Unknown
    return cls(details or "", retry_after=_retry_after(trailing_metadata))


def from_rpc_error(error: grpc.RpcError) -> RnnserveError:
    """The typed error for a ``grpc.RpcError`` from a sync or asyncio call."""
    if isinstance(error, grpc.Call | aio.AioRpcError):
        return from_status(error.code(), error.details(), error.trailing_metadata() or ())
    return Unknown(str(error) or type(error).__name__)


def _retry_after(trailing_metadata: Iterable[tuple[str, str | bytes]]) -> float | None:
    """Seconds from a ``retry-after-ms`` metadata entry, or None if absent or malformed."""
    for key, value in trailing_metadata:
        if key == RETRY_AFTER_KEY:
            try:
                return max(0.0, float(value) / 1000.0)
            except ValueError:
                return None
    return None


def from_session_error(error: grpc.RpcError, opened: bool) -> RnnserveError:
    """Like :func:`from_rpc_error`, for a Session stream: an open session whose server went
    away cannot be resumed elsewhere (its state lived there), and the message says so."""
    mapped = from_rpc_error(error)
    if opened and isinstance(mapped, Unavailable):
        return Unavailable(f"session lost: the server that held it is gone ({mapped.details}); open a new session",
                           retry_after=mapped.retry_after)
    return mapped
