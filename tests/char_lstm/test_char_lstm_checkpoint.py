"""Checkpoints: model round-trip (float32 and float16 storage), no pickle."""

from __future__ import annotations

import json

import pytest
import torch

from rnnserve_plugins.char_lstm import checkpoint
from rnnserve_plugins.char_lstm.model import CharRNN, CharRNNConfig
from rnnserve_plugins.char_lstm.vocab import CharVocab


def make(cell: str = "lstm") -> tuple[CharRNN, CharVocab]:
    torch.manual_seed(0)
    vocab = CharVocab.build("abcdefg hij.\n")
    return CharRNN(CharRNNConfig(vocab_size=vocab.size, cell=cell, embedding_dim=4, hidden_size=8,
                                 num_layers=2)).eval(), vocab


@pytest.mark.parametrize("cell", ["lstm", "peephole-lstm", "gru"])
def test_model_roundtrip_is_exact(tmp_path, cell):
    model, vocab = make(cell)
    checkpoint.save_model(tmp_path / "m", model, vocab, {"note": "x"})
    loaded, loaded_vocab, config = checkpoint.load_model(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "model.safetensors", "vocab.json"]
    assert config["training"] == {"note": "x"} and loaded.config == model.config
    assert loaded_vocab.chars == vocab.chars
    tokens = torch.randint(0, vocab.size, (2, 6), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(loaded(tokens, loaded.initial_state(2))[0], model(tokens, model.initial_state(2))[0],
                                   atol=0, rtol=0)


def test_float16_storage_is_close(tmp_path):
    model, vocab = make()
    checkpoint.save_model(tmp_path / "m", model, vocab, dtype=torch.float16)
    loaded, _, config = checkpoint.load_model(tmp_path / "m")
    assert config["storage_dtype"] == "float16"
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    tokens = torch.arange(vocab.size)[None]
    with torch.no_grad():
        torch.testing.assert_close(loaded(tokens, loaded.initial_state(1))[0],
                                   model(tokens, model.initial_state(1))[0], atol=5e-3, rtol=1e-2)


def test_bad_directories_are_reported(tmp_path):
    with pytest.raises(checkpoint.CheckpointError, match=r"no config\.json"):
        checkpoint.load_model(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(checkpoint.CheckpointError, match="format"):
        checkpoint.load_model(tmp_path)
