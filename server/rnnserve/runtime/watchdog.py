"""Hung-backend detection: a watchdog thread and the per-model guard that fails waiting calls.

Every worker (``LanguageModelScheduler``, ``TranslationScheduler``, ``SerialWorker``) sets
``step_started_at`` (``time.monotonic()``) while a model call runs and None between
calls. The :class:`Watchdog` polls them; a call running longer than ``step_timeout_s``
makes the registry mark the model FAILED ("step exceeded step_timeout_s") and trip the
model's :class:`RequestGuard`, which fails every call waiting on that model with
UNAVAILABLE at once. A thread stuck inside a backend cannot be killed; it is abandoned
(asked to stop when the call returns, if ever) while the other models keep serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

log = logging.getLogger("rnnserve.watchdog")
T = TypeVar("T")

Fail = Callable[[BaseException], None]


class RequestGuard:
    """The calls waiting on one model; :meth:`trip` fails them all (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: dict[int, tuple[asyncio.AbstractEventLoop, Fail]] = {}
        self._ids = itertools.count()
        self.tripped: BaseException | None = None

    def __len__(self) -> int:
        return len(self._waiting)

    def _register(self, loop: asyncio.AbstractEventLoop, fail: Fail) -> int:
        with self._lock:
            if self.tripped is not None:
                raise self.tripped
            token = next(self._ids)
            self._waiting[token] = (loop, fail)
            return token

    def _unregister(self, token: int) -> None:
        with self._lock:
            self._waiting.pop(token, None)

    def trip(self, exc: BaseException) -> int:
        """Fail every waiting call with ``exc`` (on its event loop), and every later one at once."""
        with self._lock:
            self.tripped = exc
            waiting = list(self._waiting.values())
            self._waiting.clear()
        for loop, fail in waiting:
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
                loop.call_soon_threadsafe(fail, exc)
        return len(waiting)

    @contextlib.contextmanager
    def on_trip(self, fail: Fail) -> Iterator[None]:
        """Within the block, a trip calls ``fail(exc)`` on the current event loop."""
        token = self._register(asyncio.get_running_loop(), fail)
        try:
            yield
        finally:
            self._unregister(token)

    async def watch(self, awaitable: Awaitable[T]) -> T:
        """Await ``awaitable``; if the guard trips meanwhile, cancel it and raise the trip's error."""
        task = asyncio.ensure_future(awaitable)
        tripped: list[BaseException] = []

        def fail(exc: BaseException) -> None:
            if not task.done():
                tripped.append(exc)
                task.cancel()

        try:
            token = self._register(asyncio.get_running_loop(), fail)
        except BaseException:
            task.cancel()
            raise
        try:
            return await task
        except asyncio.CancelledError:
            if tripped:
                raise tripped[0] from None
            raise
        finally:
            self._unregister(token)


class Watchdog:
    """Polls workers' ``step_started_at``; calls ``on_hung(item, seconds)`` once per hung worker."""

    def __init__(self, items: Callable[[], list[tuple[Any, Any, float]]],
                 on_hung: Callable[[Any, float], None]) -> None:
        """``items()`` -> (key, worker, timeout seconds) for every worker to watch."""
        self._items = items
        self._on_hung = on_hung
        self._stop = threading.Event()
        self._reported: set[int] = set()
        self._thread = threading.Thread(target=self._run, name="watchdog", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def check(self) -> None:
        """One pass over the workers (the thread calls it; tests may too)."""
        now = time.monotonic()
        for key, worker, timeout in self._items():
            started = getattr(worker, "step_started_at", None)
            if started is None or id(worker) in self._reported:
                continue
            running = now - started
            if running > timeout:
                self._reported.add(id(worker))
                try:
                    self._on_hung(key, running)
                except Exception:
                    log.exception("watchdog: handling a hung model failed")

    def _run(self) -> None:
        while not self._stop.is_set():
            timeouts = [timeout for _, _, timeout in self._items()] or [4.0]
            self.check()
            self._stop.wait(min(1.0, max(0.02, min(timeouts) / 4)))
