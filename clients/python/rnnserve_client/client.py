"""The synchronous client, :class:`Client`, over a blocking ``grpc`` channel.

One client (one channel) is safe to share between threads. Every call takes a
``timeout`` in seconds that overrides the client's default for that call; a failed call
raises a subclass of :class:`rnnserve_client.errors.RnnserveError`.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterator, Sequence
from types import TracebackType
from typing import Any, Self, Unpack

import grpc

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


class Client:
    """A blocking client for one rnnserve server (or a round-robin set of them).

    Args:
        target: gRPC target: ``"host:port"``, ``"dns:///host:port"`` or a list of
            addresses such as ``"ipv4:127.0.0.1:50051,127.0.0.1:50052"``. Calls are
            spread round-robin over every address the target resolves to.
        timeout: Default deadline of each call in seconds; None: no deadline.
        credentials: TLS (or other) channel credentials; None: plaintext, unless
            ``root_certificates`` is given.
        root_certificates: PEM root certificates to verify the server with TLS.
        token: Bearer token, sent as ``authorization: Bearer <token>`` metadata.
        max_message_bytes: Maximum size of a message sent or received (gRPC's default
            receive limit is 4 MiB).
        options: Further gRPC channel arguments; they replace the client's own of the
            same name (replacing ``grpc.service_config`` drops the retry policy).

    Every method takes a keyword ``timeout`` in seconds for that call; None (the default)
    means the client's ``timeout``. Unary calls that fail with UNAVAILABLE are retried by
    gRPC (4 attempts in all, with exponential backoff, within the call's deadline);
    streams are never retried.
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
            grpc.secure_channel(target, creds, options=args)
            if creds is not None
            else grpc.insecure_channel(target, options=args)
        )
        self._settings = CallSettings.create(timeout, token)
        self._models = models_pb2_grpc.ModelsStub(self._channel)
        self._generation = generation_pb2_grpc.GenerationStub(self._channel)
        self._translation = translation_pb2_grpc.TranslationStub(self._channel)
        self._assistant = assistant_pb2_grpc.AssistantStub(self._channel)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the channel; calls in flight are cancelled."""
        self._channel.close()

    def _unary(self, method: Callable[..., Any], request: Any, timeout: float | None) -> Any:
        try:
            return method(request, **self._settings.kwargs(timeout))
        except grpc.RpcError as exc:
            raise errors.from_rpc_error(exc) from exc

    def list_models(self, kind: str | None = None, *, timeout: float | None = None) -> list[ModelInfo]:
        """Every configured model, whatever its state; only those of ``kind`` if given
        (``"language-model"``, ``"translator"`` or ``"assistant"``)."""
        request = _requests.list_models_request(kind)
        response = self._unary(self._models.ListModels, request, timeout)
        return [ModelInfo.from_pb(model) for model in response.models]

    def get_model(self, name: str, *, timeout: float | None = None) -> ModelInfo:
        """One model; raises ``errors.NotFound`` if there is none of that name."""
        response = self._unary(self._models.GetModel, models_pb2.GetModelRequest(name=name), timeout)
        return ModelInfo.from_pb(response)

    def generate(
        self, model: str, prompt: str = "", *, timeout: float | None = None, **params: Unpack[GenerateOptions]
    ) -> GenerateResult:
        """Generate text and return when every sample has finished.

        ``params`` are the keyword-only sampling parameters of
        :class:`rnnserve_client._requests.GenerateOptions`: ``max_new_tokens``,
        ``temperature``, ``top_k``, ``top_p``, ``repetition_penalty``, ``n``, ``stop``,
        ``seed`` and ``logprobs``.
        """
        request = _requests.generate_request(model, prompt, **params)
        return GenerateResult.from_pb(self._unary(self._generation.Generate, request, timeout))

    def generate_stream(
        self, model: str, prompt: str = "", *, timeout: float | None = None, **params: Unpack[GenerateOptions]
    ) -> GenerateStream:
        """Generate text, yielding each sample's new text as it is produced.

        Takes the parameters of :meth:`generate`. The call starts at once; iterate the
        returned stream for :class:`~rnnserve_client.results.GenerateChunk` objects.
        Use it as a context manager (or call ``cancel()``) to stop early.
        """
        request = _requests.generate_request(model, prompt, **params)
        return GenerateStream(self._generation.GenerateStream(request, **self._settings.kwargs(timeout)))

    def score(self, model: str, text: str, context: str = "", *, timeout: float | None = None) -> ScoreResult:
        """The log-probability of each token of ``text``, after the unscored ``context``."""
        request = _requests.score_request(model, text, context)
        return ScoreResult.from_pb(self._unary(self._generation.Score, request, timeout))

    def translate(
        self,
        model: str,
        texts: str | Sequence[str],
        *,
        timeout: float | None = None,
        **options: Unpack[TranslateOptions],
    ) -> list[TranslationResult]:
        """Translate texts; one result per text, in order.

        A single str is translated as one text and still returns a list (of one).
        ``options`` are those of :class:`rnnserve_client._requests.TranslateOptions`:
        ``beam_size``, ``n_best``, ``length_penalty``, ``max_length_ratio``,
        ``max_length`` and ``return_attention``.
        """
        request = _requests.translate_request(model, texts, **options)
        response = self._unary(self._translation.Translate, request, timeout)
        return [TranslationResult.from_pb(result) for result in response.translations]

    def suggest(
        self,
        model: str,
        text: str,
        max_suggestions: int = 3,
        kinds: str | Sequence[str] = ("word",),
        max_phrase_chars: int = 0,
        *,
        timeout: float | None = None,
    ) -> list[Suggestion]:
        """Suggestions for the text before the cursor, grouped by kind in ``kinds``
        order (``"word"``, ``"next_words"``, ``"phrase"``), most likely first."""
        options = _requests.suggest_options(kinds, max_suggestions, max_phrase_chars)
        response = self._unary(self._assistant.Suggest, _requests.suggest_request(model, text, options), timeout)
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
    ) -> Session:
        """An incremental typing session; use it as a context manager.

        ``timeout`` is the deadline of the whole session, not of each event.
        """
        options = _requests.suggest_options(kinds, max_suggestions, max_phrase_chars)
        return Session(
            self._assistant.Session,
            _requests.session_open(model, text, options),
            self._settings.kwargs(timeout),
        )


class GenerateStream(Iterator[GenerateChunk]):
    """The chunks of a streamed generation; see :meth:`Client.generate_stream`.

    An error status, even after some chunks, raises a typed ``RnnserveError``.
    """

    def __init__(self, call: Any) -> None:
        self._call = call

    def __next__(self) -> GenerateChunk:
        try:
            return GenerateChunk.from_pb(next(self._call))
        except grpc.RpcError as exc:
            raise errors.from_rpc_error(exc) from exc

    def cancel(self) -> None:
        """Cancel the call; the server stops generating."""
        self._call.cancel()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.cancel()


class Session:
    """An incremental typing session over a bidirectional stream.

    Entering the context opens the stream, sends ``SessionOpen`` and waits for its
    answer; each edit then sends one event and returns the server's fresh suggestions.
    Leaving the context closes the client's side of the stream and waits for the server
    to end it (or cancels it if the block raised).

    Attributes:
        session_id: The server-assigned id ("" until open).
        suggestions: The latest suggestions.
        document_chars: Length of the server's document after the latest event.
    """

    def __init__(
        self,
        method: Callable[..., Any],
        open_request: assistant_pb2.SessionRequest,
        call_kwargs: dict[str, Any],
    ) -> None:
        self._method = method
        self._open_request = open_request
        self._call_kwargs = call_kwargs
        self._requests: queue.SimpleQueue[assistant_pb2.SessionRequest | None] = queue.SimpleQueue()
        self._call: Any = None
        self._closed = False
        self.session_id = ""
        self.suggestions: list[Suggestion] = []
        self.document_chars = 0

    def open(self) -> Self:
        """Start the stream and send the open event (done by entering the context)."""
        if self._call is not None:
            raise RuntimeError("session already opened")
        self._call = self._method(iter(self._requests.get, None), **self._call_kwargs)
        try:
            self._send(self._open_request)
        except BaseException:
            self.cancel()
            raise
        return self

    def append(self, text: str) -> list[Suggestion]:
        """Type ``text`` at the end of the document."""
        return self._send(_requests.session_append(text))

    def delete(self, chars: int = 1) -> list[Suggestion]:
        """Delete ``chars`` characters before the cursor (backspace)."""
        return self._send(_requests.session_delete(chars))

    def reset(self) -> list[Suggestion]:
        """Clear the document."""
        return self._send(_requests.session_reset())

    def _send(self, request: assistant_pb2.SessionRequest) -> list[Suggestion]:
        if self._call is None or self._closed:
            raise RuntimeError("session is not open (not opened yet, closed, or ended by an error)")
        self._requests.put(request)
        try:
            response = next(self._call)
        except grpc.RpcError as exc:
            self._end()
            raise errors.from_session_error(exc, opened=bool(self.session_id)) from exc
        except StopIteration:
            self._end()
            raise errors.Internal("the server ended the session without answering an event") from None
        self.session_id = response.session_id
        self.suggestions = suggestions(response.suggestions)
        self.document_chars = response.document_chars
        return self.suggestions

    def _end(self) -> None:
        """Mark the session over and end the request stream (releasing gRPC's sender thread)."""
        self._closed = True
        self._requests.put(None)

    def close(self) -> None:
        """End the session: half-close the stream and wait for the server to end it.

        Does nothing if the session already ended, e.g. with an error an edit raised.
        """
        if self._call is None or self._closed:
            return
        self._end()
        try:
            for _ in self._call:
                pass
        except grpc.RpcError as exc:
            raise errors.from_rpc_error(exc) from exc

    def cancel(self) -> None:
        """Abort the session at once."""
        if self._call is None or self._closed:
            return
        self._call.cancel()
        self._end()

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None:
            self.close()
        else:
            self.cancel()
