"""The thread that runs one model's math, and its bounded, condition-guarded queues.

Every scheduler (language-model continuous batching, translator batching, assistant
jobs) is one of these: the event loop only pushes work and awaits futures; the model's
math runs on this thread under ``torch.inference_mode()``. While a model call runs,
``step_started_at`` holds its start time for the watchdog (``watchdog.py``).

A thread that ends, stopped or by an error its work did not catch (a bug: backends' errors
are caught where they happen), fails everything still queued (``_abandon``) so that no
caller waits forever, refuses new work, and reports the error (``on_crash``: the registry
marks the model FAILED).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, InvalidStateError
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

from rnnserve.edge.errors import ModelFailed, ModelUnavailable, Overloaded, RnnserveError

T = TypeVar("T")
log = logging.getLogger("rnnserve.model_thread")

#: Per thread: the running-calls map (``ModelThread._calls_started``) of the model call this
#: thread is running, if any (see :func:`waiting_on_another_model`).
_running = threading.local()


@dataclass
class SchedulerStats:
    """Counters read by ``Models.GetModel`` and the benchmarks."""

    steps_total: int = 0
    tokens_total: int = 0
    requests_total: int = 0
    rejected_total: int = 0
    batch_rows_total: int = 0
    queue_depth: int = 0
    active_sequences: int = 0
    #: Model steps run for step programs lent the model (e.g. assistant searches), and their rows.
    lent_steps_total: int = 0
    lent_rows_total: int = 0

    @property
    def mean_batch_size(self) -> float:
        return self.batch_rows_total / self.steps_total if self.steps_total else 0.0


class ModelThread:
    """Base of the per-model schedulers: named daemon threads looping over ``_take`` / ``_process``
    (one thread unless a subclass asks for more)."""

    #: Thread names are ``f"{thread_prefix}:{model name}"`` (then ``:1``, ``:2``... for more threads).
    thread_prefix = "model"

    def __init__(self, name: str, *, max_queue: int, threads: int = 1) -> None:
        self.name = name
        self.max_queue = max_queue
        self.stats = SchedulerStats()
        self._cv = threading.Condition()
        self._stopping = False
        names = [f"{self.thread_prefix}:{name}" + (f":{i}" if i else "") for i in range(threads)]
        self._threads = [threading.Thread(target=self._main, name=n, daemon=True) for n in names]
        self._thread = self._threads[0]
        self._calls_started: dict[int, float] = {}  # thread ident -> time.monotonic() of its running call
        #: Called on the model's thread with the error that ended it (the registry marks the model FAILED).
        self.on_crash: Callable[[BaseException], None] | None = None
        self._crash: BaseException | None = None

    @property
    def step_started_at(self) -> float | None:
        """When the oldest model call now running began (``time.monotonic()``), None when none
        runs (read by the watchdog)."""
        started = tuple(self._calls_started.values())  # one C-level copy: other threads add and remove
        return min(started, default=None)

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        for thread in self._threads:
            thread.join(timeout=5)

    def _push(self, queue: deque[T], item: T, *, count: bool = True) -> None:
        """Append to a bounded queue and wake the thread; Overloaded when the queue is full,
        ModelUnavailable once the thread has stopped (or is stopping)."""
        with self._cv:
            if self._stopping:
                raise self._ended()
            if len(queue) >= self.max_queue:
                self.stats.rejected_total += 1
                raise Overloaded(f"model {self.name!r} has {len(queue)} calls waiting "
                                 f"(limit max_queue={self.max_queue}); retry later")
            queue.append(item)
            if count:
                self.stats.requests_total += 1
            self.stats.queue_depth = len(queue)
            self._cv.notify()

    def _wake(self) -> None:
        with self._cv:
            self._cv.notify()

    @contextmanager
    def _model_call(self) -> Iterator[None]:
        """Mark a model call as running, for the watchdog."""
        ident = threading.get_ident()
        outer = getattr(_running, "calls", None) is self._calls_started  # a call within a call keeps the outer start
        if not outer:
            self._calls_started[ident] = time.monotonic()
            _running.calls = self._calls_started
        try:
            yield
        finally:
            if not outer:
                self._calls_started.pop(ident, None)
                _running.calls = None

    def _ended(self) -> RnnserveError:
        """The error for work the stopped thread will not do."""
        if self._crash is not None:
            return ModelFailed(f"model {self.name!r} failed: {type(self._crash).__name__}: {self._crash}")
        return ModelUnavailable(f"model {self.name!r} is stopping")

    def _main(self) -> None:
        work: Any = None  # taken off the queues and not yet done
        try:
            with torch.inference_mode():
                while True:
                    with self._cv:
                        while not (self._stopping or self._has_work()):
                            self._cv.wait(self._wait_s())
                        if self._stopping:
                            return
                        work = self._take()
                    self._process(work)
                    work = None
        except Exception as exc:
            log.exception("model %s: its thread stopped on an error; the model is marked FAILED", self.name)
            with self._cv:
                self._crash = exc
                self._stopping = True
                self._cv.notify_all()
            if self.on_crash is not None:
                self.on_crash(exc)
        finally:
            ended = self._ended()
            if work is not None:
                self._fail_work(work, ended)
            self._abandon(ended)

    def abandon_hung(self, exc: RnnserveError) -> None:
        """The model's thread is stuck in a call (the watchdog says): refuse new work and fail the
        queued work with ``exc`` now, from the caller's thread. What the stuck call was doing
        is failed if it ever returns."""
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        self._abandon_queued(exc)

    def _abandon_queued(self, exc: RnnserveError) -> None:
        """Fail the queued work with ``exc`` (from any thread)."""

    def _fail_work(self, work: Any, exc: RnnserveError) -> None:
        """Fail the unit of work ``_process`` was doing when it raised."""

    def _abandon(self, exc: RnnserveError) -> None:
        """Fail the work still queued or running with ``exc`` (on the model's thread, as it ends)."""
        self._abandon_queued(exc)

    def _has_work(self) -> bool:
        """Whether there is anything to do (called with the lock held)."""
        raise NotImplementedError

    def _wait_s(self) -> float | None:
        """With nothing to do, how long to wait before asking again (None: until woken)."""
        return None

    def _take(self) -> Any:
        """Take the next unit of work off the queues (called with the lock held)."""
        raise NotImplementedError

    def _process(self, work: Any) -> None:
        """Do it, without the lock."""
        raise NotImplementedError


@contextmanager
def waiting_on_another_model() -> Iterator[None]:
    """The model call running on this thread waits, within the block, for another model's
    thread (an assistant's call for its language model's reads and steps): the wait is not
    this model's call running, so its watchdog does not count it (the other model's does,
    for the work it runs); the call's clock starts afresh after it. A no-op outside a model call."""
    calls: dict[int, float] | None = getattr(_running, "calls", None)
    ident = threading.get_ident()
    if calls is None or ident not in calls:
        yield
        return
    del calls[ident]
    try:
        yield
    finally:
        calls[ident] = time.monotonic()


def settle(future: Future[Any], *, result: Any = None, exc: BaseException | None = None) -> None:
    """Resolve ``future`` unless it is already resolved or cancelled (two threads may race to)."""
    if future.done():
        return
    with suppress(InvalidStateError):
        if exc is None:
            future.set_result(result)
        else:
            future.set_exception(exc)
