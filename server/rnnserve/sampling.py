"""Sampling: per-request parameters, batched logits processing and seeded per-sequence draws.

Everything here works on a whole decoding batch at once; each row carries its own
parameters. A sequence's random draws come only from its own generator (seeded per
request), and every operation is row-wise, so a sequence's output for a given seed does
not depend on which other sequences share the batch.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch

#: Seeds are drawn from, and must lie in, [0, 2**63).
MAX_SEED = 2**63 - 1


@dataclass(frozen=True)
class SamplingParams:
    """How to decode one request (validated by the service layer)."""

    max_new_tokens: int = 256
    temperature: float = 1.0  # 0: greedy
    top_k: int = 0  # 0: off
    top_p: float = 1.0  # 1: off
    repetition_penalty: float = 1.0  # 1: off
    n: int = 1
    stop: tuple[str, ...] = ()
    seed: int | None = None
    logprobs: bool = False

    def resolved_seed(self) -> int:
        """The request seed, drawing one when the client gave none."""
        return self.seed if self.seed is not None else random.SystemRandom().randrange(MAX_SEED)


class SequenceRng:
    """A sequence's own uniform random stream, drawn in blocks from a seeded generator.

    Draws depend only on the seed and how many were taken before, never on the batch.
    """

    BLOCK = 64

    def __init__(self, seed: int) -> None:
        self._gen = torch.Generator().manual_seed(seed)
        self._block = torch.empty(0)
        self._next = 0

    def uniform(self) -> float:
        if self._next >= len(self._block):
            self._block = torch.rand(self.BLOCK, generator=self._gen, dtype=torch.float64)
            self._next = 0
        value = float(self._block[self._next])
        self._next += 1
        return value


def apply_repetition_penalty(logits: torch.Tensor, penalty: torch.Tensor, seen: torch.Tensor) -> torch.Tensor:
    """CTRL penalty: seen tokens' positive logits are divided by ``penalty``, negative multiplied.

    Args:
        logits: [batch, vocab]; penalty: [batch]; seen: [batch, vocab] bool.
    Returns:
        [batch, vocab] penalised logits (a new tensor).
    """
    p = penalty[:, None]
    penalised = torch.where(logits > 0, logits / p, logits * p)
    return torch.where(seen, penalised, logits)


def sample(
    logits: torch.Tensor,
    temperature: torch.Tensor,
    top_k: torch.Tensor,
    top_p: torch.Tensor,
    uniforms: torch.Tensor,
) -> torch.Tensor:
    """Choose one token per row.

    Rows with temperature 0 take the argmax. Other rows scale by temperature, keep the
    top_k most likely tokens (0: all) and the smallest nucleus reaching top_p, and pick
    by inverse CDF with the row's own uniform draw.

    Args:
        logits: [batch, vocab] float32 (after any penalty).
        temperature, top_p, uniforms: [batch] float; top_k: [batch] int64.
    Returns:
        [batch] int64 token ids.
    """
    greedy = temperature <= 0
    if bool(greedy.all()):
        return logits.argmax(dim=-1)
    temp = torch.where(greedy, torch.ones_like(temperature), temperature)
    sorted_logits, order = torch.sort(logits / temp[:, None], dim=-1, descending=True)
    vocab = logits.shape[-1]
    ranks = torch.arange(vocab).expand_as(sorted_logits)
    k = torch.where(top_k > 0, top_k.clamp(max=vocab), torch.full_like(top_k, vocab))
    sorted_logits = sorted_logits.masked_fill(ranks >= k[:, None], float("-inf"))
    probs = torch.softmax(sorted_logits, dim=-1)
    cumulative = probs.cumsum(dim=-1)
    # Drop a token when the tokens ranked above it already reach top_p (the first is always kept).
    outside_nucleus = (cumulative - probs) >= top_p[:, None]
    probs = probs.masked_fill(outside_nucleus, 0.0)
    cdf = probs.double().cumsum(dim=-1)
    targets = uniforms.double()[:, None] * cdf[:, -1:]
    last_kept = (probs > 0).sum(dim=-1, keepdim=True) - 1
    picked = torch.minimum(torch.searchsorted(cdf, targets, right=True), last_kept)
    sampled = order.gather(1, picked).squeeze(1)
    return torch.where(greedy, logits.argmax(dim=-1), sampled)


def seen_mask(token_sets: Sequence[set[int]], vocab: int) -> torch.Tensor:
    """[len(token_sets), vocab] bool mask of the tokens each row has seen."""
    mask = torch.zeros(len(token_sets), vocab, dtype=torch.bool)
    for row, tokens in enumerate(token_sets):
        if tokens:
            mask[row, list(tokens)] = True
    return mask
