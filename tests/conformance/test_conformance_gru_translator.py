"""The gru-seq2seq backend against the Translator contract, with a tiny seeded model."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from rnnserve.ops.config import ModelSpec
from rnnserve.testing import TranslatorContract
from tests.conformance.tiny_models import DATA, tiny_gru_translator


class TestGruTranslator(TranslatorContract):
    plugin = "gru-seq2seq"
    texts = tuple((DATA / "toy_translation" / "toy.en").read_text().splitlines()[:4])

    def make_spec(self, tmp_path: Path) -> ModelSpec:
        return tiny_gru_translator(tmp_path)


class TestGruTranslatorBFloat16(TestGruTranslator):
    """``dtype = "bfloat16"``: batched equals one at a time, attention sums to one, bad input refused."""

    def make_spec(self, tmp_path: Path) -> ModelSpec:
        return dataclasses.replace(tiny_gru_translator(tmp_path), options={"dtype": "bfloat16"})
