"""The ``char-lstm`` backend: a :class:`rnnserve.plugin_api.LanguageModel` over a checkpoint directory.

``forward`` (prefill, scoring) runs :class:`~.model.CharRNN` over the whole block in one
call; ``step`` (decoding) runs the :class:`~.model.FusedStep` copy of the weights, one
matmul per layer. Spec option ``quantize = true`` swaps every ``nn.Linear`` for an
:class:`rnnserve.plugin_api.Int8Linear` (int8 weights, per-row dynamic int8 activations):
the fused step's layers and the output layer, so decoding runs in int8; the whole-sequence
recurrence (prompt reading, scoring) stays float32, with an int8 output layer. ``dtype = "bfloat16"``
(``rnnserve.precision``) keeps weights, state and arithmetic in bfloat16: with AMX a
batch-64 step and prompt reading run 2.4x and 3.9x faster than float32, at a test loss
within 0.0001 nats/char of float32.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from rnnserve.plugin_api import (
    ConfigurationError,
    LanguageModel,
    LoadContext,
    ModelSpec,
    State,
    dtype_option,
    quantize_linears,
)

from .checkpoint import CheckpointError, load_model
from .model import CharRNN
from .vocab import CharVocab

#: ``quantize``: int8 dynamic quantization. ``dtype``: "float32" or "bfloat16" (see above).
#: ``naive_step``: decode with the default per-character ``nn.LSTM`` call instead of the fused
#: step (the benchmarks' baseline, as a tutorial would write it).
OPTIONS = {"quantize": bool, "dtype": str, "naive_step": bool}


def quantize(module: nn.Module) -> nn.Module:
    """A copy of ``module`` with int8 Linear layers (:func:`rnnserve.plugin_api.quantize_linears`)."""
    return quantize_linears(module)


class CharRNNBackend(LanguageModel):
    """Serves one :class:`~.model.CharRNN` (any cell kind: LSTM, GRU, Elman, peephole LSTM) with its
    :class:`~.vocab.CharVocab`."""

    def __init__(self, model: CharRNN, vocab: CharVocab, *, quantized: bool = False, naive_step: bool = False,
                 dtype: torch.dtype = torch.float32):
        if quantized and dtype != torch.float32:
            raise ValueError("int8 quantization works from float32 weights: use quantize or a dtype, not both")
        model = model.eval().to(dtype)
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
    def load(cls, directory: Path, *, quantized: bool = False, naive_step: bool = False,
             dtype: torch.dtype = torch.float32) -> CharRNNBackend:
        model, vocab, _ = load_model(directory)
        return cls(model, vocab, quantized=quantized, naive_step=naive_step, dtype=dtype)

    @property
    def vocab(self) -> CharVocab:
        return self._vocab

    def initial_state(self, batch_size: int) -> State:
        """Zeros, ``(h, c)`` or ``(h,)``, each [layers, batch_size, hidden]."""
        return self._initial(batch_size)

    def forward(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """tokens [B, T] int64 -> logits [B, T, V] float32 and the state after the block (in the model's dtype)."""
        logits, state = self._model(tokens, state)
        return logits.float(), state

    def step(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """tokens [B] int64 -> logits [B, V] float32 and the new state (fused single step)."""
        if self._step is None:
            return super().step(tokens, state)
        logits, state = self._step(tokens, state)
        return logits.float(), state

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
    dtype_option(options, model)
    return options


def create_backend(spec: ModelSpec, context: LoadContext) -> CharRNNBackend:
    """Backend factory registered as ``char-lstm``."""
    options = parse_options(dict(spec.options), spec.name)
    directory = context.resolve_path(spec)
    try:
        return CharRNNBackend.load(directory, quantized=options.get("quantize", False),
                                    naive_step=options.get("naive_step", False),
                                    dtype=dtype_option(options, spec.name))
    except (CheckpointError, OSError, ValueError) as exc:
        raise ConfigurationError(f"model {spec.name!r}: cannot load char-lstm checkpoint: {exc}") from exc
