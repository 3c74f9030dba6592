"""Continuous batching for language models: one scheduler thread per model.

The event loop only moves messages; all model math runs on the scheduler's thread
(torch releases the GIL). Every iteration the scheduler

1. admits waiting requests while the batch has room: their prompts are read together
   (``forward`` calls over the rows still reading, no padding), at most
   ``PREFILL_CHUNK_TOKENS`` prompt tokens per iteration (shared by the groups of prompts
   being read), so that a long prompt is read in pieces with the running batch's steps,
   the lent programs' steps and shorter prompts' reads between them; once
   read, each state is copied once per sample (``n``), the first tokens sampled and sent;
2. drops sequences whose call was cancelled or whose deadline passed;
3. runs one batched ``step`` over every active sequence and samples every row with its
   own parameters and random stream, in tensor operations over the whole batch;
4. hands the new text to the streams when a row has finished (end of text, length) or
   ``emit_interval_s`` has passed since the last hand-over, removing finished rows (an
   ``index_select`` over the state's batch dims);
5. advances the step programs lent the model (``run_steps``: e.g. writing-assistant
   searches of concurrent sessions) by one batched step for all of them together; when it
   has nothing else to do, the idle ones (``run_steps_idle``: e.g. a session's search for
   the keystroke it expects next).

Per step there is no Python work per sequence: the tokens of the steps between two
hand-overs are stacked, and the per-sequence work (decoding text, stop sequences,
logprobs, one message per stream) happens once per hand-over. A stop sequence is found
at the next hand-over; the few tokens sampled after it are dropped.

Because an RNN's whole context is its fixed-size state, joining and leaving the batch is
a gather/scatter of a few KB per sequence.

The pieces it works with live beside it: a request, its samples and the events they send
(``generation_requests``), the batch's rows and the prompts being read (``decoding_batch``),
the step programs lent to the model (``step_batcher``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

from rnnserve.backends import LanguageModel, State
from rnnserve.decoding_batch import BatchParams, PrefillRead, Rows
from rnnserve.errors import RnnserveError
from rnnserve.generation_requests import Event, FinishReason, RequestHandle, Sample
from rnnserve.model_thread import ModelThread, settle, waiting_on_another_model
from rnnserve.sampling import SamplingParams, UniformBank, apply_repetition_penalty, sample, seen_mask
from rnnserve.state import concat_states, select_rows
from rnnserve.step_batcher import StepBatcher
from rnnserve.step_programs import StepProgram, run_alone

log = logging.getLogger("rnnserve.scheduler")
T = TypeVar("T")

#: How often a decoding batch hands new text to its streams when no row has finished: 20 ms
#: is far below what a reader notices and lets a step's tokens travel in one message per
#: stream every few steps instead of one per step.
DEFAULT_EMIT_INTERVAL_S = 0.020


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


#: A burst of requests reaching an idle scheduler is gathered into one prefill: admission
#: waits while requests keep arriving less than ``BURST_GAP_S`` apart, for at most
#: ``BURST_WAIT_S`` (a lone request waits one gap).
BURST_GAP_S = 0.0005
BURST_WAIT_S = 0.02

#: Prompt tokens (rows x positions) one model call reads while admitting requests, and
#: tokens one scoring call reads: every model call stays far inside ``step_timeout_s``
#: whatever the request, and other users' steps run between the pieces. On a 2-core machine
#: busy with other jobs, austen-char-lstm-int8 read 2,048 characters in 0.3-0.5 s with one
#: torch thread but 7-27 s with two (threads waiting for each other on oversubscribed
#: cores); 512 keep even that a few seconds.
PREFILL_CHUNK_TOKENS = 512

#: Seconds of starting new step programs (their Python up to their first step: e.g. an
#: assistant reading a document's window) per iteration; the rest start in the next ones,
#: after a step of the running batch.
PROGRAM_START_BUDGET_S = 0.05

#: Idle step programs (``run_steps_idle``) run once the scheduler has had no other work, and
#: no idle program was lent, for this long: what was just answered (e.g. a keystroke's
#: suggestions) reaches its caller before they take the interpreter lock for their Python.
IDLE_AFTER_S = 0.001

#: A step program to start (``run_steps`` / ``run_steps_idle``): its factory and the future of its result.
_Program = tuple[Callable[[], StepProgram[Any]], Future[Any]]


@dataclass
class _Work:
    """One scheduler iteration's intake, taken from the queues under the lock."""

    #: A job to run on the model's thread (scoring, ``call``), with its future; None: none waiting.
    job: tuple[Callable[[], Any], Future[Any]] | None
    #: New step programs (``run_steps``).
    programs: list[_Program]
    #: Waiting requests that fit in the batch.
    admitted: list[RequestHandle]
    #: New idle step programs (``run_steps_idle``).
    idle_programs: list[_Program]


class LanguageModelScheduler(ModelThread):
    """Continuous-batching decoder for one language model."""

    thread_prefix = "scheduler"

    def __init__(self, name: str, model: LanguageModel, *, max_batch_size: int, max_queue: int,
                 emit_interval_s: float = DEFAULT_EMIT_INTERVAL_S) -> None:
        super().__init__(name, max_queue=max_queue)
        self.model = model
        self.vocab = model.vocab
        self.max_batch_size = max_batch_size
        self.emit_interval_s = emit_interval_s
        self._token_text = [self.vocab.decode([i]) for i in range(self.vocab.size)]
        self._waiting: deque[RequestHandle] = deque()
        self._jobs: deque[tuple[Callable[[], Any], Future[Any]]] = deque()
        self._programs: deque[tuple[Callable[[], StepProgram[Any]], Future[Any]]] = deque()
        self._idle_programs: deque[_Program] = deque()
        self._lent = StepBatcher(model, self.stats, max_rows=max_batch_size, max_idle=max_batch_size)
        self._active: list[Sample] = []
        self._rows: Rows | None = None  # aligned with self._active; None when it is empty
        self._batch_params: BatchParams | None = None  # of self._active; rebuilt when it changes
        self._pending: list[torch.Tensor] = []  # tokens [B] of each step since the last hand-over
        self._pending_logprobs: list[torch.Tensor] = []  # their logprobs [B], when some row wants them
        self._last_emit = 0.0
        self._last_arrival = 0.0  # time.monotonic() of the newest submit
        self._last_busy = 0.0  # time.monotonic() when work other than idle programs last ran
        #: Groups of admitted requests whose prompts are being read (see PrefillRead), oldest
        #: first, each with when its admission began.
        self._prefilling: list[tuple[list[RequestHandle], PrefillRead, float]] = []

    # -- event-loop side -------------------------------------------------------------

    def submit(self, prompt_ids: list[int], params: SamplingParams) -> RequestHandle:
        """Queue a generation; raises Overloaded when the waiting queue is full."""
        handle = RequestHandle(asyncio.get_running_loop(), prompt_ids, params, params.resolved_seed(), self._wake)
        self._enqueue(handle)
        return handle

    def _enqueue(self, handle: RequestHandle) -> None:
        self._push(self._waiting, handle)
        self._last_arrival = time.monotonic()

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
        future = self._enqueue_job(fn)
        with waiting_on_another_model():  # a caller's own model call is not hung while it waits here
            return future.result()

    def run_steps(self, make: Callable[[], StepProgram[T]]) -> T:
        """Run the step program ``make()`` on the scheduler thread, its steps batched with those
        of the other programs running then (see ``step_programs``); blocks the calling thread."""
        if threading.current_thread() is self._thread:
            return run_alone(self.model, make())
        future: Future[T] = Future()
        self._push(self._programs, (make, future), count=False)
        with waiting_on_another_model():
            return future.result()

    def run_steps_idle(self, make: Callable[[], StepProgram[T]]) -> Future[T | None]:
        """Run the step program ``make()`` when the model has nothing else to do (no generation,
        job or other program waiting); returns at once. For work that may be wasted, such as
        precomputing a likely next request. The future gets None if the program is dropped
        (more than ``max_batch_size`` waiting)."""
        future: Future[T | None] = Future()
        with self._cv:
            if self._stopping:
                future.set_result(None)
                return future
            self._idle_programs.append((make, future))
            # The caller is about to answer someone (e.g. a keystroke): quiet starts now.
            self._last_busy = time.monotonic()
            self._cv.notify()
        return future

    async def score(self, text_ids: list[int], context_ids: list[int]) -> ScoreResult:
        """Log-probability of each token of ``text_ids`` after start-of-text and ``context_ids``:
        read ``PREFILL_CHUNK_TOKENS`` at a time, one job each, so other work runs between them."""
        ids = [self.vocab.bos_id, *context_ids, *text_ids]
        state: State | None = None
        picked: list[float] = []
        for start in range(0, len(ids) - 1, PREFILL_CHUNK_TOKENS):
            stop = min(len(ids) - 1, start + PREFILL_CHUNK_TOKENS)
            logprobs, state = await self.run_job(lambda a=start, b=stop, s=state: self._score_chunk(ids, a, b, s))
            picked += logprobs
        picked = picked[len(context_ids):]
        return ScoreResult([(self._token_text[t], lp) for t, lp in zip(text_ids, picked, strict=True)])

    # -- scheduler thread ------------------------------------------------------------

    def _has_work(self) -> bool:
        return self._busy() or (self._idle_pending() and self._until_idle() <= 0)

    def _busy(self) -> bool:
        """Whether work other than idle step programs is waiting (read without the lock by _process)."""
        return bool(self._waiting or self._jobs or self._active or self._programs or self._lent.busy
                    or bool(self._prefilling))

    def _idle_pending(self) -> bool:
        """Whether idle step programs wait (new or lent); with ``not _busy()``, the lent are all idle ones."""
        return bool(self._idle_programs or len(self._lent))

    def _until_idle(self) -> float:
        """Seconds until idle programs may run (<= 0: they may now; see ``IDLE_AFTER_S``)."""
        return self._last_busy + IDLE_AFTER_S - time.monotonic()

    def _wait_s(self) -> float | None:
        return max(0.0, self._until_idle()) if self._idle_pending() else None

    def _take(self) -> _Work:
        """One job (scoring, lent work), the new step programs, the waiting requests that fit
        in the batch and the new idle step programs."""
        programs, idle = list(self._programs), list(self._idle_programs)
        self._programs.clear()
        self._idle_programs.clear()
        return _Work(self._jobs.popleft() if self._jobs else None, programs, self._take_admissible(), idle)

    def _process(self, work: _Work) -> None:
        """One iteration: a job, admissions (prefill), drop cancelled, one batched step, one
        batched step of the lent step programs."""
        job, programs, admitted = work.job, work.programs, work.admitted
        for make, future in work.idle_programs:
            self._lent.add_idle(make, future)
        busy = bool(job or programs or admitted or self._active or self._lent.busy or self._prefilling)
        if job is not None:
            with self._model_call():
                self._run_job(*job)
        if admitted:
            if not self._active:
                admitted += self._gather_burst(sum(h.params.n for h in admitted if not h.cancelled))
            self._admit(admitted)
        if self._prefilling:
            with self._model_call():
                self._read_prompts()
        self._drop_cancelled()
        if self._active:
            with self._model_call():
                self._step()
        if programs:
            with self._model_call():
                self._start_programs(programs)
        if len(self._lent):
            idle = not (busy or self._busy()) and self._until_idle() <= 0
            with self._model_call():
                self._lent.round(idle=idle)
        if busy:
            self._last_busy = time.monotonic()

    def _start_programs(self, programs: list[_Program]) -> None:
        """Start new step programs for at most ``PROGRAM_START_BUDGET_S``; the rest go back to the
        front of the queue (a program's start may read, e.g. an assistant's document window)."""
        began = time.monotonic()
        for i, (make, future) in enumerate(programs):
            self._lent.start(make, future)
            if time.monotonic() - began > PROGRAM_START_BUDGET_S and i + 1 < len(programs):
                with self._cv:
                    self._programs.extendleft(reversed(programs[i + 1:]))
                return

    def _abandon_queued(self, exc: RnnserveError) -> None:
        with self._cv:
            waiting, jobs, programs, idle = (list(self._waiting), list(self._jobs), list(self._programs),
                                             list(self._idle_programs))
            for queue in (self._waiting, self._jobs, self._programs, self._idle_programs):
                queue.clear()
        self._abandon_programs(jobs + programs, idle, exc)
        self._lent.fail_waiters(exc)  # e.g. an assistant's search, waiting on a stuck step
        self._fail(waiting, exc)

    def _fail_work(self, work: _Work, exc: RnnserveError) -> None:
        self._abandon_programs(([work.job] if work.job is not None else []) + work.programs, work.idle_programs, exc)
        self._fail(work.admitted, exc)

    def _abandon_programs(self, calls: list[tuple[Any, Future[Any]]], idle: list[_Program],
                          exc: RnnserveError) -> None:
        for _, future in calls:
            settle(future, exc=exc)
        for _, future in idle:
            settle(future)

    def _abandon(self, exc: RnnserveError) -> None:
        self._abandon_queued(exc)
        self._lent.abandon(exc)
        for live, reader, _ in self._prefilling:
            self._fail(reader.waiting(live), exc)
        self._prefilling = []
        self._fail(list({s.handle: None for s in self._active}), exc)
        self._active, self._rows = [], None

    def _gather_burst(self, rows: int) -> list[RequestHandle]:
        """More waiting requests for an idle scheduler's first prefill (``rows`` rows taken so
        far) while a burst is still arriving (see ``BURST_GAP_S``): 64 clients starting
        together become one prefill of 64 prompts rather than a dozen small ones."""
        more: list[RequestHandle] = []
        deadline = time.monotonic() + BURST_WAIT_S
        while rows < self.max_batch_size and time.monotonic() < deadline:
            if time.monotonic() - self._last_arrival >= BURST_GAP_S:
                break
            time.sleep(BURST_GAP_S / 4)
            with self._cv:
                taken = self._take_admissible(self.max_batch_size - rows)
            more += taken
            rows += sum(h.params.n for h in taken if not h.cancelled)
        return more

    def _take_admissible(self, free: int | None = None) -> list[RequestHandle]:
        """Pop waiting requests that fit in the batch, or in ``free`` rows (called with the lock held)."""
        if free is None:  # the rows of the prompts being read are taken too
            free = self.max_batch_size - len(self._active) - sum(h.params.n for live, reader, _ in self._prefilling
                                                                 for h in reader.waiting(live))
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
        """Start reading the admitted prompts together (``_read_prompts`` goes on with them);
        cancelled ones finish at once."""
        now = time.perf_counter()
        live = []
        for handle in handles:
            handle.admitted_at = now
            if handle.cancelled:
                self._cancel_unread(handle)
            else:
                live.append(handle)
        if live:
            reader = PrefillRead(self.model, [[self.vocab.bos_id, *h.prompt_ids] for h in live])
            self._prefilling.append((live, reader, now))

    def _cancel_unread(self, handle: RequestHandle) -> None:
        self._emit([(handle, Sample(handle, i, self._token_text, self.vocab.eos_id)
                     .finish(FinishReason.CANCELLED)) for i in range(handle.params.n)])

    def _read_prompts(self) -> None:
        """Read the next ``PREFILL_CHUNK_TOKENS`` of the admitted prompts, shared among the groups
        being read (a short prompt that arrives during a long one's read is not kept waiting
        for all of it)."""
        groups, self._prefilling = self._prefilling, []
        budget = max(1, PREFILL_CHUNK_TOKENS // len(groups))
        for group in groups:
            if not self._read_group(*group, budget):
                self._prefilling.append(group)

    def _read_group(self, live: list[RequestHandle], reader: PrefillRead, now: float, budget: int) -> bool:
        """Read ``budget`` more tokens of a group's prompts; once all are read, fork each into its
        n samples, sample and send their first tokens, and join the batch. Whether it is done."""
        if all(h.cancelled for h in reader.waiting(live)):  # nobody waits for the rest of the read
            for handle in reader.waiting(live):
                self._cancel_unread(handle)
            return True
        dims = self.model.state_batch_dims
        try:
            reader.advance(budget)
            finished = reader.take_finished()
            if not finished:
                return False
            elapsed = time.perf_counter() - now
            seqs, logits, states = [], [], []
            for handle, last, state in ((live[i], last, state) for i, last, state in finished):
                handle.prefill_seconds = elapsed
                n = handle.params.n
                seqs += [Sample(handle, i, self._token_text, self.vocab.eos_id) for i in range(n)]
                logits.append(last.expand(n, -1))
                states.append(tuple(torch.cat([t] * n, dim=d) for t, d in zip(state, dims, strict=True)))
            rows = Rows(
                state=concat_states(states, dims),
                tokens=torch.empty(len(seqs), dtype=torch.long),
                remaining=torch.tensor([s.params.max_new_tokens - 1 for s in seqs]),
                seen=seen_mask([set(s.handle.prompt_ids) for s in seqs], self.vocab.size),
                uniforms=UniformBank.seeded([s.seed for s in seqs]))
            rows.tokens, first_logprobs = self._sample(torch.cat(logits), rows, BatchParams.of(seqs))
        except Exception as exc:
            log.exception("model %s failed during prefill", self.name)
            self._fail(reader.waiting(live), exc)
            return True
        self.stats.tokens_total += len(seqs)
        tokens = rows.tokens.tolist()
        logprobs = first_logprobs.tolist() if first_logprobs is not None else None
        events = [(seq.handle, event) for row, seq in enumerate(seqs)
                  if (event := seq.accept([tokens[row]], [logprobs[row]] if logprobs else None)) is not None]
        self._emit(events)  # first tokens go out at once (time to first token)
        reader.joined.update(i for i, _, _ in finished)
        keep = [i for i, s in enumerate(seqs) if not s.done]
        if keep:
            self._join([seqs[i] for i in keep], rows.select(torch.tensor(keep), dims))
        return reader.done

    def _join(self, seqs: list[Sample], rows: Rows) -> None:
        if self._rows is None:
            self._active, self._rows = seqs, rows
        else:
            self._emit_pending()  # the pending tokens are per row of the batch as it was
            self._active = self._active + seqs
            self._rows = Rows.concat([self._rows, rows], self.model.state_batch_dims)
        self._batch_params = None
        self.stats.active_sequences = len(self._active)

    def _select(self, state: State, index: torch.Tensor) -> State:
        return select_rows(state, self.model.state_batch_dims, index)

    def _compact(self) -> None:
        """Remove finished sequences from the batch."""
        keep = [i for i, s in enumerate(self._active) if not s.done]
        if len(keep) == len(self._active):
            return
        self._emit_pending()
        if keep and self._rows is not None:
            self._rows = self._rows.select(torch.tensor(keep), self.model.state_batch_dims)
        else:
            self._rows = None
        self._active = [self._active[i] for i in keep]
        self._batch_params = None
        self.stats.active_sequences = len(self._active)

    def _drop_cancelled(self) -> None:
        if not any(s.handle.cancelled and not s.done for s in self._active):
            return
        self._emit_pending()
        self._emit([(s.handle, s.finish(FinishReason.CANCELLED))
                    for s in self._active if s.handle.cancelled and not s.done])
        self._compact()

    def _step(self) -> None:
        """One batched decoding step; hands the text over when a row ended or the interval passed."""
        rows = self._rows
        assert rows is not None
        try:
            logits, rows.state = self.model.step(rows.tokens, rows.state)
            self.stats.steps_total += 1
            self.stats.batch_rows_total += len(self._active)
            self.stats.tokens_total += len(self._active)
            if self._batch_params is None:
                self._batch_params = BatchParams.of(self._active)
            rows.tokens, logprobs = self._sample(logits, rows, self._batch_params)
            self._pending.append(rows.tokens)
            if logprobs is not None:
                self._pending_logprobs.append(logprobs)
            rows.remaining -= 1
            ended = rows.remaining <= 0
            if self.vocab.eos_id is not None:
                ended |= rows.tokens == self.vocab.eos_id
            if bool(ended.any()) or time.perf_counter() - self._last_emit >= self.emit_interval_s:
                self._emit_pending()
        except Exception as exc:
            log.exception("model %s failed during a decoding step", self.name)
            self._pending.clear()
            self._pending_logprobs.clear()
            self._fail(list({s.handle: None for s in self._active}), exc)
            for s in self._active:
                s.done = True
        self._compact()

    def _sample(self, logits: torch.Tensor, rows: Rows, batch: BatchParams
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One token per row of ``logits`` [B, V]: tokens [B] int64 and, if some row wants them,
        their logprobs [B] float32 (under the unpenalised distribution)."""
        raw = logits.float()
        logits = raw
        if batch.penalty is not None:
            logits = apply_repetition_penalty(raw, batch.penalty, rows.seen)
        if batch.greedy:
            tokens = logits.argmax(dim=-1)
        else:
            tokens = sample(logits, batch.temperature, batch.top_k, batch.top_p, rows.uniforms.draw(),
                            some_greedy=batch.some_greedy)
        if batch.penalty is not None:
            rows.seen[torch.arange(len(tokens)), tokens] = True
        logprobs = torch.log_softmax(raw, dim=-1).gather(1, tokens[:, None]).squeeze(1) if batch.logprobs else None
        return tokens, logprobs

    def _emit_pending(self) -> None:
        """Hand the tokens sampled since the last hand-over to their sequences: one event per
        sequence, with every step's text (sequences that end drop what follows their end)."""
        self._last_emit = time.perf_counter()
        if not self._pending:
            return
        tokens = torch.stack(self._pending, dim=1).tolist()  # [B, steps]
        logprobs = torch.stack(self._pending_logprobs, dim=1).tolist() if self._pending_logprobs else None
        self._pending.clear()
        self._pending_logprobs.clear()
        events = []
        for row, seq in enumerate(self._active):
            if not seq.done:
                event = seq.accept(tokens[row], logprobs[row] if logprobs is not None else None)
                if event is not None:
                    events.append((seq.handle, event))
        self._emit(events)

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

    def _score_chunk(self, ids: list[int], start: int, stop: int, state: State | None) -> tuple[list[float], State]:
        """Log-probabilities of ``ids[start + 1 : stop + 1]``, reading ``ids[start:stop]`` after
        ``state`` (None: the initial state), and the state after them."""
        inputs = torch.tensor([ids[start:stop]], dtype=torch.long)
        logits, state = self.model.forward(inputs, self.model.initial_state(1) if state is None else state)
        logprobs = torch.log_softmax(logits[0].float(), dim=-1)
        targets = torch.tensor(ids[start + 1: stop + 1])
        return logprobs.gather(1, targets[:, None]).squeeze(1).tolist(), state


def _deliver(batch: list[tuple[RequestHandle, list[Event | BaseException]]]) -> None:
    for handle, items in batch:
        handle.deliver(items)
