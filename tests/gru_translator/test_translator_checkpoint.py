"""Checkpoint directories: pickle-free round trip, tied weights stored once, float16 storage, errors."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from rnnserve_plugins.gru_translator.beam import beam_search
from rnnserve_plugins.gru_translator.checkpoint import (
    CheckpointError,
    decoding_options,
    load_model,
    save_model,
)
from tests.gru_translator.conftest import tiny_model

SOURCES = [[5, 6, 7], [8, 9, 10, 11, 12]]


def decode(model):
    with torch.inference_mode():
        return [[(h.tokens, round(h.score, 4)) for h in n] for n in beam_search(model, SOURCES, [6, 9], beam_size=3,
                                                                              n_best=3)]


def test_round_trip_is_exact_and_self_describing(tmp_path, toy_vocab):
    model = tiny_model(seed=1, std=0.3)
    save_model(tmp_path / "m", model, toy_vocab, {"note": "x"})
    loaded, vocab, config = load_model(tmp_path / "m")
    assert decode(loaded) == decode(model)
    assert vocab.model_proto == toy_vocab.model_proto
    assert config["model"] == model.config.to_dict() and config["training"] == {"note": "x"}
    assert decoding_options(config).beam_size == 5
    stored = load_file(str(tmp_path / "m" / "model.safetensors"))
    assert "encoder.embedding.weight" in stored
    assert "decoder.embedding.weight" not in stored and "decoder.output.weight" not in stored  # tied: stored once
    assert loaded.decoder.output.weight is loaded.encoder.embedding.weight
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "model.safetensors",
                                                                    "sentencepiece.model"]


def test_untied_and_float16_storage(tmp_path, toy_vocab):
    model = tiny_model(seed=1, tie_embeddings=False)
    save_model(tmp_path / "m", model, toy_vocab, dtype=torch.float16)
    loaded, _, config = load_model(tmp_path / "m")
    assert config["storage_dtype"] == "float16"
    assert loaded.decoder.output.weight is not loaded.encoder.embedding.weight
    for (name, a), b in zip(model.state_dict().items(), loaded.state_dict().values(), strict=True):
        assert b.dtype == torch.float32
        torch.testing.assert_close(a, b, atol=2e-3, rtol=1e-3, msg=name)


def test_bad_directories_raise(tmp_path, toy_vocab):
    with pytest.raises(CheckpointError, match=r"no config\.json"):
        load_model(tmp_path)
    save_model(tmp_path / "m", tiny_model(), toy_vocab)
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    (tmp_path / "m" / "config.json").write_text(json.dumps({**config, "format": "other"}))
    with pytest.raises(CheckpointError, match="format"):
        load_model(tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text(json.dumps({**config, "model": {**config["model"], "vocab_size": 57}}))
    with pytest.raises((CheckpointError, RuntimeError)):
        load_model(tmp_path / "m")
