"""Step programs: searches that lend their model steps to a shared batch.

A step program is a generator that does its own bookkeeping in Python and, whenever it
needs the model to advance some rows by one token, yields ``(tokens [b], state of batch
b)`` and is sent back ``(logits [b, vocab] float32, the new state)``; what it returns is its
result. Written this way a search does not care whether it runs alone (``run_alone``) or
next to other programs whose requests the host concatenates into one
``LanguageModel.step`` (``StepBatcher``): concurrent writing-assistant sessions share
model steps the way concurrent generations share a decoding batch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

from rnnserve.backends import LanguageModel, State
from rnnserve.model_thread import SchedulerStats

T = TypeVar("T")
log = logging.getLogger(__name__)

#: What a program asks for: tokens [b] int64 and the state (batch b) they follow.
StepRequest = tuple[torch.Tensor, State]
#: What it gets back: logits [b, vocab] float32 and the state after the tokens.
StepResult = tuple[torch.Tensor, State]
StepProgram = Generator[StepRequest, StepResult, T]


def run_alone(model: LanguageModel, program: StepProgram[T]) -> T:
    """Run one program to its end, each request one ``model.step`` of its own rows."""
    try:
        request = next(program)
        while True:
            request = program.send(model.step(*request))
    except StopIteration as done:
        return done.value


def concat_states(states: list[State], dims: tuple[int, ...]) -> State:
    """Concatenate batched states along their batch dims (``LanguageModel.state_batch_dims``)."""
    return tuple(torch.cat(parts, dim=d) for parts, d in zip(zip(*states, strict=True), dims, strict=True))


def split_state(state: State, dims: tuple[int, ...], sizes: list[int]) -> list[State]:
    """The inverse of ``concat_states``: consecutive row blocks of ``sizes`` rows."""
    pieces = [t.split(sizes, dim=d) for t, d in zip(state, dims, strict=True)]
    return [tuple(p[i] for p in pieces) for i in range(len(sizes))]


@dataclass
class _Running:
    program: StepProgram[Any]
    future: Future[Any]
    request: StepRequest


class StepBatcher:
    """Advances many step programs together: one ``model.step`` per round for all their
    pending requests (up to ``max_rows`` rows; the rest wait for the next round).

    Runs on the model's thread. A program that raises fails alone; when a batched step
    raises (say one program asked with a malformed state), each of its programs is retried
    alone, so only the ones whose own step fails are failed.
    """

    def __init__(self, model: LanguageModel, stats: SchedulerStats, *, max_rows: int) -> None:
        self.model = model
        self.stats = stats
        self.max_rows = max_rows
        self._running: list[_Running] = []

    def __len__(self) -> int:
        return len(self._running)

    def start(self, make: Callable[[], StepProgram[Any]], future: Future[Any]) -> None:
        """Create a program and run it up to its first request (or its end)."""
        if not future.set_running_or_notify_cancel():
            return
        try:
            program = make()
        except Exception as exc:
            future.set_exception(exc)
            return
        self._advance(program, future, None)

    def round(self) -> None:
        """One batched step over the pending requests; each program runs on to its next one."""
        batch, rows = [], 0
        for running in self._running:
            size = len(running.request[0])
            if batch and rows + size > self.max_rows:
                break
            batch.append(running)
            rows += size
        self._running = self._running[len(batch):]
        dims = self.model.state_batch_dims
        sizes = [len(r.request[0]) for r in batch]
        try:
            logits, state = self.model.step(torch.cat([r.request[0] for r in batch]),
                                            concat_states([r.request[1] for r in batch], dims))
        except Exception:
            self._step_alone(batch)
            return
        self.stats.lent_steps_total += 1
        self.stats.lent_rows_total += rows
        for running, part, part_state in zip(batch, logits.split(sizes), split_state(state, dims, sizes),
                                             strict=True):
            self._advance(running.program, running.future, (part, part_state))

    def _step_alone(self, batch: list[_Running]) -> None:
        for running in batch:
            try:
                result = self.model.step(*running.request)
            except Exception as exc:
                log.exception("model step of a lent search failed")
                running.program.close()
                running.future.set_exception(exc)
                continue
            self.stats.lent_steps_total += 1
            self.stats.lent_rows_total += len(running.request[0])
            self._advance(running.program, running.future, result)

    def _advance(self, program: StepProgram[Any], future: Future[Any], result: StepResult | None) -> None:
        try:
            request = next(program) if result is None else program.send(result)
        except StopIteration as done:
            future.set_result(done.value)
        except Exception as exc:
            future.set_exception(exc)
        else:
            self._running.append(_Running(program, future, request))
