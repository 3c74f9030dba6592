"""The assistant's worker: :class:`SerialWorker` runs an assistant model's calls in order, each
in a copy of its caller's context (so the backend's log lines carry the call's request id):
one at a time, or on ``Assistant.concurrent_calls`` threads where the backend allows it. A
:class:`~rnnserve.runtime.model_thread.ModelThread` (one per model, bounded queue).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from rnnserve.edge.errors import RnnserveError
from rnnserve.runtime.model_thread import ModelThread, settle

T = TypeVar("T")


class SerialWorker(ModelThread):
    """Runs jobs on the model's thread (or ``threads`` threads), started in submission order,
    with a bounded queue."""

    thread_prefix = "worker"

    def __init__(self, name: str, *, max_queue: int, threads: int = 1) -> None:
        super().__init__(name, max_queue=max_queue, threads=threads)
        self._jobs: deque[tuple[Callable[[], Any], Future[Any]]] = deque()

    async def run(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the worker thread; raises Overloaded when the queue is full."""
        future: Future[T] = Future()
        context = contextvars.copy_context()
        self._push(self._jobs, (lambda: context.run(fn), future))
        return await asyncio.wrap_future(future)

    def _has_work(self) -> bool:
        return bool(self._jobs)

    def _take(self) -> tuple[Callable[[], Any], Future[Any]]:
        job = self._jobs.popleft()
        self.stats.queue_depth = len(self._jobs)
        return job

    def _abandon_queued(self, exc: RnnserveError) -> None:
        with self._cv:
            jobs, self._jobs = list(self._jobs), deque()
        for job in jobs:
            self._fail_work(job, exc)

    def _fail_work(self, work: tuple[Callable[[], Any], Future[Any]], exc: RnnserveError) -> None:
        settle(work[1], exc=exc)

    def _process(self, work: tuple[Callable[[], Any], Future[Any]]) -> None:
        fn, future = work
        if not future.set_running_or_notify_cancel():
            return
        with self._model_call():
            try:
                future.set_result(fn())
            except Exception as exc:
                future.set_exception(exc)
        self.stats.steps_total += 1
