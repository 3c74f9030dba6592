"""The asyncio client, :class:`AsyncClient`, over a ``grpc.aio`` channel.

It mirrors :class:`rnnserve_client.Client` method for method; every call is a coroutine,
``generate_stream`` returns an async iterator and ``session`` an async context manager.
Create the client inside the event loop that uses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Self, Unpack

import grpc
from grpc import aio

from rnnserve_client import _requests, errors
from rnnserve_client._channel import CallSettings, channel_credentials, channel_options
from rnnserve_client._requests import GenerateOptions, TranslateOptions
from rnnserve_client.results import (
    GenerateChunk,
    GenerateResult,
    ModelInfo,
    ScoreResult,
    Suggestion,
    TranslationResult,
    suggestions,
)
from rnnserve_client.v1 import (
    assistant_pb2,
    assistant_pb2_grpc,
    generation_pb2_grpc,
    models_pb2,
    models_pb2_grpc,
    translation_pb2_grpc,
)


class AsyncClient:
    """An asyncio client for one rnnserve server (or a round-robin set of them).

    Takes the same arguments as :class:`rnnserve_client.Client` (``target``,
    ``timeout``, ``credentials``, ``root_certificates``, ``token``,
    ``max_message_bytes``, ``options``) and has the same retry behaviour: unary calls
    are retried on UNAVAILABLE, streams never.
    """

    def __init__(
        self,
        target: str,
        *,
        timeout: float | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        root_certificates: bytes | None = None,
        token: str | None = None,
        max_message_bytes: int | None = None,
        options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        creds = channel_credentials(credentials, root_certificates)
        args = channel_options(max_message_bytes, options)
        self._channel = (
            aio.secure_channel(target, creds, options=args)
            if creds is not None
            else aio.insecure_channel(target, options=args)
        )
        self._settings = CallSettings.create(timeout, token)
        self._models = models_pb2_grpc.ModelsStub(self._channel)
        self._generation = generation_pb2_grpc.GenerationStub(self._channel)
        self._translation = translation_pb2_grpc.TranslationStub(self._channel)
        self._assistant = assistant_pb2_grpc.AssistantStub(self._channel)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the channel; calls in flight are cancelled."""
        await self._channel.close()

    async def _unary(self, method: Callable[..., Any], request: Any, timeout: float | None) -> Any:
        try:
            return await method(request, **self._settings.kwargs(timeout))
        except grpc.RpcError as exc:
            raise errors.from_rpc_error(exc) from exc

    async def list_models(self, kind: str | None = None, *, timeout: float | None = None) -> list[ModelInfo]:
        """See :meth:`rnnserve_client.Client.list_models`."""
        request = _requests.list_models_request(kind)
        response = await self._unary(self._models.ListModels, request, timeout)
        return [ModelInfo.from_pb(model) for model in response.models]

    async def get_model(self, name: str, *, timeout: float | None = None) -> ModelInfo:
        """See :meth:`rnnserve_client.Client.get_model`."""
        response = await self._unary(self._models.GetModel, models_pb2.GetModelRequest(name=name), timeout)
        return ModelInfo.from_pb(response)

    async def generate(
        self, model: str, prompt: str = "", *, timeout: float | None = None, **params: Unpack[GenerateOptions]
    ) -> GenerateResult:
        """See :meth:`rnnserve_client.Client.generate`."""
        request = _requests.generate_request(model, prompt, **params)
        return GenerateResult.from_pb(await self._unary(self._generation.Generate, request, timeout))

    def generate_stream(
        self, model: str, prompt: str = "", *, timeout: float | None = None, **params: Unpack[GenerateOptions]
    ) -> AsyncGenerateStream:
        """Start a streamed generation; ``async for`` over the result for chunks.

        See :meth:`rnnserve_client.Client.generate_stream`.
        """
        request = _requests.generate_request(model, prompt, **params)
        return AsyncGenerateStream(self._generation.GenerateStream(request, **self._settings.kwargs(timeout)))

    async def score(self, model: str, text: str, context: str = "", *, timeout: float | None = None) -> ScoreResult:
        """See :meth:`rnnserve_client.Client.score`."""
        request = _requests.score_request(model, text, context)
        return ScoreResult.from_pb(await self._unary(self._generation.Score, request, timeout))

    async def translate(
        self,
        model: str,
        texts: str | Sequence[str],
        *,
        timeout: float | None = None,
        **options: Unpack[TranslateOptions],
    ) -> list[TranslationResult]:
        """See :meth:`rnnserve_client.Client.translate` (a single str still returns a list)."""
        request = _requests.translate_request(model, texts, **options)
        response = await self._unary(self._translation.Translate, request, timeout)
        return [TranslationResult.from_pb(result) for result in response.translations]

    async def suggest(
        self,
        model: str,
        text: str,
        max_suggestions: int = 3,
        kinds: str | Sequence[str] = ("word",),
        max_phrase_chars: int = 0,
        *,
        timeout: float | None = None,
    ) -> list[Suggestion]:
        """See :meth:`rnnserve_client.Client.suggest`."""
        options = _requests.suggest_options(kinds, max_suggestions, max_phrase_chars)
        request = _requests.suggest_request(model, text, options)
        response = await self._unary(self._assistant.Suggest, request, timeout)
        return suggestions(response.suggestions)

    def session(
        self,
        model: str,
        kinds: str | Sequence[str] = ("word",),
        max_suggestions: int = 3,
        max_phrase_chars: int = 0,
        text: str = "",
        *,
        timeout: float | None = None,
    ) -> AsyncSession:
        """An incremental typing session; use it with ``async with``.

        ``timeout`` is the deadline of the whole session, not of each event.
        """
        options = _requests.suggest_options(kinds, max_suggestions, max_phrase_chars)
        return AsyncSession(
            self._assistant.Session,
            _requests.session_open(model, text, options),
            self._settings.kwargs(timeout),
        )


#: Why a stream or session refuses more after an awaited read of it was cancelled.
CANCELLED = "this stream was cancelled by its cancel(); the server stopped generating"
INTERRUPTED = ("an earlier read of this stream was cancelled (e.g. by asyncio.wait_for's timeout), which "
               "cancels the whole gRPC call; start a new one")


class AsyncGenerateStream:
    """The chunks of a streamed generation, as an async iterator.

    An error status, even after some chunks, raises a typed ``RnnserveError``.
    """

    def __init__(self, call: Any) -> None:
        self._call = call
        self._interrupted = False
        self._cancelled = False

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> GenerateChunk:
        if self._cancelled:
            raise errors.Cancelled(CANCELLED)
        if self._interrupted:
            raise errors.Cancelled(INTERRUPTED)
        try:
            response = await self._call.read()
        except asyncio.CancelledError:
            if self._cancelled:  # cancel() during this read: the stream's end, not this task's
                raise errors.Cancelled(CANCELLED) from None
            self._interrupted = True  # gRPC cancels the whole call with the read
            raise
        except grpc.RpcError as exc:
            raise errors.from_rpc_error(exc) from exc
        if response is aio.EOF:
            raise StopAsyncIteration
        return GenerateChunk.from_pb(response)

    def cancel(self) -> None:
        """Cancel the call; the server stops generating, and a later read raises ``errors.Cancelled``."""
        self._cancelled = True
        self._call.cancel()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.cancel()


def _past_deadline(error: grpc.RpcError, deadline: float | None) -> grpc.RpcError:
    """DEADLINE_EXCEEDED where an edit failed with INTERNAL after the session's deadline: grpc.aio
    fails a write that races the deadline with "INTERNAL: Internal error from Core" and gives the
    call that status too, so only the client's own clock can tell what happened."""
    if (deadline is None or time.monotonic() < deadline or not isinstance(error, aio.AioRpcError)
            or error.code() != grpc.StatusCode.INTERNAL):
        return error
    return aio.AioRpcError(grpc.StatusCode.DEADLINE_EXCEEDED, aio.Metadata(), aio.Metadata(),
                           f"Deadline Exceeded (the session's deadline passed; grpc reported: {error.details()})")


class AsyncSession:
    """An incremental typing session; see :class:`rnnserve_client.client.Session`."""

    def __init__(
        self,
        method: Callable[..., Any],
        open_request: assistant_pb2.SessionRequest,
        call_kwargs: dict[str, Any],
    ) -> None:
        self._method = method
        self._open_request = open_request
        self._call_kwargs = call_kwargs
        self._call: Any = None
        #: time.monotonic() at which the session's deadline passes (None: no deadline)
        self._deadline: float | None = None
        self._closed = False
        self._interrupted = False
        self.session_id = ""
        self.suggestions: list[Suggestion] = []
        self.document_chars = 0

    async def open(self) -> Self:
        """Start the stream and send the open event (done by entering the context)."""
        if self._call is not None:
            raise RuntimeError("session already opened")
        timeout = self._call_kwargs.get("timeout")
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self._call = self._method(**self._call_kwargs)
        try:
            await self._send(self._open_request)
        except BaseException:
            self.cancel()
            raise
        return self

    async def append(self, text: str) -> list[Suggestion]:
        """Type ``text`` at the end of the document."""
        return await self._send(_requests.session_append(text))

    async def delete(self, chars: int = 1) -> list[Suggestion]:
        """Delete ``chars`` characters before the cursor (backspace)."""
        return await self._send(_requests.session_delete(chars))

    async def reset(self) -> list[Suggestion]:
        """Clear the document."""
        return await self._send(_requests.session_reset())

    async def _send(self, request: assistant_pb2.SessionRequest) -> list[Suggestion]:
        if self._interrupted:
            raise errors.Cancelled(INTERRUPTED)
        if self._call is None or self._closed:
            raise RuntimeError("session is not open (not opened yet, closed, or ended by an error)")
        try:
            # If the server already ended the call, write() refuses; read() says why.
            with contextlib.suppress(asyncio.InvalidStateError):
                await self._call.write(request)
            response = await self._call.read()
        except asyncio.CancelledError:
            self._interrupted = self._closed = True  # gRPC cancels the whole stream with the read
            raise
        except grpc.RpcError as exc:
            self._closed = True
            raise errors.from_session_error(_past_deadline(exc, self._deadline),
                                            opened=bool(self.session_id)) from exc
        if response is aio.EOF:
            self._closed = True
            raise errors.Internal("the server ended the session without answering an event")
        self.session_id = response.session_id
        self.suggestions = suggestions(response.suggestions)
        self.document_chars = response.document_chars
        return self.suggestions

    async def close(self) -> None:
        """End the session: half-close the stream and wait for the server to end it.

        Does nothing if the session already ended, e.g. with an error an edit raised.
        """
        if self._call is None or self._closed:
            return
        self._closed = True
        try:
            await self._call.done_writing()
            while await self._call.read() is not aio.EOF:
                pass
        except grpc.RpcError as exc:
            raise errors.from_rpc_error(exc) from exc

    def cancel(self) -> None:
        """Abort the session at once."""
        if self._call is None or self._closed:
            return
        self._closed = True
        self._call.cancel()

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None:
            await self.close()
        else:
            self.cancel()
