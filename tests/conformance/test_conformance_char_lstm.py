"""The char-lstm backend against the LanguageModel contract, one tiny model per cell kind."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from rnnserve.ops.config import ModelSpec
from rnnserve.testing import LanguageModelContract
from tests.conformance.tiny_models import tiny_char_lstm


class TestCharLSTM(LanguageModelContract):
    plugin = "char-lstm"
    sample_text = "It is a truth universally acknowledged."
    prompt = "Emma Woodhouse"
    cell = "lstm"

    def make_spec(self, tmp_path: Path) -> ModelSpec:
        return tiny_char_lstm(tmp_path, cell=self.cell)


class TestCharGRU(TestCharLSTM):
    cell = "gru"


class TestCharPeepholeLSTM(TestCharLSTM):
    cell = "peephole-lstm"


class TestCharLSTMBFloat16(TestCharLSTM):
    """``dtype = "bfloat16"``: the same contract, compared at bfloat16's precision (8 bits of mantissa).

    Runs on every CPU: where there is no native bfloat16 (AMX, AVX512-BF16) torch emulates it.
    Seeds are exact for the same request, not across batches (the contract skips that test).
    """

    atol = 0.05
    rtol = 0.05

    def make_spec(self, tmp_path: Path) -> ModelSpec:
        spec = tiny_char_lstm(tmp_path, cell=self.cell)
        return dataclasses.replace(spec, options={"dtype": "bfloat16"})


class TestCharLSTMInt8(TestCharLSTM):
    """``quantize = true``: dynamic int8 (weights int8, activations quantized per call), on every CPU.

    An activation's scale is taken over the whole batch, so a batched step differs from single
    steps by a few quantization steps of the logits; compared at that precision.
    """

    atol = 0.1
    rtol = 0.1

    def make_spec(self, tmp_path: Path) -> ModelSpec:
        spec = tiny_char_lstm(tmp_path, cell=self.cell)
        return dataclasses.replace(spec, options={"quantize": True})


class TestCharLSTMAuto(TestCharLSTM):
    """``dtype = "auto"`` (the shipped model's setting): float32 here (the tiny model's card records no
    quality costs), or what ``RNNSERVE_PRECISION`` forces (``tests/test_cpu_paths.py`` forces int8 and
    bfloat16); compared at bfloat16's precision, with exact seeds checked where it loads in float32."""

    atol = 0.05
    rtol = 0.05

    def make_spec(self, tmp_path: Path) -> ModelSpec:
        spec = tiny_char_lstm(tmp_path, cell=self.cell)
        return dataclasses.replace(spec, options={"dtype": "auto"})
