"""A transparent wrapper around a served language model, so tests can watch the host drive it."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import torch

from rnnserve.backends import LanguageModel, State, Vocabulary


class _ProbedVocab:
    """The wrapped model's vocabulary, with ``eos_id`` hidden while the probe asks."""

    def __init__(self, inner: Vocabulary, probe: ProbedLanguageModel) -> None:
        self._inner = inner
        self._probe = probe

    @property
    def size(self) -> int:
        return self._inner.size

    @property
    def bos_id(self) -> int:
        return self._inner.bos_id

    @property
    def eos_id(self) -> int | None:
        return None if self._probe.hide_eos else self._inner.eos_id

    def encode(self, text: str) -> tuple[list[int], list[str]]:
        return self._inner.encode(text)

    def decode(self, ids: Sequence[int]) -> str:
        return self._inner.decode(ids)

    def __getattr__(self, name: str) -> Any:  # anything else the backend's vocabulary offers
        return getattr(self._inner, name)


class ProbedLanguageModel(LanguageModel):
    """Delegates everything to ``inner``; counts decoding steps and their batch sizes.

    For the cancellation test it can also sleep ``step_delay`` seconds per step and hide
    the end-of-text token (``hide_eos``), so a generation is sure to outlast the cancel.
    Both are off unless a test turns them on.
    """

    def __init__(self, inner: LanguageModel) -> None:
        self.inner = inner
        self.state_batch_dims = tuple(inner.state_batch_dims)
        self.steps = 0
        self.batch_sizes: Counter[int] = Counter()
        self.threads: set[str] = set()
        self.step_delay = 0.0
        self.hide_eos = False
        self._vocab = _ProbedVocab(inner.vocab, self)

    @property
    def vocab(self) -> Vocabulary:
        return self._vocab

    def initial_state(self, batch_size: int) -> State:
        return self.inner.initial_state(batch_size)

    def forward(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        return self.inner.forward(tokens, state)

    def step(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        self.steps += 1
        self.batch_sizes[int(tokens.shape[0])] += 1
        self.threads.add(threading.current_thread().name)
        if self.step_delay:
            time.sleep(self.step_delay)
        return self.inner.step(tokens, state)

    def parameter_count(self) -> int:
        return self.inner.parameter_count()

    def counters(self) -> dict[str, float]:
        return self.inner.counters()
