"""The ``char-lstm`` backend: a :class:`rnnserve.plugin_api.LanguageModel` over a checkpoint directory.

``forward`` (prefill, scoring) runs :class:`~.model.CharRNN` over the whole block in one
call, or the fused step over its positions where that is faster (short blocks; int8 with
many rows: see ``CharRNNBackend.forward``); ``step`` (decoding) runs the
:class:`~.model.FusedStep` copy of the weights, one matmul per layer.

Spec option ``quantize = true`` serves an int8 copy (``rnnserve.host.int8.int8_copy``): with
fbgemm, every ``nn.Linear``, ``nn.LSTM`` and ``nn.GRU`` (the fused step and the
whole-sequence recurrence; ``rnn`` and ``peephole-lstm`` cells read whole sequences in
float32); with the onednn kernels, every ``nn.Linear`` (the fused step's layers and the
output layer, so decoding runs in int8; whole sequences are read with float32 recurrence).

``dtype = "bfloat16"`` (``rnnserve.host.precision``) keeps weights, state and arithmetic in
bfloat16: with AMX a batch-64 step and prompt reading run 2.4x and 3.9x faster than float32,
at a test loss within 0.0001 nats/char of float32.

``dtype = "auto"`` (without ``quantize``) chooses among float32, bfloat16 and int8 by
measurement (``rnnserve.host.precision_choice``): the fastest step on this machine among those
whose quality cost, recorded in the model card (``precision_cost_nats_<precision>``,
written by ``card.py``), is within ``max_precision_cost`` nats/char (default 0.01).
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rnnserve.plugin_api import (
    MAX_COST_OPTION,
    ConfigurationError,
    LanguageModel,
    LoadContext,
    ModelSpec,
    State,
    card_costs,
    checkpoint_identity,
    choose_precision,
    dtype_option,
    int8_copy,
    max_cost_option,
)

from .checkpoint import CheckpointError, load_model
from .model import CharRNN
from .vocab import CharVocab

#: ``quantize``: int8 (see above). ``dtype``: "float32", "bfloat16" or "auto" (see above).
#: ``naive_step``: decode with the default per-character ``nn.LSTM`` call instead of the fused
#: step (the benchmarks' baseline, as a tutorial would write it). ``max_precision_cost``: the
#: bound of ``dtype = "auto"``, nats/char (a number >= 0).
OPTIONS = {"quantize": bool, "dtype": str, "naive_step": bool, MAX_COST_OPTION: float}
#: What ``dtype = "auto"`` chooses among, and the ``CharRNNBackend.load`` arguments of each.
AUTO_CANDIDATES: dict[str, dict[str, Any]] = {"float32": {}, "bfloat16": {"dtype": torch.bfloat16},
                                              "int8": {"quantized": True}}


def quantize(module: nn.Module) -> nn.Module:
    """An int8 copy of ``module`` (:func:`rnnserve.plugin_api.int8_copy`: its Linear layers, and with
    fbgemm its LSTM and GRU too)."""
    return int8_copy(module, (nn.LSTM, nn.GRU))


#: Blocks of at most this many positions are read by the fused step, one position at a time,
#: unless the whole-sequence recurrence is fbgemm's int8: oneDNN's whole-sequence LSTM (float32,
#: bfloat16) costs ~4 ms a call before its first position, against ~0.2-0.4 ms a position for
#: the fused step (2 x 512, one thread, AMD EPYC, 2026-12-06: a 1-character read 7.4 -> 0.46 ms).
LOOP_MAX_CHARS = 8
#: int8 reads blocks of this many rows or more with its fused int8 step whatever their length:
#: 64 prompts of 200 characters take 374 ms against 585 ms for fbgemm's int8 LSTM (476 ms
#: against 957 ms with the onednn kernels' float32 recurrence); 16 rows are even.
INT8_LOOP_MIN_ROWS = 32


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
        int8_sequences = "quantized" in type(getattr(self._model, "rnn", None)).__module__  # fbgemm's LSTM/GRU
        self._loop_max_chars = 0 if int8_sequences else LOOP_MAX_CHARS

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
        """tokens [B, T] int64 -> logits [B, T, V] float32 and the state after the block (in the model's dtype).

        Short blocks (at most :data:`LOOP_MAX_CHARS` positions: an assistant's keystroke; not
        where fbgemm's int8 LSTM reads whole sequences) and, in int8, blocks of
        :data:`INT8_LOOP_MIN_ROWS` rows or more are read by the fused step one position at a
        time (``FusedStep.read``); the rest by the whole-sequence kernel.
        """
        rows, chars = tokens.shape
        if self._step is not None and (chars <= self._loop_max_chars
                                       or (self.quantized and rows >= INT8_LOOP_MIN_ROWS)):
            logits, state = self._step.read(tokens, state)
        else:
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
        if key in options and key != MAX_COST_OPTION and not isinstance(options[key], kind):
            raise ConfigurationError(f"model {model!r}: option {key!r} must be {kind.__name__}, "
                                     f"got {options[key]!r}")
    dtype_option(options, model)
    if MAX_COST_OPTION in options:
        max_cost_option(options, model)
        if not measured(options):
            raise ConfigurationError(f"model {model!r}: option {MAX_COST_OPTION!r} bounds the choice of "
                                     "dtype = \"auto\" (without quantize), and this spec sets its precision")
    return options


def measured(options: dict[str, Any]) -> bool:
    """Whether a spec leaves its precision to measurement: ``dtype = "auto"`` without ``quantize``."""
    return options.get("dtype") == "auto" and not options.get("quantize", False)


def create_backend(spec: ModelSpec, context: LoadContext) -> CharRNNBackend:
    """Backend factory registered as ``char-lstm``."""
    options = parse_options(dict(spec.options), spec.name)
    directory = context.resolve_path(spec)
    naive_step = options.get("naive_step", False)
    try:
        if measured(options):
            return _load_measured(spec, directory, naive_step, max_cost_option(options, spec.name))
        return CharRNNBackend.load(directory, quantized=options.get("quantize", False), naive_step=naive_step,
                                   dtype=dtype_option(options, spec.name))
    except (CheckpointError, OSError, ValueError) as exc:
        raise ConfigurationError(f"model {spec.name!r}: cannot load char-lstm checkpoint: {exc}") from exc


def _load_measured(spec: ModelSpec, directory: Path, naive_step: bool, max_cost: float) -> CharRNNBackend:
    """The fastest of :data:`AUTO_CANDIDATES` within ``max_cost`` (``rnnserve.host.precision_choice``), with the
    quality costs its model card records."""
    card = directory / "model_card.json"
    metrics = (spec.card.metrics if spec.card is not None
               else json.loads(card.read_text()).get("metrics", {}) if card.is_file() else {})
    candidates = {p: partial(CharRNNBackend.load, directory, naive_step=naive_step, **kwargs)
                  for p, kwargs in AUTO_CANDIDATES.items()}
    identity = checkpoint_identity(directory / "model.safetensors") + (" naive_step" if naive_step else "")
    backend, choice = choose_precision(candidates, card_costs(metrics), max_cost, identity, model=spec.name)
    backend.precision_choice = choice.reason
    return backend
