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

    @property
    def mean_batch_size(self) -> float:
        return self.batch_rows_total / self.steps_total if self.steps_total else 0.0


class ModelThread:
    """Base of the per-model schedulers: a named daemon thread looping over ``_take`` / ``_process``."""

    #: Thread names are ``f"{thread_prefix}:{model name}"``.
    thread_prefix = "model"

    def __init__(self, name: str, *, max_queue: int) -> None:
        self.name = name
        self.max_queue = max_queue
        self.stats = SchedulerStats()
        self._cv = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._main, name=f"{self.thread_prefix}:{name}", daemon=True)
        #: time.monotonic() when the model call now running began, None between calls (read by the watchdog)
        self.step_started_at: float | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._cv:
            self._stopping = True
            self._cv.notify()
        self._thread.join(timeout=5)

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
        self.step_started_at = time.monotonic()
        try:
            yield
        finally:
            self.step_started_at = None

    def _main(self) -> None:
        with torch.inference_mode():
            while True:
                with self._cv:
                    while not (self._stopping or self._has_work()):
                        self._cv.wait()
                    if self._stopping:
                        return
                    work = self._take()
                self._process(work)

    def _has_work(self) -> bool:
        """Whether there is anything to do (called with the lock held)."""
        raise NotImplementedError

    def _take(self) -> Any:
        """Take the next unit of work off the queues (called with the lock held)."""
        raise NotImplementedError

    def _process(self, work: Any) -> None:
        """Do it, without the lock."""
        raise NotImplementedError
