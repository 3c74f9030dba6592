"""Schedulers for translator and assistant models: one thread per model, bounded queues.

* :class:`TranslationScheduler` batches texts from concurrent calls that share decoding
  options into one ``Translator.translate`` call (up to ``max_batch_texts`` texts).
* :class:`SerialWorker` runs an assistant's calls one at a time, in order, each in a copy
  of its caller's context (so the backend's log lines carry the call's request id).

Both set ``step_started_at`` while a model call runs, for the watchdog (``watchdog.py``).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

from rnnserve.backends import TranslateOptions, TranslationResult, Translator
from rnnserve.errors import Overloaded
from rnnserve.scheduler import SchedulerStats

log = logging.getLogger("rnnserve.workers")
T = TypeVar("T")


class SerialWorker:
    """Runs jobs on one dedicated thread, in submission order, with a bounded queue."""

    def __init__(self, name: str, *, max_queue: int) -> None:
        self.name = name
        self.max_queue = max_queue
        self.stats = SchedulerStats()
        self._cv = threading.Condition()
        self._jobs: deque[tuple[Callable[[], Any], Future[Any]]] = deque()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=f"worker:{name}", daemon=True)
        #: time.monotonic() when the running job began, None when idle (read by the watchdog)
        self.step_started_at: float | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._cv:
            self._stopping = True
            self._cv.notify()
        self._thread.join(timeout=5)

    async def run(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the worker thread; raises Overloaded when the queue is full."""
        future: Future[T] = Future()
        context = contextvars.copy_context()
        with self._cv:
            if len(self._jobs) >= self.max_queue:
                self.stats.rejected_total += 1
                raise Overloaded(f"model {self.name!r} has {len(self._jobs)} calls waiting "
                                 f"(limit max_queue={self.max_queue}); retry later")
            self._jobs.append((lambda: context.run(fn), future))
            self.stats.requests_total += 1
            self.stats.queue_depth = len(self._jobs)
            self._cv.notify()
        return await asyncio.wrap_future(future)

    def _run(self) -> None:
        with torch.inference_mode():
            while True:
                with self._cv:
                    while not (self._stopping or self._jobs):
                        self._cv.wait()
                    if self._stopping:
                        return
                    fn, future = self._jobs.popleft()
                    self.stats.queue_depth = len(self._jobs)
                if not future.set_running_or_notify_cancel():
                    continue
                self.step_started_at = time.monotonic()
                try:
                    future.set_result(fn())
                except Exception as exc:
                    future.set_exception(exc)
                finally:
                    self.step_started_at = None
                self.stats.steps_total += 1


@dataclass
class _TranslationJob:
    texts: list[str]
    options: TranslateOptions
    future: Future[list[TranslationResult]]


class TranslationScheduler:
    """Batches translate calls with equal options into one backend call."""

    def __init__(self, name: str, model: Translator, *, max_batch_texts: int, max_queue: int) -> None:
        self.name = name
        self.model = model
        self.max_batch_texts = max_batch_texts
        self.max_queue = max_queue
        self.stats = SchedulerStats()
        self._cv = threading.Condition()
        self._jobs: deque[_TranslationJob] = deque()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=f"translator:{name}", daemon=True)
        #: time.monotonic() when the running batch began, None when idle (read by the watchdog)
        self.step_started_at: float | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._cv:
            self._stopping = True
            self._cv.notify()
        self._thread.join(timeout=5)

    async def translate(self, texts: list[str], options: TranslateOptions) -> list[TranslationResult]:
        """Translate ``texts``, batched with other waiting calls that use the same options."""
        job = _TranslationJob(texts, options, Future())
        with self._cv:
            if len(self._jobs) >= self.max_queue:
                self.stats.rejected_total += 1
                raise Overloaded(f"model {self.name!r} has {len(self._jobs)} calls waiting "
                                 f"(limit max_queue={self.max_queue}); retry later")
            self._jobs.append(job)
            self.stats.requests_total += 1
            self.stats.queue_depth = len(self._jobs)
            self._cv.notify()
        try:
            return await asyncio.wrap_future(job.future)
        finally:
            job.future.cancel()  # no-op once done; drops the job if it has not started

    def _take_batch(self) -> list[_TranslationJob]:
        """The first waiting job plus later ones with equal options, up to the text budget."""
        head = self._jobs.popleft()
        batch, size, rest = [head], len(head.texts), deque()
        while self._jobs:
            job = self._jobs.popleft()
            if job.options == head.options and size + len(job.texts) <= self.max_batch_texts:
                batch.append(job)
                size += len(job.texts)
            else:
                rest.append(job)
        self._jobs = rest
        self.stats.queue_depth = len(self._jobs)
        return batch

    def _run(self) -> None:
        with torch.inference_mode():
            while True:
                with self._cv:
                    while not (self._stopping or self._jobs):
                        self._cv.wait()
                    if self._stopping:
                        return
                    batch = [j for j in self._take_batch() if j.future.set_running_or_notify_cancel()]
                if not batch:
                    continue
                texts = [t for job in batch for t in job.texts]
                self.step_started_at = time.monotonic()
                try:
                    results = self.model.translate(texts, batch[0].options)
                except Exception as exc:
                    log.exception("model %s failed translating a batch of %d texts", self.name, len(texts))
                    for job in batch:
                        job.future.set_exception(exc)
                    continue
                finally:
                    self.step_started_at = None
                self.stats.steps_total += 1
                self.stats.batch_rows_total += len(texts)
                self.stats.tokens_total += len(texts)
                start = 0
                for job in batch:
                    job.future.set_result(results[start : start + len(job.texts)])
                    start += len(job.texts)
