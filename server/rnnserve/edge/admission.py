"""Admission control: the one interceptor every call passes through.

For every call except health (``/grpc.health.v1.``), in this order:

1. request id: the client's ``x-request-id`` metadata if well formed, else a new one; set
   for the call's logs (``logs.request_id_var``) and returned in trailing metadata;
2. authentication: with a bearer token configured, a missing or wrong
   ``authorization: Bearer <token>`` is UNAUTHENTICATED (reflection included);
3. draining: after SIGTERM new calls get UNAVAILABLE (reflection exempt);
4. the global in-flight cap ``limits.max_in_flight``: one call over it is answered
   RESOURCE_EXHAUSTED at once, with trailing metadata ``retry-after-ms`` (reflection exempt);
5. a request that does not parse as its message type (e.g. invalid UTF-8 in a string
   field) is INVALID_ARGUMENT rather than gRPC's UNKNOWN with parser details;
6. any exception that escapes a servicer becomes a status through ``errors.abort``.

gRPC's own ``maximum_concurrent_rpcs`` is not used: it would refuse health checks too.

The HTTP API (``rnnserve.edge.http.admission``) admits its requests through the same object
(:meth:`AdmissionInterceptor.authorized`, :meth:`~AdmissionInterceptor.refusal`,
:meth:`~AdmissionInterceptor.enter`, :meth:`~AdmissionInterceptor.leave`), so both
transports share one token, one drain flag and one in-flight count.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from grpc import aio

from rnnserve.edge.auth import TokenChecker
from rnnserve.edge.errors import (
    REQUEST_ID_KEY,
    Draining,
    InvalidArgument,
    Overloaded,
    RnnserveError,
    Unauthenticated,
    abort,
    retry_after_ms_var,
)
from rnnserve.ops.logs import request_id_from, request_id_var

log = logging.getLogger("rnnserve.calls")

HEALTH_PREFIX = "/grpc.health.v1."
#: Calls that are never refused while draining or overloaded (health also needs no token).
EXEMPT_PREFIXES = (HEALTH_PREFIX, "/grpc.reflection.")


class Undecodable:
    """Stands in for a request message that failed to parse (answered INVALID_ARGUMENT)."""

    def __init__(self, method: str) -> None:
        self.method = method

    def error(self) -> InvalidArgument:
        return InvalidArgument(f"the request is not a valid message for {self.method.lstrip('/')} "
                               "(malformed protobuf, or a string field that is not UTF-8)")


def _lenient(deserialize: Callable[[bytes], Any] | None, method: str) -> Callable[[bytes], Any] | None:
    if deserialize is None:
        return None

    def parse(data: bytes) -> Any:
        try:
            return deserialize(data)
        except Exception:
            return Undecodable(method)

    return parse


async def _checked(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    async for request in requests:
        if isinstance(request, Undecodable):
            raise request.error()
        yield request


def _metadata_value(metadata: Any, key: str) -> str | bytes | None:
    for item_key, value in metadata or ():
        if item_key == key:
            return value  # type: ignore[no-any-return]
    return None


class AdmissionInterceptor(aio.ServerInterceptor):
    """Request ids, bearer-token auth, drain, the global in-flight cap (see the module docstring)."""

    def __init__(self, max_in_flight: int = 512, retry_after_ms: int = 500, token: str | None = None,
                 observe: Callable[[str, str, float], None] | None = None) -> None:
        self.max_in_flight = max_in_flight
        self.retry_after_ms = retry_after_ms
        self._token = TokenChecker(token) if token else None
        #: ``observe(method, status code name, seconds)`` when each call ends (metrics), or None.
        self.observe = observe
        self.draining = False
        self.in_flight = 0
        self.refused_total = 0
        self.unauthenticated_total = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def auth_enabled(self) -> bool:
        return self._token is not None

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until no call is in flight; False if ``timeout`` passed first."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
            return True
        except TimeoutError:
            return False

    def authorized(self, metadata: Any) -> bool:
        """Whether ``metadata`` (``(key, value)`` pairs, keys lower-case) carries the bearer token, if one is set."""
        return self._token is None or self._token.check(metadata)

    def enter(self) -> None:
        """Count a call in flight (after :meth:`refusal` admitted it)."""
        self.in_flight += 1
        self._idle.clear()

    def leave(self) -> None:
        """A call counted by :meth:`enter` ended."""
        self.in_flight -= 1
        if self.in_flight == 0:
            self._idle.set()

    def refusal(self, authorized: bool, exempt: bool) -> RnnserveError | None:
        """Why a new call may not start, or None (runs on the event loop: no lock needed)."""
        if not authorized:
            self.unauthenticated_total += 1
            return Unauthenticated()
        if exempt:
            return None
        if self.draining:
            return Draining()
        if self.in_flight >= self.max_in_flight:
            self.refused_total += 1
            return Overloaded(f"{self.in_flight} calls in flight (limit max_in_flight={self.max_in_flight}); "
                              f"retry after {self.retry_after_ms} ms")
        return None

    async def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        """The method's handler, wrapped so that the call is admitted, counted, timed and its
        errors turned into statuses (health passes untouched)."""
        handler = await continuation(details)
        if handler is None or details.method.startswith(HEALTH_PREFIX):
            return handler
        call = _AdmittedCall(self, handler, details)
        deserializer = _lenient(handler.request_deserializer, details.method)
        if handler.response_streaming:
            make = grpc.stream_stream_rpc_method_handler if handler.request_streaming \
                else grpc.unary_stream_rpc_method_handler
            return make(call.streaming, request_deserializer=deserializer,
                        response_serializer=handler.response_serializer)
        make = grpc.stream_unary_rpc_method_handler if handler.request_streaming \
            else grpc.unary_unary_rpc_method_handler
        return make(call.unary, request_deserializer=deserializer, response_serializer=handler.response_serializer)


class _AdmittedCall:
    """One call through :class:`AdmissionInterceptor`: its request id and credentials, read
    from its metadata, and the servicer's handler wrapped with admission (``begin``) and
    accounting (``end``)."""

    def __init__(self, admission: AdmissionInterceptor, handler: grpc.RpcMethodHandler,
                 details: grpc.HandlerCallDetails) -> None:
        self.admission = admission
        self.handler = handler
        self.method = details.method
        metadata = details.invocation_metadata
        self.request_id = request_id_from(_metadata_value(metadata, REQUEST_ID_KEY))
        self.authorized = admission.authorized(metadata)
        self.exempt = self.method.startswith(EXEMPT_PREFIXES)

    async def begin(self, context: aio.ServicerContext) -> float:
        """Set the call's request id, refuse it (abort) or count it in; when it began."""
        request_id_var.set(self.request_id)
        retry_after_ms_var.set(self.admission.retry_after_ms)
        context.set_trailing_metadata(((REQUEST_ID_KEY, self.request_id),))
        refusal = self.admission.refusal(self.authorized, self.exempt)
        if refusal is not None:
            log.debug("%s refused: %s", self.method, refusal.code.name)
            await abort(context, refusal)
        if not self.exempt:
            self.admission.enter()
        return time.perf_counter()

    def end(self, context: aio.ServicerContext, started: float) -> None:
        if not self.exempt:
            self.admission.leave()
        if self.admission.observe is not None or log.isEnabledFor(logging.DEBUG):
            code = context.code() or grpc.StatusCode.OK
            name, seconds = getattr(code, "name", str(code)), time.perf_counter() - started
            if self.admission.observe is not None:
                self.admission.observe(self.method, name, seconds)
            log.debug("%s %s %.1f ms", self.method, name, seconds * 1e3)

    def arguments(self, request: Any) -> Any:
        if self.handler.request_streaming:
            return _checked(request)
        if isinstance(request, Undecodable):
            raise request.error()
        return request

    async def streaming(self, request: Any, context: aio.ServicerContext) -> Any:
        behavior = self.handler.stream_stream if self.handler.request_streaming else self.handler.unary_stream
        started = await self.begin(context)
        try:
            result = behavior(self.arguments(request), context)
            if inspect.isawaitable(result):  # a servicer that writes with context.write()
                await result
            else:
                async for response in result:
                    yield response
        except (aio.AbortError, asyncio.CancelledError):
            raise
        except Exception as exc:
            await abort(context, exc)
        finally:
            self.end(context, started)

    async def unary(self, request: Any, context: aio.ServicerContext) -> Any:
        behavior = self.handler.stream_unary if self.handler.request_streaming else self.handler.unary_unary
        started = await self.begin(context)
        try:
            return await behavior(self.arguments(request), context)
        except (aio.AbortError, asyncio.CancelledError):
            raise
        except Exception as exc:
            await abort(context, exc)
        finally:
            self.end(context, started)
