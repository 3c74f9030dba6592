"""The thread that runs one model's math, and its bounded, condition-guarded queues.

Every scheduler (language-model continuous batching, translator batching, assistant
jobs) is one of these: the event loop only pushes work and awaits futures; the model's
math runs on this thread under ``torch.inference_mode()``. While a model call runs,
``step_started_at`` holds its start time for the watchdog (``watchdog.py``).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

from rnnserve.errors import Overloaded

T = TypeVar("T")


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
        """Append to a bounded queue and wake the thread; Overloaded when the queue is full."""
        with self._cv:
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
        outer = ident in self._calls_started  # a call within a call keeps the outer start
        if not outer:
            self._calls_started[ident] = time.monotonic()
        try:
            yield
        finally:
            if not outer:
                del self._calls_started[ident]

    def _main(self) -> None:
        with torch.inference_mode():
            while True:
                with self._cv:
                    while not (self._stopping or self._has_work()):
                        self._cv.wait(self._wait_s())
                    if self._stopping:
                        return
                    work = self._take()
                self._process(work)

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
