"""Tiny real language models for long reads and hung models (issue 17), registered through the hooks.

* ``shift-lm`` (:class:`ShiftLM`): a recurrent model whose state is exactly its last
  ``memory`` tokens (a shift register), so reading any text of at least ``memory``
  characters from the start state ends in the same state as reading the whole document:
  the bounded read of a long document must equal the full one.
* ``slow-read-lm`` (:class:`SlowReadLM`): the reciting toy model whose ``forward`` costs
  ``token_delay`` seconds per token read (rows x positions), so an unbounded read of a
  long prompt or document is one long model call.
* ``hang-once-lm`` (:class:`HangOnceLM`): the reciting toy model whose step ``hang_after``
  + 1 sleeps ``hang_seconds``, once per ``key`` in the process: the watchdog marks it
  FAILED, and the instance the registry reloads serves.
"""

from __future__ import annotations

import threading
import time

import torch

from rnnserve import hookimpl
from rnnserve.backends import LanguageModel, State
from tests.support.toy_plugin import RecitingLM, ToyVocab


class ShiftLM(LanguageModel):
    """State: (last ``memory`` token ids as float32 [batch, memory],), batch dim 0; the logits
    are a fixed seeded function of that window."""

    state_batch_dims = (0,)

    def __init__(self, memory: int = 8, seed: int = 0) -> None:
        self._vocab = ToyVocab()
        self.memory = memory
        generator = torch.Generator().manual_seed(seed)
        self.weights = torch.randn(memory, self._vocab.size, generator=generator) * 0.3

    @property
    def vocab(self) -> ToyVocab:
        return self._vocab

    def initial_state(self, batch_size: int) -> State:
        return (torch.full((batch_size, self.memory), float(self._vocab.bos_id)),)

    def forward(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        window = state[0]
        logits = []
        for t in range(tokens.shape[1]):
            window = torch.cat([window[:, 1:], tokens[:, t:t + 1].float()], dim=1)
            logits.append(3.0 * torch.cos(window @ self.weights + window[:, -1:] * 0.9))
        return torch.stack(logits, dim=1), (window,)

    def parameter_count(self) -> int:
        return self.weights.numel()


class SlowReadLM(RecitingLM):
    """The reciting model; ``forward`` sleeps ``token_delay`` seconds per token read."""

    def __init__(self, token_delay: float = 0.001, **options: float) -> None:
        super().__init__(**options)  # type: ignore[arg-type]
        self.token_delay = token_delay
        self.longest_read = 0  # most tokens (rows x positions) one forward read

    def forward(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        self.longest_read = max(self.longest_read, tokens.numel())
        time.sleep(self.token_delay * tokens.numel())
        return super().forward(tokens, state)


#: Keys of the HangOnceLM instances that have hung in this process.
_HUNG: set[str] = set()
_HUNG_LOCK = threading.Lock()


class HangOnceLM(RecitingLM):
    """The reciting model; its step ``hang_after`` + 1 sleeps ``hang_seconds``, the first time
    for ``key`` in this process only (a reloaded instance serves)."""

    def __init__(self, key: str = "hang-once", hang_after: int = 3, hang_seconds: float = 3.0) -> None:
        super().__init__()
        self.key = key
        self.hang_at = hang_after + 1
        self.pause = hang_seconds

    def step(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        if self.steps + 1 == self.hang_at:
            with _HUNG_LOCK:
                first = self.key not in _HUNG
                _HUNG.add(self.key)
            if first:
                time.sleep(self.pause)
        return super().step(tokens, state)


@hookimpl
def register_backends(register) -> None:  # type: ignore[no-untyped-def]
    register("shift-lm", lambda spec, ctx: ShiftLM(**spec.options))
    register("slow-read-lm", lambda spec, ctx: SlowReadLM(**spec.options))
    register("hang-once-lm", lambda spec, ctx: HangOnceLM(**spec.options))
