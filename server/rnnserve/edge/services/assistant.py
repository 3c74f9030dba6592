"""``rnnserve.v1.Assistant``: suggestions and incremental typing sessions."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import grpc
from grpc import aio

from rnnserve.backends import Assistant, AssistantSession, Suggestion, SuggestionKind
from rnnserve.edge import validation
from rnnserve.edge.errors import InvalidArgument, Overloaded, RnnserveError, SessionError, grpc_errors
from rnnserve.host.registry import ModelRegistry
from rnnserve.ops.config import Limits
from rnnserve_client.v1 import assistant_pb2, assistant_pb2_grpc

T = TypeVar("T")
KINDS = {kind: raw for raw, kind in validation.SUGGESTION_KINDS.items()}
_EVENT = assistant_pb2.SessionRequest.DESCRIPTOR.oneofs_by_name["event"]
#: A SessionRequest with no event set, named as the proto names it.
NO_EVENT = (f"SessionRequest.event is not set: exactly one of {', '.join(f.name for f in _EVENT.fields)} must be "
            "set")
#: Seconds a Session stream may take to send its first message, 'open'.
OPEN_TIMEOUT_S = 10.0


class SessionExpired(RnnserveError):
    """A session saw no event for longer than the idle timeout."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED


def _suggestion_pb(s: Suggestion) -> assistant_pb2.Suggestion:
    return assistant_pb2.Suggestion(text=s.text, kind=KINDS[SuggestionKind(s.kind)], probability=s.probability,
                                    absolute_probability=s.absolute_probability, insert_text=s.insert_text,
                                    replace_chars=s.replace_chars)


class AssistantService(assistant_pb2_grpc.AssistantServicer):
    def __init__(self, registry: ModelRegistry, limits: Limits) -> None:
        self.registry = registry
        self.limits = limits
        self.open_sessions = 0

    def _assistant(self, model: str) -> tuple[Assistant, Callable[[Callable[[], T]], Awaitable[T]]]:
        """The backend, and ``run(fn)``: fn on the model's worker, failed at once if the model hangs."""
        validation.check_model_name(model)
        assistant, worker, guard = self.registry.ready_assistant(model)

        async def run(fn: Callable[[], T]) -> T:
            return await guard.watch(worker.run(fn))

        return assistant, run

    @grpc_errors
    async def Suggest(self, request: assistant_pb2.SuggestRequest,
                      context: aio.ServicerContext) -> assistant_pb2.SuggestResponse:
        validation.check_chars("text", request.text, "max_document_chars", self.limits.max_document_chars)
        backend, run = self._assistant(request.model)
        options = validation.suggest_options(request.options, self.limits)
        suggestions = await run(lambda: backend.suggest(request.text, options))
        return assistant_pb2.SuggestResponse(model=request.model,
                                             suggestions=[_suggestion_pb(s) for s in suggestions])

    @grpc_errors
    async def Session(self, request_iterator: AsyncIterator[assistant_pb2.SessionRequest],
                      context: aio.ServicerContext) -> AsyncIterator[assistant_pb2.SessionResponse]:
        requests = aiter(request_iterator)
        # A stream holds an admission slot from its start: 'open' must come soon, not within
        # the idle timeout (idle streams that never open would otherwise fill max_in_flight).
        first = await self._next(requests, min(OPEN_TIMEOUT_S, self.limits.session_idle_timeout_s), "open")
        if first is None:
            return
        event = first.WhichOneof("event")
        if event is None:
            raise InvalidArgument(f"{NO_EVENT} ('open' first)")
        if event != "open":
            raise SessionError(f"the first message of a Session must be 'open', not {event!r}")
        validation.check_chars("text", first.open.text, "max_document_chars", self.limits.max_document_chars)
        backend, run = self._assistant(first.open.model)
        options = validation.suggest_options(first.open.options, self.limits)
        if self.open_sessions >= self.limits.max_sessions:
            raise Overloaded(f"{self.open_sessions} sessions are open (limit max_sessions="
                             f"{self.limits.max_sessions}); retry later")
        self.open_sessions += 1
        session_id = uuid.uuid4().hex
        session: AssistantSession | None = None
        try:
            session = opened = await run(lambda: backend.open_session(options, first.open.text))
            suggestions = await run(opened.suggestions)
            event_index = 0
            while True:
                yield assistant_pb2.SessionResponse(
                    session_id=session_id, event_index=event_index,
                    suggestions=[_suggestion_pb(s) for s in suggestions], document_chars=opened.document_chars)
                message = await self._next(requests)
                if message is None:
                    return
                event_index += 1
                suggestions = await run(lambda m=message: self._apply(opened, m))
        finally:
            self.open_sessions -= 1
            if session is not None:
                with contextlib.suppress(RnnserveError):  # e.g. the model hung: nothing left to close
                    await run(session.close)

    async def _next(self, requests: AsyncIterator[assistant_pb2.SessionRequest], timeout: float | None = None,
                    awaiting: str = "") -> assistant_pb2.SessionRequest | None:
        """The next client message; None when the client closed its side."""
        timeout = self.limits.session_idle_timeout_s if timeout is None else timeout
        try:
            return await asyncio.wait_for(anext(requests), timeout)
        except StopAsyncIteration:
            return None
        except TimeoutError as exc:
            if awaiting:
                raise SessionExpired(f"no '{awaiting}' within {timeout:g} s of the stream's start") from exc
            raise SessionExpired(f"session idle for more than {timeout:g} s (limit session_idle_timeout_s)") from exc

    def _apply(self, session: AssistantSession, message: assistant_pb2.SessionRequest) -> list[Suggestion]:
        """Apply one edit and return the suggestions after it (one call on the model's worker)."""
        event = message.WhichOneof("event")
        if event == "append":
            if session.document_chars + len(message.append.text) > self.limits.max_document_chars:
                raise InvalidArgument(f"document would exceed the server limit max_document_chars="
                                      f"{self.limits.max_document_chars}")
            session.append(message.append.text)
        elif event == "delete":
            session.delete(message.delete.chars)
        elif event == "reset":
            session.reset()
        elif event is None:
            raise InvalidArgument(NO_EVENT)
        else:
            raise SessionError(f"the session is open already: {event!r} only comes first")
        return session.suggestions()
