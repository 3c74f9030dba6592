"""OpenAI-compatible completions: ``GET /v1/models`` and ``POST /v1/completions``.

A thin translation between OpenAI's legacy completions API and ``Generation``: each prompt
becomes one ``GenerateRequest`` handed to the servicer gRPC calls (its validation, limits
and scheduler apply unchanged), and the responses are reshaped. Parameters: ``model``,
``prompt`` (a string or a list of strings; token-id prompts are refused), ``max_tokens``
(default 16, as OpenAI's), ``temperature``, ``top_p``, ``n``, ``stop``, ``seed``,
``logprobs`` (0-5: each token's log-probability; ``top_logprobs`` is null, alternatives
are not computed), ``echo`` (with ``logprobs``, the prompt's tokens are scored through
``Generation.Score``), ``stream`` (server-sent events ending in ``data: [DONE]``;
``stream_options.include_usage`` adds a last chunk with ``usage``), and the rnnserve
extensions ``top_k`` and ``repetition_penalty``. OpenAI parameters rnnserve does not
implement are accepted only with their neutral value (``presence_penalty: 0``,
``best_of: 1`` ...). ``usage`` counts the model's tokens: characters for char models.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from rnnserve.backends import ModelKind
from rnnserve.edge.errors import InvalidArgument, LimitExceeded
from rnnserve.edge.http.calls import (
    CallContext,
    ClientGone,
    call_var,
    error_body,
    error_response,
    error_status,
    unless_disconnected,
)
from rnnserve.edge.http.messages import read_json, sse_event, sse_response
from rnnserve.edge.http.servicers import Servicers
from rnnserve.host.registry import ModelRegistry
from rnnserve_client.v1 import generation_pb2

T = TypeVar("T")
#: OpenAI's default ``max_tokens`` for completions.
DEFAULT_MAX_TOKENS = 16
MAX_LOGPROBS = 5
FINISH_REASONS = {
    generation_pb2.FINISH_REASON_LENGTH: "length",
    generation_pb2.FINISH_REASON_STOP_SEQUENCE: "stop",
    generation_pb2.FINISH_REASON_END_OF_TEXT: "stop",
    generation_pb2.FINISH_REASON_CANCELLED: "cancelled",
}
#: OpenAI parameters without an rnnserve counterpart, and the values that mean "not used".
NEUTRAL = {"presence_penalty": (0, 0.0, None), "frequency_penalty": (0, 0.0, None), "best_of": (None, 1),
           "logit_bias": (None, {}), "suffix": (None, ""), "user": None}
KNOWN = {"model", "prompt", "max_tokens", "temperature", "top_p", "n", "stop", "seed", "logprobs", "echo", "stream",
         "stream_options", "top_k", "repetition_penalty", *NEUTRAL}


class InvalidParameter(InvalidArgument):
    """A completions parameter is malformed; ``param`` names it (OpenAI's error ``param``)."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param


def _typed(body: dict[str, Any], name: str, kinds: type | tuple[type, ...], what: str) -> Any:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) and bool not in (kinds if isinstance(kinds, tuple) else (kinds,)):
        raise InvalidParameter(name, f"must be {what}, got {value!r}")
    if not isinstance(value, kinds):
        raise InvalidParameter(name, f"must be {what}, got {type(value).__name__}")
    return value


@dataclass(frozen=True)
class CompletionCall:
    """A checked ``/v1/completions`` body."""

    model: str
    prompts: list[str]
    requests: list[generation_pb2.GenerateRequest]
    n: int
    logprobs: bool
    echo: bool
    stream: bool
    include_usage: bool


def parse_completion(body: Any, max_prompts: int) -> CompletionCall:
    """The GenerateRequests of a completions body (rnnserve's own limits are checked by the servicer)."""
    if not isinstance(body, dict):
        raise InvalidArgument(f"the request body must be a JSON object, got {type(body).__name__}")
    unknown = sorted(set(body) - KNOWN)
    if unknown:
        raise InvalidParameter(unknown[0], f"unknown parameter (supported: {', '.join(sorted(KNOWN))})")
    for name, neutral in NEUTRAL.items():
        if neutral is not None and name in body and body[name] not in neutral:
            raise InvalidParameter(name, f"is not supported by rnnserve; leave it out (or send {neutral[-1]!r})")
    model = _typed(body, "model", str, "a model name")
    if not model:
        raise InvalidParameter("model", "is required (see GET /v1/models)")
    prompt = body.get("prompt", "")
    prompts = [prompt] if isinstance(prompt, str) else prompt
    if not isinstance(prompts, list) or not all(isinstance(p, str) for p in prompts):
        raise InvalidParameter("prompt", "must be a string or a list of strings (token-id prompts are not "
                                         "supported: send text)")
    if not prompts:
        raise InvalidParameter("prompt", "the list of prompts is empty")
    if len(prompts) > max_prompts:
        raise LimitExceeded("number of prompts", len(prompts), "max_texts_per_call", max_prompts)
    max_tokens = _typed(body, "max_tokens", int, "an integer")
    if max_tokens is not None and max_tokens < 1:
        raise InvalidParameter("max_tokens", f"must be at least 1, got {max_tokens}")
    n = _typed(body, "n", int, "an integer")
    if n is not None and n < 1:
        raise InvalidParameter("n", f"must be at least 1, got {n}")
    stop = body.get("stop")
    stops = [] if stop is None else [stop] if isinstance(stop, str) else stop
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise InvalidParameter("stop", "must be a string or a list of strings")
    seed = _typed(body, "seed", int, "an integer")
    if seed is not None and seed < 0:
        raise InvalidParameter("seed", f"must not be negative, got {seed}")
    logprobs = _typed(body, "logprobs", int, "an integer")
    if logprobs is not None and not 0 <= logprobs <= MAX_LOGPROBS:
        raise InvalidParameter("logprobs", f"must be in [0, {MAX_LOGPROBS}], got {logprobs}")
    top_k = _typed(body, "top_k", int, "an integer")
    if top_k is not None and top_k < 0:
        raise InvalidParameter("top_k", f"must not be negative, got {top_k}")
    options = _typed(body, "stream_options", dict, "an object") or {}
    sampling: dict[str, Any] = {}
    for name in ("temperature", "top_p", "repetition_penalty"):
        value = _typed(body, name, (int, float), "a number")
        if value is not None:
            sampling[name] = value
    try:
        requests = [generation_pb2.GenerateRequest(
            model=model, prompt=p, max_new_tokens=max_tokens or DEFAULT_MAX_TOKENS, n=n or 1, stop=stops,
            seed=seed, logprobs=logprobs is not None, top_k=top_k or 0, **sampling) for p in prompts]
    except (ValueError, OverflowError) as exc:  # a number the wire type cannot hold
        raise InvalidArgument(f"a parameter is out of range: {exc}") from exc
    return CompletionCall(model, prompts, requests, n or 1, logprobs is not None,
                          bool(_typed(body, "echo", bool, "true or false")),
                          bool(_typed(body, "stream", bool, "true or false")),
                          bool(options.get("include_usage")))


def _logprobs(tokens: Sequence[generation_pb2.TokenLogprob], offset: int) -> dict[str, Any]:
    """OpenAI's completion ``logprobs`` object for ``tokens``, whose text starts at ``offset``."""
    offsets = []
    for token in tokens:
        offsets.append(offset)
        offset += len(token.token)
    return {"tokens": [t.token for t in tokens], "token_logprobs": [t.logprob for t in tokens],
            "top_logprobs": None, "text_offset": offsets}


async def merged(streams: Sequence[AsyncIterator[T]]) -> AsyncIterator[tuple[int, T]]:
    """Items of several async iterators as they come, with the index of their iterator; the first
    error ends it, and closing it cancels every iterator still running."""
    if len(streams) == 1:
        async for item in streams[0]:
            yield 0, item
        return
    queue: asyncio.Queue[tuple[int, Any, BaseException | None]] = asyncio.Queue()
    done = object()

    async def pump(index: int, stream: AsyncIterator[T]) -> None:
        try:
            async for item in stream:
                await queue.put((index, item, None))
        except Exception as exc:
            await queue.put((index, None, exc))
            return
        await queue.put((index, done, None))

    tasks = [asyncio.create_task(pump(i, s)) for i, s in enumerate(streams)]
    try:
        running = len(tasks)
        while running:
            index, item, error = await queue.get()
            if error is not None:
                raise error
            if item is done:
                running -= 1
            else:
                yield index, item
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class Completions:
    """The ``/v1`` routes over the Generation servicer."""

    def __init__(self, servicers: Servicers, registry: ModelRegistry, max_bytes: int, max_prompts: int) -> None:
        self.generation = servicers.generation
        self.registry = registry
        self.max_bytes = max_bytes
        self.max_prompts = max_prompts

    def routes(self) -> list[BaseRoute]:
        return [Route("/v1/models", self.list_models, methods=["GET"]),
                Route("/v1/models/{model:path}", self.get_model, methods=["GET"]),
                Route("/v1/completions", self.completions, methods=["POST"])]

    def _model(self, name: str, created: int) -> dict[str, Any]:
        entry = self.registry.find(name)
        owner = entry.plugin.distribution if entry.plugin else "rnnserve"
        return {"id": entry.name, "object": "model", "created": created, "owned_by": owner}

    async def list_models(self, request: Request) -> Response:
        """The language models (what ``/v1/completions`` can use), in OpenAI's list shape."""
        created = int(time.time())
        return JSONResponse({"object": "list", "data": [
            self._model(e.name, created) for e in self.registry.entries() if e.kind == ModelKind.LANGUAGE_MODEL]})

    async def get_model(self, request: Request) -> Response:
        try:
            self.registry.get(request.path_params["model"], ModelKind.LANGUAGE_MODEL)
            return JSONResponse(self._model(request.path_params["model"], int(time.time())))
        except Exception as exc:
            return error_response(exc)

    async def completions(self, request: Request) -> Response:
        context = CallContext()
        try:
            call = parse_completion(await read_json(request, self.max_bytes), self.max_prompts)
            prompt_logprobs = await self._prompt_logprobs(call, context)
            if call.stream:
                return await self._stream(call, context, prompt_logprobs)
            responses = await unless_disconnected(request, asyncio.gather(
                *(self.generation.Generate(r, context) for r in call.requests)))
        except ClientGone:
            context.finish()
            return Response(status_code=499)  # nobody is listening
        except Exception as exc:
            context.finish()
            return error_response(exc)
        context.finish()
        choices = []
        for i, response in enumerate(responses):
            prefix = call.prompts[i] if call.echo else ""
            for completion in response.completions:
                choice: dict[str, Any] = {"text": prefix + completion.text, "index": i * call.n + completion.index,
                                          "logprobs": None,
                                          "finish_reason": FINISH_REASONS.get(completion.finish_reason)}
                if call.logprobs:
                    tokens = [*prompt_logprobs[i], *completion.logprobs]
                    choice["logprobs"] = _logprobs(tokens, 0 if call.echo else len(call.prompts[i]))
                choices.append(choice)
        prompt_tokens = sum(r.prompt_tokens for r in responses)
        completion_tokens = sum(c.generated_tokens for r in responses for c in r.completions)
        return JSONResponse({**self._header(call), "choices": choices,
                             "usage": _usage(prompt_tokens, completion_tokens)})

    def _header(self, call: CompletionCall) -> dict[str, Any]:
        http_call = call_var.get()
        request_id = http_call.request_id if http_call is not None else "0"
        return {"id": f"cmpl-{request_id}", "object": "text_completion", "created": int(time.time()),
                "model": call.model, "system_fingerprint": None}

    async def _prompt_logprobs(self, call: CompletionCall,
                               context: CallContext) -> list[list[generation_pb2.TokenLogprob]]:
        """With ``echo`` and ``logprobs``: each prompt's tokens scored (Generation.Score); else nothing."""
        if not (call.echo and call.logprobs):
            return [[] for _ in call.prompts]
        scored = []
        for prompt in call.prompts:
            if not prompt:
                scored.append([])
                continue
            response = await self.generation.Score(generation_pb2.ScoreRequest(model=call.model, text=prompt),
                                                   context)
            scored.append(list(response.logprobs))
        return scored

    async def _stream(self, call: CompletionCall, context: CallContext,
                      prompt_logprobs: list[list[generation_pb2.TokenLogprob]]) -> Response:
        chunks = aiter(merged([aiter(self.generation.GenerateStream(r, context)) for r in call.requests]))
        first = await anext(chunks, None)  # errors before the first chunk get their own HTTP status
        header = self._header(call)
        offsets: dict[int, int] = {}  # choice index -> where its next text starts (for text_offset)
        generated = 0

        def event(i: int, chunk: generation_pb2.GenerateStreamResponse) -> bytes:
            nonlocal generated
            index = i * call.n + chunk.index
            text, tokens = chunk.text, list(chunk.logprobs)
            if index not in offsets:  # the choice's first chunk: the echoed prompt before its text
                offsets[index] = 0 if call.echo else len(call.prompts[i])
                if call.echo:
                    text, tokens = call.prompts[i] + text, [*prompt_logprobs[i], *tokens]
            logprobs = _logprobs(tokens, offsets[index]) if call.logprobs else None
            offsets[index] += len(text)
            generated += chunk.generated_tokens
            return sse_event({**header, "choices": [{
                "text": text, "index": index, "logprobs": logprobs,
                "finish_reason": FINISH_REASONS.get(chunk.finish_reason)}]})

        async def events() -> AsyncIterator[bytes]:
            try:
                if first is not None:
                    yield event(*first)
                    async for item in chunks:
                        yield event(*item)
                if call.include_usage:
                    prompt_tokens = sum(self.generation.prompt_tokens(call.model, p) for p in call.prompts)
                    yield sse_event({**header, "choices": [], "usage": _usage(prompt_tokens, generated)})
            except Exception as exc:  # after the 200: the error is the stream's last event
                code, message = error_status(exc)
                yield sse_event(error_body(code, message))
            finally:
                await chunks.aclose()
                context.finish()
            yield sse_event("[DONE]")

        return sse_response(events())


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}
