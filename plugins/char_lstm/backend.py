"""The ``char-lstm`` backend: a :class:`rnnserve.backends.LanguageModel` over a checkpoint directory.

``forward`` (prefill, scoring) runs :class:`~.model.CharRNN` over the whole block in one
call; ``step`` (decoding) runs the :class:`~.model.FusedStep` copy of the weights, one
matmul per layer. Spec option ``quantize = true`` converts both to int8 dynamic
quantization (``torch.ao.quantization.quantize_dynamic``): ``nn.LSTM`` / ``nn.GRU`` and
every ``nn.Linear`` (for ``rnn`` and ``peephole-lstm`` cells the whole-sequence recurrence
stays float32; their step and output layer are quantized).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rnnserve.backends import LanguageModel, LoadContext, State
from rnnserve.config import ModelSpec
from rnnserve.errors import ConfigurationError

from .checkpoint import CheckpointError, load_model
from .model import CharRNN
from .vocab import CharVocab

#: ``quantize``: int8 dynamic quantization. ``naive_step``: decode with the default per-character
#: ``nn.LSTM`` call instead of the fused step (the benchmarks' baseline, as a tutorial would write it).
OPTIONS = {"quantize": bool, "naive_step": bool}


def quantize(module: nn.Module) -> nn.Module:
    """int8 dynamic quantization of ``module``'s LSTM, GRU and Linear submodules (a copy)."""
    with warnings.catch_warnings():  # torch.ao.quantization announces its move to torchao
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(module, {nn.LSTM, nn.GRU, nn.Linear}, dtype=torch.qint8)


class CharLSTMBackend(LanguageModel):
    """Serves one :class:`~.model.CharRNN` with its :class:`~.vocab.CharVocab`."""

    def __init__(self, model: CharRNN, vocab: CharVocab, *, quantized: bool = False, naive_step: bool = False):
        model = model.eval()
        self._vocab = vocab
        self._parameters = sum(p.numel() for p in model.parameters())
        self.state_batch_dims = model.state_batch_dims
        self.config = model.config
        self.quantized = quantized
        self._initial = model.initial_state
        self._model: nn.Module = quantize(model) if quantized else model
        self._step: nn.Module | None = None if naive_step else (
            quantize(model.fused_step()) if quantized else model.fused_step())

    @classmethod
    def load(cls, directory: Path, *, quantized: bool = False, naive_step: bool = False) -> CharLSTMBackend:
        model, vocab, _ = load_model(directory)
        return cls(model, vocab, quantized=quantized, naive_step=naive_step)

    @property
    def vocab(self) -> CharVocab:
        return self._vocab

    def initial_state(self, batch_size: int) -> State:
        """Zeros, ``(h, c)`` or ``(h,)``, each [layers, batch_size, hidden]."""
        return self._initial(batch_size)

    def forward(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """tokens [B, T] int64 -> logits [B, T, V] float32 and the state after the block."""
        return self._model(tokens, state)

    def step(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """tokens [B] int64 -> logits [B, V] float32 and the new state (fused single step)."""
        if self._step is None:
            return super().step(tokens, state)
        return self._step(tokens, state)

    def parameter_count(self) -> int:
        return self._parameters


def parse_options(options: dict[str, Any], model: str) -> dict[str, Any]:
    """Validate a spec's options against :data:`OPTIONS`."""
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ConfigurationError(f"model {model!r}: unknown char-lstm option(s) {unknown}; valid: {sorted(OPTIONS)}")
    for key, kind in OPTIONS.items():
        if key in options and not isinstance(options[key], kind):
            raise ConfigurationError(f"model {model!r}: option {key!r} must be {kind.__name__}, "
                                     f"got {options[key]!r}")
    return options


def create_backend(spec: ModelSpec, context: LoadContext) -> CharLSTMBackend:
    """Backend factory registered as ``char-lstm``."""
    options = parse_options(dict(spec.options), spec.name)
    directory = context.resolve_path(spec)
    try:
        return CharLSTMBackend.load(directory, quantized=options.get("quantize", False),
                                    naive_step=options.get("naive_step", False))
    except (CheckpointError, OSError, ValueError) as exc:
        raise ConfigurationError(f"model {spec.name!r}: cannot load char-lstm checkpoint: {exc}") from exc
