"""Step programs: searches that lend their model steps to a shared batch.

A step program is a generator that does its own bookkeeping in Python and, whenever it
needs the model to advance some rows by one token, yields ``(tokens [b], state of batch
b)`` and is sent back ``(logits [b, vocab] float32, the new state)``; what it returns is its
result. Written this way a search does not care whether it runs alone (``run_alone``) or
next to other programs whose requests the host concatenates into one
``LanguageModel.step`` (the scheduler's ``rnnserve.runtime.step_batcher.StepBatcher``): concurrent
writing-assistant sessions share model steps the way concurrent generations share a
decoding batch. This module is what plugins use (through ``rnnserve.plugin_api``).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TypeVar

import torch

from rnnserve.backends import LanguageModel, State

T = TypeVar("T")

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


def while_true(alive: Callable[[], bool], program: StepProgram[T]) -> StepProgram[T | None]:
    """``program`` for as long as ``alive()`` holds when each step comes back; None if it stopped.

    For work that a later event makes pointless (e.g. a search ahead for a keystroke that
    another one overtook): checked before ``program`` resumes, so it never sees a step once
    ``alive()`` is false.
    """
    try:
        request = next(program)
        while True:
            result = yield request
            if not alive():
                program.close()
                return None
            request = program.send(result)
    except StopIteration as done:
        return done.value
