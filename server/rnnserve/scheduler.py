"""Continuous batching for language models: one scheduler thread per model.

The event loop only moves messages; all model math runs on the scheduler's thread
(torch releases the GIL). Every iteration the scheduler

1. admits waiting requests while the batch has room: their prompts are read together
   (one whole-sequence ``forward`` per distinct prompt length, no padding), each state
   copied once per sample (``n``), the first tokens sampled;
2. drops sequences whose call was cancelled or whose deadline passed;
3. runs one batched ``step`` over every active sequence, samples each row with its own
   parameters and generator, checks stop conditions and emits text;
4. removes finished sequences (an ``index_select`` over the state's batch dims).

Because an RNN's whole context is its fixed-size state, joining and leaving the batch is
a gather/scatter of a few KB per sequence.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import math
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import torch

from rnnserve.backends import LanguageModel, State
from rnnserve.model_thread import ModelThread
from rnnserve.sampling import SamplingParams, SequenceRng, apply_repetition_penalty, sample, seen_mask
from rnnserve.stopping import StopMatcher

log = logging.getLogger("rnnserve.scheduler")


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


class _Sequence:
    """One sample being decoded: its sampler, stop matcher and held-back logprobs."""

    def __init__(self, handle: RequestHandle, index: int, token_text: list[str], eos_id: int | None) -> None:
        self.handle = handle
        self.params = handle.params
        self.index = index
        self.seed = handle.seed + index
        self.rng = SequenceRng(self.seed)
        self.seen: set[int] = set(handle.prompt_ids) if self.params.repetition_penalty != 1.0 else set()
        self.generated = 0
        self.done = False
        self._token_text = token_text
        self._eos_id = eos_id
        self._stops = StopMatcher(self.params.stop)
        self._held: deque[tuple[str, float]] = deque()
        self._held_emitted = 0

    def accept(self, token: int, logprob: float) -> Event | None:
        """Take the sampled token; returns the event to emit, if any."""
        self.generated += 1
        if self.params.repetition_penalty != 1.0:
            self.seen.add(token)
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


@dataclass(frozen=True)
class _BatchParams:
    """The sampling parameters of a batch's rows as tensors, built once per batch membership."""

    temperature: torch.Tensor  # [batch] float32
    top_k: torch.Tensor  # [batch] int64
    top_p: torch.Tensor  # [batch] float32
    penalty: torch.Tensor | None  # [batch] float32, None when no row uses a penalty
    greedy: bool  # every row has temperature 0
    logprobs: bool  # some row wants logprobs

    @classmethod
    def of(cls, seqs: list[_Sequence]) -> _BatchParams:
        params = [s.params for s in seqs]
        penalised = any(p.repetition_penalty != 1.0 for p in params)
        return cls(
            temperature=torch.tensor([p.temperature for p in params]),
            top_k=torch.tensor([p.top_k for p in params], dtype=torch.long),
            top_p=torch.tensor([p.top_p for p in params]),
            penalty=torch.tensor([p.repetition_penalty for p in params]) if penalised else None,
            greedy=all(p.temperature <= 0 for p in params),
            logprobs=any(p.logprobs for p in params),
        )


@dataclass
class ScoreResult:
    """Per-token log-probabilities of a scored text."""

    tokens: list[tuple[str, float]]

    @property
    def total(self) -> float:
        return sum(lp for _, lp in self.tokens)

    @property
    def nats_per_token(self) -> float:
        return -self.total / len(self.tokens) if self.tokens else 0.0


class LanguageModelScheduler(ModelThread):
    """Continuous-batching decoder for one language model."""

    thread_prefix = "scheduler"

    def __init__(self, name: str, model: LanguageModel, *, max_batch_size: int, max_queue: int) -> None:
        super().__init__(name, max_queue=max_queue)
        self.model = model
        self.vocab = model.vocab
        self.max_batch_size = max_batch_size
        self._token_text = [self.vocab.decode([i]) for i in range(self.vocab.size)]
        self._waiting: deque[RequestHandle] = deque()
        self._jobs: deque[tuple[Callable[[], Any], Future[Any]]] = deque()
        self._active: list[_Sequence] = []
        self._state: State = ()
        self._tokens = torch.empty(0, dtype=torch.long)
        self._batch_params: _BatchParams | None = None  # of self._active; rebuilt when it changes

    # -- event-loop side -------------------------------------------------------------

    def submit(self, prompt_ids: list[int], params: SamplingParams) -> RequestHandle:
        """Queue a generation; raises Overloaded when the waiting queue is full."""
        handle = RequestHandle(asyncio.get_running_loop(), prompt_ids, params, params.resolved_seed(), self._wake)
        self._push(self._waiting, handle)
        return handle

    def _enqueue_job(self, fn: Callable[[], Any]) -> Future[Any]:
        future: Future[Any] = Future()
        self._push(self._jobs, (fn, future), count=False)
        return future

    async def run_job(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the scheduler thread between two steps and return its result."""
        return await asyncio.wrap_future(self._enqueue_job(fn))

    def call(self, fn: Callable[[], Any]) -> Any:
        """Like ``run_job``, for callers on other threads (e.g. an assistant's worker): blocks."""
        if threading.current_thread() is self._thread:
            return fn()
        return self._enqueue_job(fn).result()

    async def score(self, text_ids: list[int], context_ids: list[int]) -> ScoreResult:
        """Log-probability of each token of ``text_ids`` after start-of-text and ``context_ids``."""
        return await self.run_job(lambda: self._score(text_ids, context_ids))

    # -- scheduler thread ------------------------------------------------------------

    def _has_work(self) -> bool:
        return bool(self._waiting or self._jobs or self._active)

    def _take(self) -> tuple[tuple[Callable[[], Any], Future[Any]] | None, list[RequestHandle]]:
        """One job (scoring, lent work) and the waiting requests that fit in the batch."""
        return (self._jobs.popleft() if self._jobs else None), self._take_admissible()

    def _process(self, work: tuple[tuple[Callable[[], Any], Future[Any]] | None, list[RequestHandle]]) -> None:
        """One iteration: a job, admissions (prefill), drop cancelled, one batched step."""
        job, admitted = work
        if job is not None:
            with self._model_call():
                self._run_job(*job)
        if admitted:
            with self._model_call():
                self._admit(admitted)
        self._drop_cancelled()
        if self._active:
            with self._model_call():
                self._step()

    def _take_admissible(self) -> list[RequestHandle]:
        """Pop waiting requests that fit in the batch (called with the lock held)."""
        free = self.max_batch_size - len(self._active)
        taken = []
        while self._waiting and (self._waiting[0].cancelled or self._waiting[0].params.n <= free):
            handle = self._waiting.popleft()
            if not handle.cancelled:
                free -= handle.params.n
            taken.append(handle)
        self.stats.queue_depth = len(self._waiting)
        return taken

    def _run_job(self, fn: Callable[[], Any], future: Future[Any]) -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(fn())
        except Exception as exc:
            future.set_exception(exc)

    def _admit(self, handles: list[RequestHandle]) -> None:
        """Prefill the admitted prompts together, fork each into its n samples, sample their
        first tokens and join the batch."""
        now = time.perf_counter()
        live = []
        for handle in handles:
            handle.admitted_at = now
            if handle.cancelled:
                self._emit([(handle, _Sequence(handle, i, self._token_text, self.vocab.eos_id)
                             .finish(FinishReason.CANCELLED)) for i in range(handle.params.n)])
            else:
                live.append(handle)
        if not live:
            return
        try:
            prefilled = self._prefill([[self.vocab.bos_id, *h.prompt_ids] for h in live])
            elapsed = time.perf_counter() - now
            seqs, rows, states = [], [], []
            for handle, (last, state) in zip(live, prefilled, strict=True):
                handle.prefill_seconds = elapsed
                n = handle.params.n
                seqs += [_Sequence(handle, i, self._token_text, self.vocab.eos_id) for i in range(n)]
                rows.append(last.expand(n, -1))
                states.append(tuple(torch.cat([t] * n, dim=d)
                                    for t, d in zip(state, self.model.state_batch_dims, strict=True)))
            state = self._concat(states)
            tokens = self._advance(seqs, torch.cat(rows), _BatchParams.of(seqs))
        except Exception as exc:
            log.exception("model %s failed during prefill", self.name)
            self._fail(live, exc)
            return
        keep = [i for i, s in enumerate(seqs) if not s.done]
        if keep:
            index = torch.tensor(keep)
            self._join([seqs[i] for i in keep], self._select(state, index), tokens[index])

    def _prefill(self, prompts: list[list[int]]) -> list[tuple[torch.Tensor, State]]:
        """Read several prompts at once: (next-token logits [vocab], state with batch 1) each.

        Sorted by length, the batch reads up to the end of the shortest remaining prompt in
        one ``forward``; the rows that end there leave with their states and the rest read
        on. No padding is ever read, and there is one call per distinct prompt length.
        """
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        lengths = [len(prompts[i]) for i in order]
        tokens = torch.zeros(len(order), lengths[-1], dtype=torch.long)
        for row, i in enumerate(order):
            tokens[row, : lengths[row]] = torch.tensor(prompts[i])
        results: list[tuple[torch.Tensor, State] | None] = [None] * len(prompts)
        state = self.model.initial_state(len(order))
        first, pos = 0, 0
        while first < len(order):
            end = lengths[first]
            logits, state = self.model.forward(tokens[first:, pos:end], state)
            done = first
            while done < len(order) and lengths[done] == end:
                results[order[done]] = (logits[done - first, -1], self._select(state, torch.tensor([done - first])))
                done += 1
            state = self._select(state, torch.arange(done - first, len(order) - first))
            first, pos = done, end
        return [r for r in results if r is not None]

    def _concat(self, states: list[State]) -> State:
        return tuple(torch.cat(parts, dim=d)
                     for parts, d in zip(zip(*states, strict=True), self.model.state_batch_dims, strict=True))

    def _join(self, seqs: list[_Sequence], state: State, tokens: torch.Tensor) -> None:
        if not self._active:
            self._active, self._state, self._tokens = seqs, state, tokens
        else:
            self._active = self._active + seqs
            self._state = self._concat([self._state, state])
            self._tokens = torch.cat([self._tokens, tokens])
        self._batch_params = None
        self.stats.active_sequences = len(self._active)

    def _select(self, state: State, index: torch.Tensor) -> State:
        return tuple(t.index_select(d, index) for t, d in zip(state, self.model.state_batch_dims, strict=True))

    def _compact(self) -> None:
        """Remove finished sequences from the batch."""
        keep = [i for i, s in enumerate(self._active) if not s.done]
        if len(keep) == len(self._active):
            return
        if keep:
            index = torch.tensor(keep)
            self._state = self._select(self._state, index)
            self._tokens = self._tokens[index]
        else:
            self._state, self._tokens = (), self._tokens[:0]
        self._active = [self._active[i] for i in keep]
        self._batch_params = None
        self.stats.active_sequences = len(self._active)

    def _drop_cancelled(self) -> None:
        events = [(s.handle, s.finish(FinishReason.CANCELLED))
                  for s in self._active if s.handle.cancelled and not s.done]
        if events:
            self._emit(events)
            self._compact()

    def _step(self) -> None:
        try:
            logits, self._state = self.model.step(self._tokens, self._state)
            self.stats.steps_total += 1
            self.stats.batch_rows_total += len(self._active)
            if self._batch_params is None:
                self._batch_params = _BatchParams.of(self._active)
            self._tokens = self._advance(self._active, logits, self._batch_params)
        except Exception as exc:
            log.exception("model %s failed during a decoding step", self.name)
            self._fail(list({s.handle: None for s in self._active}), exc)
            for s in self._active:
                s.done = True
        self._compact()

    def _advance(self, seqs: list[_Sequence], logits: torch.Tensor, batch: _BatchParams) -> torch.Tensor:
        """Sample one token for each row of ``logits`` [len(seqs), vocab]; emit; mark finished."""
        raw = logits.float()
        logits = raw
        if batch.penalty is not None:
            logits = apply_repetition_penalty(raw, batch.penalty, seen_mask([s.seen for s in seqs], raw.shape[-1]))
        if batch.greedy:
            tokens = logits.argmax(dim=-1)
        else:
            uniforms = torch.tensor([s.rng.uniform() if s.params.temperature > 0 else 0.0 for s in seqs],
                                    dtype=torch.float64)
            tokens = sample(logits, batch.temperature, batch.top_k, batch.top_p, uniforms)
        if batch.logprobs:
            logprobs = torch.log_softmax(raw, dim=-1).gather(1, tokens[:, None]).squeeze(1).tolist()
        else:
            logprobs = [math.nan] * len(seqs)
        self.stats.tokens_total += len(seqs)
        events = []
        for seq, token, lp in zip(seqs, tokens.tolist(), logprobs, strict=True):
            event = seq.accept(token, lp)
            if event is not None:
                events.append((seq.handle, event))
        self._emit(events)
        return tokens

    def _emit(self, events: list[tuple[RequestHandle, Event]]) -> None:
        """Hand (request, event) pairs to their requests, grouped per request."""
        by_handle: dict[RequestHandle, list[Event | BaseException]] = {}
        for handle, event in events:
            by_handle.setdefault(handle, []).append(event)
        if by_handle:
            self._post(by_handle)

    def _post(self, by_handle: dict[RequestHandle, list[Event | BaseException]]) -> None:
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

    def _fail(self, handles: list[RequestHandle], exc: Exception) -> None:
        self._post({h: [exc] for h in handles})

    def _score(self, text_ids: list[int], context_ids: list[int]) -> ScoreResult:
        ids = [self.vocab.bos_id, *context_ids, *text_ids]
        inputs = torch.tensor([ids[:-1]], dtype=torch.long)
        logits, _ = self.model.forward(inputs, self.model.initial_state(1))
        logprobs = torch.log_softmax(logits[0].float(), dim=-1)
        targets = torch.tensor(ids[1:])
        picked = logprobs.gather(1, targets[:, None]).squeeze(1)[len(context_ids):].tolist()
        return ScoreResult([(self._token_text[t], lp) for t, lp in zip(text_ids, picked, strict=True)])


def _deliver(batch: list[tuple[RequestHandle, list[Event | BaseException]]]) -> None:
    for handle, items in batch:
        handle.deliver(items)
