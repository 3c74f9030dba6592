"""The char-lstm backend against the LanguageModel contract, one tiny model per cell kind."""

from __future__ import annotations

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
