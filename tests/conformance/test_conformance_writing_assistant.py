"""The writing-assistant backend against the Assistant contract, on top of a tiny char-lstm."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rnnserve.ops.config import ModelSpec
from rnnserve.testing import AssistantContract
from tests.conformance.tiny_models import tiny_char_lstm


class TestWritingAssistant(AssistantContract):
    plugin = "writing-assistant"
    supporting_plugins = ("char-lstm",)
    spec = ModelSpec("tiny-writing-assistant", "writing-assistant",
                     options={"language_model": "tiny-char-lstm", "checkpoint_every": 4})

    def supporting_models(self, tmp_path: Path) -> Sequence[ModelSpec]:
        return (tiny_char_lstm(tmp_path),)
