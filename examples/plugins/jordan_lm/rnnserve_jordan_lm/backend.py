"""The ``jordan-lm`` backend: rnnserve's LanguageModel contract over a JordanRNN.

Only the model math: rnnserve batches requests, samples, applies stop sequences, streams
and cancels. The state is ``(y,)`` with y [batch, vocab], so ``state_batch_dims = (0,)``.
"""

from __future__ import annotations

import torch

from rnnserve.plugin_api import LanguageModel, LoadContext, ModelSpec, State

from .model import JordanRNN, load_model
from .vocab import WordVocab


class JordanLM(LanguageModel):
    state_batch_dims = (0,)

    def __init__(self, model: JordanRNN, vocab: WordVocab) -> None:
        self.model = model
        self._vocab = vocab

    @property
    def vocab(self) -> WordVocab:
        return self._vocab

    def initial_state(self, batch_size: int) -> State:
        return (self.model.initial_state(batch_size),)

    def forward(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """Prefill and scoring: tokens [B, T] -> logits [B, T, V] and the state after them."""
        logits, y = self.model(tokens, state[0])
        return logits, (y,)

    def step(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """Decoding: tokens [B] -> logits [B, V] (optional: the default runs forward on [B, 1])."""
        logits, y = self.model.step(tokens, state[0])
        return logits, (y,)

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.model.parameters())


def create_backend(spec: ModelSpec, context: LoadContext) -> JordanLM:
    """The backend factory: ``spec.path`` is a directory written by ``rnnserve train jordan-lm``."""
    if spec.options:
        raise ValueError(f"model {spec.name!r}: jordan-lm takes no options, got {sorted(spec.options)}")
    model, vocab = load_model(context.resolve_path(spec))
    return JordanLM(model, vocab)
