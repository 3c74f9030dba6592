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


class UniformBank:
    """The uniform random streams of a decoding batch, one per row, drawn a column at a time.

    Row r's draws come only from its own seeded generator, in blocks of ``BLOCK``, so they
    depend on its seed and on how many it took before, never on the batch. A step's draw
    is one ``gather`` over the rows; a row refills (one ``torch.rand``) every ``BLOCK`` steps.
    """

    BLOCK = 64

    def __init__(self, generators: list[torch.Generator], blocks: torch.Tensor | None = None,
                 next_column: torch.Tensor | None = None) -> None:
        self.generators = generators
        self.blocks = (blocks if blocks is not None  # [rows, BLOCK] float64
                       else self._fresh(generators))
        self.next_column = (next_column if next_column is not None  # [rows] int64
                            else torch.zeros(len(generators), dtype=torch.long))

    @classmethod
    def seeded(cls, seeds: Sequence[int]) -> UniformBank:
        return cls([torch.Generator().manual_seed(seed) for seed in seeds])

    @classmethod
    def _fresh(cls, generators: list[torch.Generator]) -> torch.Tensor:
        if not generators:
            return torch.empty(0, cls.BLOCK, dtype=torch.float64)
        return torch.stack([torch.rand(cls.BLOCK, generator=g, dtype=torch.float64) for g in generators])

    def draw(self) -> torch.Tensor:
        """The next uniform of every row: [rows] float64 in [0, 1)."""
        values = self.blocks.gather(1, self.next_column[:, None]).squeeze(1)
        self.next_column += 1
        for row in (self.next_column == self.BLOCK).nonzero().flatten().tolist():
            self.blocks[row] = torch.rand(self.BLOCK, generator=self.generators[row], dtype=torch.float64)
            self.next_column[row] = 0
        return values

    def select(self, index: torch.Tensor) -> UniformBank:
        """The rows at ``index`` [k] int64, in that order."""
        return UniformBank([self.generators[i] for i in index.tolist()],
                           self.blocks.index_select(0, index), self.next_column.index_select(0, index))

    @staticmethod
    def concat(banks: Sequence[UniformBank]) -> UniformBank:
        return UniformBank([g for b in banks for g in b.generators], torch.cat([b.blocks for b in banks]),
                           torch.cat([b.next_column for b in banks]))


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
    top_k: torch.Tensor | None,
    top_p: torch.Tensor,
    uniforms: torch.Tensor,
    *,
    some_greedy: bool = True,
) -> torch.Tensor:
    """Choose one token per row.

    Rows with temperature 0 take the argmax. Other rows scale by temperature, keep the
    top_k most likely tokens (0: all) and the smallest nucleus reaching top_p, and pick
    by inverse CDF with the row's own uniform draw.

    Args:
        logits: [batch, vocab] float32 (after any penalty).
        temperature, top_p, uniforms: [batch] float; top_k: [batch] int64, or None when no
            row keeps fewer than all tokens (its masking is skipped: the same tokens, fewer
            tensor operations per step).
        some_greedy: False promises that no row has temperature 0 (its checks are skipped).
    Returns:
        [batch] int64 token ids.
    """
    greedy = temperature <= 0
    if some_greedy and bool(greedy.all()):
        return logits.argmax(dim=-1)
    temp = torch.where(greedy, torch.ones_like(temperature), temperature) if some_greedy else temperature
    # Finite, and 0 at each row's best: a tiny temperature or penalty (1e-40 is in range)
    # sends logits / temperature to +-inf, and inf - inf would make the softmax NaN.
    finfo = torch.finfo(logits.dtype)
    finite = torch.nan_to_num(logits, nan=finfo.min, posinf=finfo.max, neginf=finfo.min)
    scaled = (finite - finite.amax(dim=-1, keepdim=True)) / temp[:, None]
    sorted_logits, order = torch.sort(scaled, dim=-1, descending=True)
    if top_k is not None:
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
    return torch.where(greedy, logits.argmax(dim=-1), sampled) if some_greedy else sampled


def seen_mask(token_sets: Sequence[set[int]], vocab: int) -> torch.Tensor:
    """[len(token_sets), vocab] bool mask of the tokens each row has seen."""
    mask = torch.zeros(len(token_sets), vocab, dtype=torch.bool)
    for row, tokens in enumerate(token_sets):
        if tokens:
            mask[row, list(tokens)] = True
    return mask
