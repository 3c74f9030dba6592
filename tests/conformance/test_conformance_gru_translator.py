"""The gru-seq2seq backend against the Translator contract, with a tiny seeded model."""

from __future__ import annotations

from pathlib import Path

from rnnserve.config import ModelSpec
from rnnserve.testing import TranslatorContract
from tests.conformance.tiny_models import DATA, tiny_gru_translator


class TestGruTranslator(TranslatorContract):
    plugin = "gru-seq2seq"
    texts = tuple((DATA / "toy_translation" / "toy.en").read_text().splitlines()[:4])

    def make_spec(self, tmp_path: Path) -> ModelSpec:
        return tiny_gru_translator(tmp_path)
