"""What a language-model scheduler decodes for a request, and what it sends back.

A :class:`RequestHandle` is one ``Generate`` call as the event loop sees it (prompt,
sampling parameters, cancellation, the queue of :class:`Event` lists the scheduler
delivers); a :class:`Sample` is one of its ``n`` samples as the scheduler's thread decodes
it (stop sequences, held-back logprobs, the end and its :class:`FinishReason`).
:func:`hand_over` and :func:`fail_requests` take events and errors from the scheduler's
thread to the requests, one ``call_soon_threadsafe`` per event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from rnnserve.runtime.sampling import SamplingParams
from rnnserve.runtime.stopping import StopMatcher


class FinishReason(enum.Enum):
    LENGTH = "length"
    STOP_SEQUENCE = "stop_sequence"
    END_OF_TEXT = "end_of_text"
    CANCELLED = "cancelled"


@dataclass
class Event:
    """New output of one sample; ``finish_reason`` is set on its last event."""

    index: int
    seed: int
    text: str = ""
    logprobs: list[tuple[str, float]] = field(default_factory=list)
    finish_reason: FinishReason | None = None
    generated_tokens: int = 0
    stop_sequence: str = ""

    def extend(self, later: Event) -> Event:
        """Append a later event of the same sample (its text, logprobs and finish fields)."""
        self.text += later.text
        self.logprobs.extend(later.logprobs)
        self.finish_reason = later.finish_reason
        self.generated_tokens = later.generated_tokens
        self.stop_sequence = later.stop_sequence
        return self


class RequestHandle:
    """A submitted generation, as the servicer sees it: an async stream of event batches."""

    def __init__(self, loop: asyncio.AbstractEventLoop, prompt_ids: list[int], params: SamplingParams,
                 seed: int, wake: Callable[[], None]) -> None:
        self.loop = loop
        self.prompt_ids = prompt_ids
        self.params = params
        self.seed = seed
        self.cancelled = False
        self.submitted_at = time.perf_counter()
        self.admitted_at: float | None = None
        self.prefill_seconds = 0.0
        self.finished_at: float | None = None
        self._queue: asyncio.Queue[Event | BaseException] = asyncio.Queue()
        self._open = params.n
        self._wake = wake

    def cancel(self) -> None:
        """Stop this request's compute at the scheduler's next step (thread-safe, idempotent)."""
        if not self.cancelled:
            self.cancelled = True
            self._wake()

    def deliver(self, items: list[Event | BaseException]) -> None:
        """Called on the event loop with a step's output for this request."""
        for item in items:
            self._queue.put_nowait(item)

    async def events(self) -> AsyncIterator[list[Event]]:
        """Batches of events, as they are available, until every sample has finished.

        Raises the backend's exception if the model failed while serving this request.
        """
        while self._open > 0:
            items = [await self._queue.get()]
            while not self._queue.empty():
                items.append(self._queue.get_nowait())
            events = []
            for item in items:
                if isinstance(item, BaseException):
                    raise item
                if item.finish_reason is not None:
                    self._open -= 1
                events.append(item)
            yield events


class Sample:
    """One sample being decoded: its stop matcher, held-back logprobs and output bookkeeping."""

    def __init__(self, handle: RequestHandle, index: int, token_text: list[str], eos_id: int | None) -> None:
        self.handle = handle
        self.params = handle.params
        self.index = index
        self.seed = handle.seed + index
        self.generated = 0
        self.done = False
        self._token_text = token_text
        self._eos_id = eos_id
        self._stops = StopMatcher(self.params.stop)
        self._plain = not self._stops.stops and not self.params.logprobs
        self._held: deque[tuple[str, float]] = deque()
        self._held_emitted = 0

    def accept(self, tokens: list[int], logprobs: list[float] | None) -> Event | None:
        """Take the tokens sampled for this sample since the last hand-over, in order.

        Returns the event to emit, if any. Tokens after the sample's end (end of text, a
        stop sequence, max_new_tokens) are dropped.
        """
        if self._plain:
            return self._accept_plain(tokens)
        merged = None
        for i, token in enumerate(tokens):
            event = self._accept_one(token, logprobs[i] if logprobs is not None else math.nan)
            if event is not None:
                merged = event if merged is None else merged.extend(event)
            if self.done:
                break
        return merged

    def _accept_plain(self, tokens: list[int]) -> Event | None:
        """``accept`` without stop sequences or logprobs: one join, no per-token state."""
        taken = tokens[: self.params.max_new_tokens - self.generated]
        if self._eos_id is not None and self._eos_id in taken:
            end = taken.index(self._eos_id)
            self.generated += end + 1
            return self.finish(FinishReason.END_OF_TEXT, "".join([self._token_text[t] for t in taken[:end]]))
        text = "".join([self._token_text[t] for t in taken])
        self.generated += len(taken)
        if self.generated >= self.params.max_new_tokens:
            return self.finish(FinishReason.LENGTH, text)
        return Event(self.index, self.seed, text) if text else None

    def _accept_one(self, token: int, logprob: float) -> Event | None:
        self.generated += 1
        if token == self._eos_id:
            return self.finish(FinishReason.END_OF_TEXT)
        text = self._token_text[token]
        if self.params.logprobs:
            self._held.append((text, logprob))
        emit, stop = self._stops.feed(text)
        if stop is not None:
            event = self.finish(FinishReason.STOP_SEQUENCE, emit, release_all=False)
            event.stop_sequence = stop
            return event
        if self.generated >= self.params.max_new_tokens:
            return self.finish(FinishReason.LENGTH, emit)
        if not emit:
            return None
        return Event(self.index, self.seed, emit, self._release(len(emit)))

    def finish(self, reason: FinishReason, text: str = "", release_all: bool = True) -> Event:
        self.done = True
        if release_all:
            text += self._stops.flush()
        released = self._release(len(text))
        if release_all:
            released.extend(self._held)
        self._held.clear()
        return Event(self.index, self.seed, text, released, reason, self.generated)

    def _release(self, chars: int) -> list[tuple[str, float]]:
        """Logprobs of the held tokens whose text is now fully emitted."""
        out = []
        self._held_emitted += chars
        while self._held and len(self._held[0][0]) <= self._held_emitted:
            text, lp = self._held.popleft()
            self._held_emitted -= len(text)
            out.append((text, lp))
        return out


def hand_over(events: list[tuple[RequestHandle, Event]]) -> None:
    """Hand (request, event) pairs to their requests, grouped per request."""
    by_handle: dict[RequestHandle, list[Event | BaseException]] = {}
    for handle, event in events:
        by_handle.setdefault(handle, []).append(event)
    if by_handle:
        post(by_handle)


def fail_requests(handles: list[RequestHandle], exc: Exception) -> None:
    """End ``handles`` with ``exc`` (their streams raise it)."""
    post({h: [exc] for h in handles})


def post(by_handle: dict[RequestHandle, list[Event | BaseException]]) -> None:
    """One ``call_soon_threadsafe`` per event loop per step, however many requests."""
    now = time.perf_counter()
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[RequestHandle, list[Event | BaseException]]]] = {}
    for handle, items in by_handle.items():
        if any(isinstance(i, Event) and i.finish_reason is not None for i in items):
            handle.finished_at = now
        by_loop.setdefault(handle.loop, []).append((handle, items))
    for loop, batch in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is listening any more
            loop.call_soon_threadsafe(_deliver, batch)


def _deliver(batch: list[tuple[RequestHandle, list[Event | BaseException]]]) -> None:
    for handle, items in batch:
        handle.deliver(items)
