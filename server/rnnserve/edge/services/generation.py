"""``rnnserve.v1.Generation``: thin adapter from protobuf to the language-model scheduler."""

from __future__ import annotations

import math
import re
from collections.abc import AsyncIterator, Sequence

from grpc import aio

from rnnserve.backends import Vocabulary
from rnnserve.edge import validation
from rnnserve.edge.errors import LimitExceeded, grpc_errors
from rnnserve.host.registry import ModelRegistry
from rnnserve.ops.config import Limits
from rnnserve.runtime.generation_requests import Event, FinishReason, RequestHandle
from rnnserve.runtime.language_model_scheduler import LanguageModelScheduler
from rnnserve.runtime.watchdog import RequestGuard
from rnnserve_client.v1 import generation_pb2, generation_pb2_grpc

FINISH_REASONS = {
    FinishReason.LENGTH: generation_pb2.FINISH_REASON_LENGTH,
    FinishReason.STOP_SEQUENCE: generation_pb2.FINISH_REASON_STOP_SEQUENCE,
    FinishReason.END_OF_TEXT: generation_pb2.FINISH_REASON_END_OF_TEXT,
    FinishReason.CANCELLED: generation_pb2.FINISH_REASON_CANCELLED,
}


def _logprobs_pb(pairs: list[tuple[str, float]]) -> list[generation_pb2.TokenLogprob]:
    return [generation_pb2.TokenLogprob(token=t, logprob=lp) for t, lp in pairs]


class GenerationService(generation_pb2_grpc.GenerationServicer):
    def __init__(self, registry: ModelRegistry, limits: Limits) -> None:
        self.registry = registry
        self.limits = limits

    def _scheduler(self, model: str) -> tuple[LanguageModelScheduler, RequestGuard]:
        return self.registry.ready_language_model(model)

    def _submit(self, request: generation_pb2.GenerateRequest,
                context: aio.ServicerContext) -> tuple[RequestHandle, list[str], RequestGuard]:
        params = validation.sampling_params(request, self.limits)
        scheduler, guard = self._scheduler(request.model)
        if params.n > scheduler.max_batch_size:  # could never join a batch
            raise LimitExceeded("n", params.n, f"max_batch_size of model {request.model!r}", scheduler.max_batch_size)
        ids, unknown = scheduler.vocab.encode(request.prompt)
        handle = scheduler.submit(ids, params)
        # Client cancel or deadline: the scheduler drops the request at its next step.
        context.add_done_callback(lambda _: handle.cancel())
        return handle, unknown, guard

    def prompt_tokens(self, model: str, prompt: str) -> int:
        """How many tokens ``prompt`` is to ``model``: a Generate response's ``prompt_tokens``, for
        callers of GenerateStream (whose chunks do not carry it)."""
        scheduler, _ = self._scheduler(model)
        return len(scheduler.vocab.encode(prompt)[0])

    @grpc_errors
    async def Generate(self, request: generation_pb2.GenerateRequest,
                       context: aio.ServicerContext) -> generation_pb2.GenerateResponse:
        handle, unknown, guard = self._submit(request, context)
        completions = [generation_pb2.Completion(index=i, seed=handle.seed + i) for i in range(handle.params.n)]
        try:
            with guard.on_trip(lambda exc: handle.deliver([exc])):  # a hung model fails this call at once
                async for events in handle.events():
                    for event in events:
                        completion = completions[event.index]
                        completion.text += event.text
                        completion.logprobs.extend(_logprobs_pb(event.logprobs))
                        if event.finish_reason is not None:
                            completion.finish_reason = FINISH_REASONS[event.finish_reason]
                            completion.generated_tokens = event.generated_tokens
                            completion.stop_sequence = event.stop_sequence
        finally:
            handle.cancel()
        return generation_pb2.GenerateResponse(
            model=request.model,
            completions=completions,
            prompt_tokens=len(handle.prompt_ids),
            unknown_characters=unknown,
            timing=_timing(handle),
        )

    @grpc_errors
    async def GenerateStream(self, request: generation_pb2.GenerateRequest,
                             context: aio.ServicerContext) -> AsyncIterator[generation_pb2.GenerateStreamResponse]:
        handle, unknown, guard = self._submit(request, context)
        first = set(range(handle.params.n))
        try:
            with guard.on_trip(lambda exc: handle.deliver([exc])):  # a hung model fails this call at once
                async for events in handle.events():
                    for event in _coalesce(events):
                        chunk = generation_pb2.GenerateStreamResponse(
                            index=event.index, text=event.text, logprobs=_logprobs_pb(event.logprobs),
                            seed=event.seed)
                        if event.index in first:
                            first.discard(event.index)
                            chunk.unknown_characters.extend(unknown)
                        if event.finish_reason is not None:
                            chunk.finish_reason = FINISH_REASONS[event.finish_reason]
                            chunk.generated_tokens = event.generated_tokens
                            chunk.stop_sequence = event.stop_sequence
                        yield chunk
        finally:
            handle.cancel()

    @grpc_errors
    async def Score(self, request: generation_pb2.ScoreRequest,
                    context: aio.ServicerContext) -> generation_pb2.ScoreResponse:
        validation.score_inputs(request, self.limits)
        scheduler, guard = self._scheduler(request.model)
        text_ids, unknown_text = scheduler.vocab.encode(request.text)
        context_ids, unknown_context = scheduler.vocab.encode(request.context)
        result = await guard.watch(scheduler.score(text_ids, context_ids))
        texts = token_texts(scheduler.vocab, request.text, text_ids)
        tokens = [(piece, lp) for piece, (_, lp) in zip(texts, result.tokens, strict=True)]
        nats_per_char = -result.total / len(request.text)
        return generation_pb2.ScoreResponse(
            model=request.model,
            logprobs=_logprobs_pb(tokens),
            total_logprob=result.total,
            nats_per_char=nats_per_char,
            bits_per_char=nats_per_char / math.log(2),
            nats_per_token=result.nats_per_token,
            perplexity=math.exp(result.nats_per_token),
            unknown_characters=list(dict.fromkeys(unknown_context + unknown_text)),
        )


#: How a stretch of text no token's text was found in is shared among its tokens, coarsest
#: first: word-like pieces (a run of letters, of digits, or one other character, each with
#: the whitespace before it), then characters with the whitespace before them.
_CHUNKS = (re.compile(r"\s*(?:[^\W\d_]+|\d+|\S)|\s+"), re.compile(r"\s*\S|\s+"))


def _split(gap: str, parts: int) -> list[str]:
    """``gap`` in ``parts`` pieces (joined: ``gap``), at the coarsest level that gives enough of them."""
    chunks = list(gap)
    for pattern in _CHUNKS:
        if len(found := pattern.findall(gap)) >= parts:
            chunks = found
            break
    if len(chunks) > parts:
        chunks[parts - 1:] = ["".join(chunks[parts - 1:])]
    return chunks + [""] * (parts - len(chunks))


def token_texts(vocab: Vocabulary, text: str, ids: Sequence[int]) -> list[str]:
    """The text of each token of ``text`` (``ids`` is ``vocab.encode(text)[0]``); joined, they are ``text``.

    One token per character: the characters. Otherwise each token's decoded text is
    found at the cursor; a run of tokens that is not (unknown tokens decode to "", a
    vocabulary may normalise) shares the text up to where the next token's text is found
    (at least a character per token, and followed by the known tokens after it), split
    into word-like chunks (or characters), one per token (the last takes any rest).
    """
    if len(ids) == len(text):
        return list(text)
    pieces = [vocab.decode([i]) for i in ids]
    out: list[str] = []
    pos = i = 0
    while i < len(ids):
        if pieces[i] and text.startswith(pieces[i], pos):
            out.append(pieces[i])
            pos += len(pieces[i])
            i += 1
            continue
        j, end = i + 1, len(text)  # the run i..j-1 covers text[pos:end]
        while j < len(ids):
            found = text.find(pieces[j], pos + j - i) if pieces[j] else -1
            while found >= 0 and not _matches_from(pieces, text, j, found):
                found = text.find(pieces[j], found + 1)
            if found >= 0:
                end = found
                break
            j += 1
        out.extend(_split(text[pos:end], j - i))
        pos, i = end, j
    if out and pos < len(text):  # text no token accounts for (a vocabulary that drops characters)
        out[-1] += text[pos:]
    return out


def _matches_from(pieces: list[str], text: str, j: int, at: int) -> bool:
    """Whether the tokens from ``j`` match ``text`` from ``at`` on, up to the next unknown token
    (which must have a character left) or to the end of both."""
    while j < len(pieces) and pieces[j] and text.startswith(pieces[j], at):
        at += len(pieces[j])
        j += 1
    if j == len(pieces):
        return at == len(text)
    return not pieces[j] and at < len(text)


def _coalesce(events: list[Event]) -> list[Event]:
    """Merge consecutive events of the same sample into one chunk (fewer, larger messages)."""
    merged: dict[int, Event] = {}
    for event in events:
        last = merged.get(event.index)
        if last is None:
            merged[event.index] = Event(event.index, event.seed, event.text, list(event.logprobs),
                                        event.finish_reason, event.generated_tokens, event.stop_sequence)
        else:
            last.extend(event)
    return list(merged.values())


def _timing(handle: RequestHandle) -> generation_pb2.Timing:
    admitted = handle.admitted_at or handle.submitted_at
    finished = handle.finished_at or admitted
    return generation_pb2.Timing(queue_seconds=admitted - handle.submitted_at,
                                 prefill_seconds=handle.prefill_seconds,
                                 generation_seconds=finished - admitted)
