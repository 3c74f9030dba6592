"""The char-lstm backend against the LanguageModel contract, one tiny model per cell kind."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from rnnserve.config import ModelSpec
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
    """``dtype = "bfloat16"``: the same contract, compared at bfloat16's precision (8 bits of mantissa)."""

    atol = 0.05
    rtol = 0.05

    def make_spec(self, tmp_path: Path) -> ModelSpec:
        spec = tiny_char_lstm(tmp_path, cell=self.cell)
        return dataclasses.replace(spec, options={"dtype": "bfloat16"})
