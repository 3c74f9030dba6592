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

The pieces it works with live beside it: admission, the prompts being read and scoring
(``prompt_reading``, its base class), a request, its samples and the events they send
(``generation_requests``), the batch's rows and sampling over them (``decoding_batch``),
the step programs lent to the model (``step_batcher``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

from rnnserve.backends import LanguageModel
from rnnserve.edge.errors import RnnserveError
from rnnserve.runtime.decoding_batch import BatchParams, Rows
from rnnserve.runtime.generation_requests import FinishReason, RequestHandle, Sample, fail_requests, hand_over
from rnnserve.runtime.model_thread import settle, waiting_on_another_model
from rnnserve.runtime.prompt_reading import PromptReading
from rnnserve.runtime.sampling import SamplingParams
from rnnserve.runtime.step_batcher import StepBatcher
from rnnserve.runtime.step_programs import StepProgram, run_alone

log = logging.getLogger("rnnserve.scheduler")
T = TypeVar("T")

#: How often a decoding batch hands new text to its streams when no row has finished: 20 ms
#: is far below what a reader notices and lets a step's tokens travel in one message per
#: stream every few steps instead of one per step.
DEFAULT_EMIT_INTERVAL_S = 0.020

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


class LanguageModelScheduler(PromptReading):
    """Continuous-batching decoder for one language model."""

    thread_prefix = "scheduler"

    def __init__(self, name: str, model: LanguageModel, *, max_batch_size: int, max_queue: int,
                 emit_interval_s: float = DEFAULT_EMIT_INTERVAL_S) -> None:
        super().__init__(name, model, max_batch_size=max_batch_size, max_queue=max_queue)
        self.emit_interval_s = emit_interval_s
        self._jobs: deque[tuple[Callable[[], Any], Future[Any]]] = deque()
        self._programs: deque[tuple[Callable[[], StepProgram[Any]], Future[Any]]] = deque()
        self._idle_programs: deque[_Program] = deque()
        self._step_batcher = StepBatcher(model, self.stats, max_rows=max_batch_size, max_idle=max_batch_size)
        self._rows: Rows | None = None  # aligned with self._active; None when it is empty
        self._batch_params: BatchParams | None = None  # of self._active; rebuilt when it changes
        self._pending: list[torch.Tensor] = []  # tokens [B] of each step since the last hand-over
        self._pending_logprobs: list[torch.Tensor] = []  # their logprobs [B], when some row wants them
        self._last_emit = 0.0
        self._last_busy = 0.0  # time.monotonic() when work other than idle programs last ran

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

    # -- scheduler thread ------------------------------------------------------------

    def _has_work(self) -> bool:
        return self._busy() or (self._idle_pending() and self._until_idle() <= 0)

    def _busy(self) -> bool:
        """Whether work other than idle step programs is waiting (read without the lock by _process)."""
        return bool(self._waiting or self._jobs or self._active or self._programs or self._step_batcher.busy
                    or bool(self._prefilling))

    def _idle_pending(self) -> bool:
        """Whether idle step programs wait (new or lent); with ``not _busy()``, the lent are all idle ones."""
        return bool(self._idle_programs or len(self._step_batcher))

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
            self._step_batcher.add_idle(make, future)
        busy = bool(job or programs or admitted or self._active or self._step_batcher.busy or self._prefilling)
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
        if len(self._step_batcher):
            idle = not (busy or self._busy()) and self._until_idle() <= 0
            with self._model_call():
                self._step_batcher.round(idle=idle)
        if busy:
            self._last_busy = time.monotonic()

    def _start_programs(self, programs: list[_Program]) -> None:
        """Start new step programs for at most ``PROGRAM_START_BUDGET_S``; the rest go back to the
        front of the queue (a program's start may read, e.g. an assistant's document window)."""
        began = time.monotonic()
        for i, (make, future) in enumerate(programs):
            self._step_batcher.start(make, future)
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
        self._step_batcher.fail_waiters(exc)  # e.g. an assistant's search, waiting on a stuck step
        fail_requests(waiting, exc)

    def _fail_work(self, work: _Work, exc: RnnserveError) -> None:
        self._abandon_programs(([work.job] if work.job is not None else []) + work.programs, work.idle_programs, exc)
        fail_requests(work.admitted, exc)

    def _abandon_programs(self, calls: list[tuple[Any, Future[Any]]], idle: list[_Program],
                          exc: RnnserveError) -> None:
        for _, future in calls:
            settle(future, exc=exc)
        for _, future in idle:
            settle(future)

    def _abandon(self, exc: RnnserveError) -> None:
        self._abandon_queued(exc)
        self._step_batcher.abandon(exc)
        for live, reader, _ in self._prefilling:
            fail_requests(reader.waiting(live), exc)
        self._prefilling = []
        fail_requests(list({s.handle: None for s in self._active}), exc)
        self._active, self._rows = [], None

    def _run_job(self, fn: Callable[[], Any], future: Future[Any]) -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(fn())
        except Exception as exc:
            future.set_exception(exc)

    def _join(self, seqs: list[Sample], rows: Rows) -> None:
        if self._rows is None:
            self._active, self._rows = seqs, rows
        else:
            self._emit_pending()  # the pending tokens are per row of the batch as it was
            self._active = self._active + seqs
            self._rows = Rows.concat([self._rows, rows], self.model.state_batch_dims)
        self._batch_params = None
        self.stats.active_sequences = len(self._active)

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
        hand_over([(s.handle, s.finish(FinishReason.CANCELLED))
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
            rows.tokens, logprobs = rows.sample_tokens(logits, self._batch_params)
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
            fail_requests(list({s.handle: None for s in self._active}), exc)
            for s in self._active:
                s.done = True
        self._compact()

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
        hand_over(events)

