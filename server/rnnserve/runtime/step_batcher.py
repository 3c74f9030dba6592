"""The host side of step programs (``rnnserve.runtime.step_programs``): the scheduler's ``StepBatcher``,
which advances the programs lent to one model together, one batched ``LanguageModel.step``
per round, next to that model's decoding batch (``rnnserve.runtime.language_model_scheduler``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import torch

from rnnserve.backends import LanguageModel
from rnnserve.runtime.model_thread import SchedulerStats, settle
from rnnserve.runtime.state import concat_states, split_state
from rnnserve.runtime.step_programs import StepProgram, StepRequest, StepResult

log = logging.getLogger("rnnserve.step_batcher")


#: Idle programs advanced (or started) per idle round.
IDLE_PER_ROUND = 4


@dataclass
class _Running:
    program: StepProgram[Any]
    future: Future[Any]
    request: StepRequest
    idle: bool = False


class StepBatcher:
    """Advances many step programs together: one ``model.step`` per round for all their
    pending requests (up to ``max_rows`` rows; the rest wait for the next round).

    *Idle* programs (``add_idle``: work that may be wasted, such as precomputing a likely
    next request) start and advance only in rounds the host calls idle, when it has nothing
    else to do, at most ``IDLE_PER_ROUND`` of them a round (work arriving meanwhile waits
    for no more than their Python); at most ``max_idle`` wait, the oldest is dropped first.

    Runs on the model's thread. A program that raises fails alone; when a batched step
    raises (say one program asked with a malformed state), each of its programs is retried
    alone, so only the ones whose own step fails are failed.
    """

    def __init__(self, model: LanguageModel, stats: SchedulerStats, *, max_rows: int, max_idle: int = 64) -> None:
        self.model = model
        self.stats = stats
        self.max_rows = max_rows
        self.max_idle = max_idle
        self._running: list[_Running] = []
        self._idle: list[_Running] = []
        self._idle_new: list[tuple[Callable[[], StepProgram[Any]], Future[Any]]] = []
        self._stepping: list[_Running] = []  # the programs of the step now running

    def __len__(self) -> int:
        return len(self._running) + len(self._idle) + len(self._idle_new)

    @property
    def busy(self) -> bool:
        """Whether programs other than idle ones are waiting for a step."""
        return bool(self._running)

    def start(self, make: Callable[[], StepProgram[Any]], future: Future[Any], *, idle: bool = False) -> None:
        """Create a program and run it up to its first request (or its end)."""
        if not future.set_running_or_notify_cancel():
            return
        try:
            program = make()
        except Exception as exc:
            future.set_exception(exc)
            return
        self._advance(program, future, None, idle)

    def add_idle(self, make: Callable[[], StepProgram[Any]], future: Future[Any]) -> None:
        """Queue an idle program; it starts in the next idle round. Its future gets None if it is dropped."""
        self._idle_new.append((make, future))
        while len(self._idle) + len(self._idle_new) > self.max_idle:
            if self._idle:
                dropped = self._idle.pop(0)
                dropped.program.close()
                settle(dropped.future)
            else:
                _, waiting = self._idle_new.pop(0)
                if waiting.set_running_or_notify_cancel():  # False: its caller cancelled it
                    waiting.set_result(None)

    def fail_waiters(self, exc: BaseException) -> None:
        """Resolve every program's future (idle ones with None), leaving the programs alone: from
        another thread, while the model's thread is stuck in a step."""
        for running in list(self._running) + list(self._idle) + list(self._stepping):
            settle(running.future, exc=None if running.idle else exc)
        for _, future in list(self._idle_new):
            settle(future)

    def abandon(self, exc: BaseException) -> None:
        """Fail every program (idle ones get None) and close it: the model's thread is ending."""
        self.fail_waiters(exc)
        for running in self._running + self._idle:
            running.program.close()
        self._running, self._idle, self._idle_new = [], [], []

    def round(self, *, idle: bool = False) -> None:
        """One batched step over the pending requests; each program runs on to its next one.

        Idle programs get the step only in an ``idle`` round with no other program waiting.
        """
        if not self._running and idle and len(self._idle) < IDLE_PER_ROUND:
            starting = self._idle_new[:IDLE_PER_ROUND - len(self._idle)]
            del self._idle_new[:len(starting)]
            for make, future in starting:
                self.start(make, future, idle=True)
        queue = self._running if self._running else self._idle if idle else []
        batch, rows = [], 0
        for running in queue:
            size = len(running.request[0])
            if batch and (rows + size > self.max_rows or (running.idle and len(batch) == IDLE_PER_ROUND)):
                break
            batch.append(running)
            rows += size
        if not batch:
            return
        del queue[:len(batch)]
        dims = self.model.state_batch_dims
        sizes = [len(r.request[0]) for r in batch]
        self._stepping = batch
        try:
            logits, state = self.model.step(torch.cat([r.request[0] for r in batch]),
                                            concat_states([r.request[1] for r in batch], dims))
        except Exception:
            self._step_alone(batch)
            return
        finally:
            self._stepping = []
        self.stats.lent_steps_total += 1
        self.stats.lent_rows_total += rows
        for running, part, part_state in zip(batch, logits.split(sizes), split_state(state, dims, sizes),
                                             strict=True):
            self._advance(running.program, running.future, (part, part_state), running.idle)

    def _step_alone(self, batch: list[_Running]) -> None:
        for running in batch:
            try:
                result = self.model.step(*running.request)
            except Exception as exc:
                log.exception("model step of a lent search failed")
                running.program.close()
                settle(running.future, exc=exc)
                continue
            self.stats.lent_steps_total += 1
            self.stats.lent_rows_total += len(running.request[0])
            self._advance(running.program, running.future, result, running.idle)

    def _advance(self, program: StepProgram[Any], future: Future[Any], result: StepResult | None,
                 idle: bool) -> None:
        if future.done():  # failed meanwhile from another thread (a stuck step, see fail_waiters)
            program.close()
            return
        try:
            request = next(program) if result is None else program.send(result)
        except StopIteration as done:
            settle(future, result=done.value)
        except Exception as exc:
            if idle:  # nobody waits on it
                log.warning("an idle step program failed", exc_info=exc)
            settle(future, exc=exc)
        else:
            if not _well_formed(request):
                program.close()
                settle(future, exc=TypeError(f"a step program must yield (tokens [rows] int64, state), got "
                                               f"{type(request).__name__}"))
                return
            (self._idle if idle else self._running).append(_Running(program, future, request, idle))


def _well_formed(request: object) -> bool:
    """Whether a program's request is (tokens [rows] int64, state), as ``model.step`` takes it."""
    return (isinstance(request, tuple) and len(request) == 2 and isinstance(request[0], torch.Tensor)
            and request[0].dim() == 1 and request[0].numel() > 0 and isinstance(request[1], tuple))
