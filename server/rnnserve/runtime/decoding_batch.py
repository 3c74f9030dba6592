"""The decoding batch of a language-model scheduler: its rows' tensors, their sampling
parameters as tensors, and the prompts being read before they join it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rnnserve.backends import LanguageModel, State
from rnnserve.runtime.generation_requests import RequestHandle, Sample
from rnnserve.runtime.sampling import UniformBank, apply_repetition_penalty, sample
from rnnserve.runtime.state import concat_states, select_rows


@dataclass(frozen=True)
class BatchParams:
    """The sampling parameters of a batch's rows as tensors, built once per batch membership."""

    temperature: torch.Tensor  # [batch] float32
    top_k: torch.Tensor | None  # [batch] int64, None when no row limits it
    top_p: torch.Tensor  # [batch] float32
    penalty: torch.Tensor | None  # [batch] float32, None when no row uses a penalty
    greedy: bool  # every row has temperature 0
    some_greedy: bool  # some row has temperature 0
    logprobs: bool  # some row wants logprobs

    @classmethod
    def of(cls, seqs: list[Sample]) -> BatchParams:
        params = [s.params for s in seqs]
        penalised = any(p.repetition_penalty != 1.0 for p in params)
        return cls(
            temperature=torch.tensor([p.temperature for p in params]),
            top_k=torch.tensor([p.top_k for p in params], dtype=torch.long) if any(p.top_k for p in params) else None,
            top_p=torch.tensor([p.top_p for p in params]),
            penalty=torch.tensor([p.repetition_penalty for p in params]) if penalised else None,
            greedy=all(p.temperature <= 0 for p in params),
            some_greedy=any(p.temperature <= 0 for p in params),
            logprobs=any(p.logprobs for p in params),
        )


@dataclass
class Rows:
    """The decoding batch's per-row tensors, kept aligned with its sequences.

    ``state``: the model state (batch dim per ``state_batch_dims``); ``tokens`` [B] int64,
    each row's last sampled token (the next step's input); ``remaining`` [B] int64, tokens
    each row may still generate; ``seen`` [B, V] bool, tokens each row has read or
    generated (kept up to date while some row uses a repetition penalty); ``uniforms``,
    each row's random stream.
    """

    state: State
    tokens: torch.Tensor
    remaining: torch.Tensor
    seen: torch.Tensor
    uniforms: UniformBank

    def select(self, index: torch.Tensor, batch_dims: tuple[int, ...]) -> Rows:
        return Rows(select_rows(self.state, batch_dims, index), self.tokens[index], self.remaining[index],
                     self.seen[index], self.uniforms.select(index))

    @staticmethod
    def concat(parts: list[Rows], batch_dims: tuple[int, ...]) -> Rows:
        return Rows(concat_states([p.state for p in parts], batch_dims), torch.cat([p.tokens for p in parts]),
                     torch.cat([p.remaining for p in parts]), torch.cat([p.seen for p in parts]),
                     UniformBank.concat([p.uniforms for p in parts]))

    def sample_tokens(self, logits: torch.Tensor, batch: BatchParams
                      ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One token per row of ``logits`` [B, V], drawn with each row's random stream (``seen``
        updated): tokens [B] int64 and, if some row wants them, their logprobs [B] float32
        (under the unpenalised distribution)."""
        raw = logits.float()
        logits = raw
        if batch.penalty is not None:
            logits = apply_repetition_penalty(raw, batch.penalty, self.seen)
        if batch.greedy:
            tokens = logits.argmax(dim=-1)
        else:
            tokens = sample(logits, batch.temperature, batch.top_k, batch.top_p, self.uniforms.draw(),
                            some_greedy=batch.some_greedy)
        if batch.penalty is not None:
            self.seen[torch.arange(len(tokens)), tokens] = True
        logprobs = torch.log_softmax(raw, dim=-1).gather(1, tokens[:, None]).squeeze(1) if batch.logprobs else None
        return tokens, logprobs


class PrefillRead:
    """Prompts being read together, one bounded ``forward`` at a time (see ``advance``).

    Sorted by length, the rows read up to the end of the shortest remaining prompt, which
    then leaves with its state; no padding is ever read, and each ``advance`` reads at most
    ``budget`` tokens (rows x positions).
    """

    def __init__(self, model: LanguageModel, prompts: list[list[int]]) -> None:
        self.model = model
        self.order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        self.lengths = [len(prompts[i]) for i in self.order]
        self.tokens = torch.zeros(len(self.order), self.lengths[-1], dtype=torch.long)
        for row, i in enumerate(self.order):
            self.tokens[row, : self.lengths[row]] = torch.tensor(prompts[i])
        self.results: list[tuple[torch.Tensor, State] | None] = [None] * len(prompts)
        self.state = model.initial_state(len(self.order))
        self.first = 0  # rows before it have left
        self.pos = 0  # tokens every remaining row has read
        #: Indexes of the prompts whose requests have joined the decoding batch.
        self.joined: set[int] = set()

    @property
    def done(self) -> bool:
        return self.first >= len(self.order)

    def advance(self, budget: int) -> None:
        """Read at most ``budget`` more tokens (at least one position of every remaining row)."""
        rows = len(self.order) - self.first
        end = self.lengths[self.first]
        stop = min(end, self.pos + max(1, budget // rows))
        logits, self.state = self.model.forward(self.tokens[self.first:, self.pos:stop], self.state)
        self.pos = stop
        if stop < end:
            return
        done = self.first
        while done < len(self.order) and self.lengths[done] == end:
            self.results[self.order[done]] = (logits[done - self.first, -1],
                                              select_rows(self.state, self.model.state_batch_dims,
                                                          torch.tensor([done - self.first])))
            done += 1
        self.state = select_rows(self.state, self.model.state_batch_dims,
                                 torch.arange(done - self.first, len(self.order) - self.first))
        self.first = done

    def take_finished(self) -> list[tuple[int, torch.Tensor, State]]:
        """(prompt index, next-token logits [vocab], state with batch 1) of the prompts read to
        their end since the last call: a short prompt need not wait for the group's longest."""
        finished = [(i, *r) for i, r in enumerate(self.results) if r is not None]
        for i, _, _ in finished:
            self.results[i] = None
        return finished

    def waiting(self, handles: list[RequestHandle]) -> list[RequestHandle]:
        """Those of the group's ``handles`` that have not joined the batch yet."""
        return [h for i, h in enumerate(handles) if i not in self.joined]
