"""The gru-seq2seq backend: the Translator contract, quantization, plugin hooks, attention plots, gRPC."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

import rnnserve_plugins.gru_translator.plugin as plugin
from rnnserve.backends import TranslateOptions
from rnnserve.cli.attention_plot import save_attention_png
from rnnserve.edge.errors import ConfigurationError
from rnnserve.host.int8 import Int8Linear
from rnnserve.host.plugins import load_plugins
from rnnserve.host.weights_precision import weights_precision
from rnnserve.ops.config import ModelSpec, ServerConfig
from rnnserve.testing.server import running_server
from rnnserve_client import Client
from rnnserve_plugins.gru_translator.backend import GruTranslator, max_target_length
from rnnserve_plugins.gru_translator.checkpoint import save_model
from tests.gru_translator.conftest import tiny_model
from tests.support.hooks import registered

TEXTS = ["The dog sees the cat.", "", "The woman likes the book often.", "The child hears the man today."]


class Context:
    """The part of the host's LoadContext a gru-seq2seq factory uses."""

    def __init__(self, base: Path):
        self.base = base

    def resolve_path(self, spec: ModelSpec) -> Path:
        return self.base / spec.path


@pytest.fixture
def model_dir(tmp_path: Path, toy_vocab) -> Path:
    save_model(tmp_path / "tiny", tiny_model(seed=2, std=0.3), toy_vocab)
    return tmp_path


def factories() -> dict:
    return registered(plugin)[0]


def test_hooks_register_backend_commands_and_shipped_model():
    backends_, commands, models = registered(plugin)
    assert list(backends_) == ["gru-seq2seq"]
    assert commands == {("data", "en-de"), ("train", "gru-seq2seq"), ("eval", "gru-seq2seq")}
    if (plugin.SHIPPED_DIR / "model.safetensors").exists():
        assert [(m.name, m.backend, m.path) for m in models] == [("en-de-gru", "gru-seq2seq", str(plugin.SHIPPED_DIR))]
        assert Path(models[0].path).is_absolute()
    else:
        assert models == []


def test_translate_contract(model_dir):
    translator = factories()["gru-seq2seq"](ModelSpec("tiny", "gru-seq2seq", path="tiny"), Context(model_dir))
    assert translator.default_options == TranslateOptions(beam_size=5, length_penalty=1.0, max_length_ratio=2.0,
                                                          max_length=256)
    assert translator.parameter_count() == sum(p.numel() for p in translator.model.parameters())
    options = TranslateOptions(beam_size=4, n_best=3, return_attention=True)
    results = translator.translate(TEXTS, options)
    assert len(results) == len(TEXTS)
    # nothing to translate: n_best hypotheses all the same, the empty text (callers index them)
    assert results[1].source_tokens == [] and [h.text for h in results[1].hypotheses] == ["", "", ""]
    for text, result in zip(TEXTS, results, strict=True):
        if not text:
            continue
        assert result.source_tokens == translator.vocab.pieces(translator.vocab.encode(text))
        assert len(result.hypotheses) == 3
        assert [h.score for h in result.hypotheses] == sorted((h.score for h in result.hypotheses), reverse=True)
        for h in result.hypotheses:
            assert h.text == translator.vocab._sp.decode_pieces(h.tokens)
            assert len(h.tokens) <= max_target_length(len(result.source_tokens), options)
            assert len(h.attention) == len(h.tokens)
            assert all(len(row) == len(result.source_tokens) and sum(row) == pytest.approx(1.0, abs=1e-5)
                       for row in h.attention)
    alone = translator.translate([TEXTS[2]], options)[0]
    assert [h.tokens for h in alone.hypotheses] == [h.tokens for h in results[2].hypotheses]


def test_greedy_when_beam_size_is_one_and_no_attention_unless_asked(model_dir):
    translator = GruTranslator.load(model_dir / "tiny")
    greedy = translator.translate(TEXTS, TranslateOptions(beam_size=1, max_length=5))
    assert all(len(r.hypotheses) == 1 and r.hypotheses[0].attention is None for r in greedy)
    assert all(len(r.hypotheses[0].tokens) <= 5 for r in greedy)
    beam1 = translator.translate(TEXTS, TranslateOptions(beam_size=2, n_best=1, max_length=5))
    assert all(len(r.hypotheses) == 1 for r in beam1)


@pytest.mark.parametrize("kernels", ["fbgemm", "onednn"])
def test_quantized_backend_and_option_validation(model_dir, kernels, monkeypatch):
    monkeypatch.setenv("RNNSERVE_INT8_KERNELS", kernels)
    factory = factories()["gru-seq2seq"]
    exact = factory(ModelSpec("tiny", "gru-seq2seq", path="tiny"), Context(model_dir))
    quantized = factory(ModelSpec("tiny", "gru-seq2seq", path="tiny", options={"quantize": True}), Context(model_dir))
    assert quantized.quantized and quantized.parameter_count() == exact.parameter_count()
    assert weights_precision(quantized) == "int8"
    output, cell = quantized.model.decoder.output, quantized.model.decoder.cells[0]
    if kernels == "onednn":  # int8 Linear layers on plain tensors; the recurrence stays float32
        assert isinstance(output, Int8Linear) and type(cell) is torch.nn.GRUCell
    else:  # torch's dynamic quantization, the GRU cell included
        assert "quantized" in type(output).__module__ and "quantized" in type(cell).__module__
    options = replace(exact.default_options, beam_size=3, n_best=2)
    results = quantized.translate(TEXTS, options)
    assert [len(r.hypotheses) for r in results] == [2, 2, 2, 2]
    with pytest.raises(ConfigurationError, match="unknown gru-seq2seq option"):
        factory(ModelSpec("tiny", "gru-seq2seq", path="tiny", options={"quantise": True}), Context(model_dir))
    with pytest.raises(ConfigurationError, match="must be bool"):
        factory(ModelSpec("tiny", "gru-seq2seq", path="tiny", options={"quantize": "yes"}), Context(model_dir))
    with pytest.raises(ConfigurationError, match="cannot load"):
        factory(ModelSpec("missing", "gru-seq2seq", path="nowhere"), Context(model_dir))


def test_attention_png(tmp_path):
    save_attention_png(["▁The", "▁dog", "."], ["▁Der", "▁Hund", ".", "x"],
                       [[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.0, 0.0, 1.0], [0.3, 0.3, 0.4]], tmp_path / "a.png")
    assert (tmp_path / "a.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="rows"):
        save_attention_png(["a"], ["b"], [[0.5, 0.5]], tmp_path / "b.png")


def test_translate_over_loopback(model_dir):
    host = load_plugins(extra=[("gru-seq2seq", plugin)], discover=False)
    spec = ModelSpec("t", "gru-seq2seq", path=str(model_dir / "tiny"))
    expected = GruTranslator.load(model_dir / "tiny").translate(TEXTS[:1], TranslateOptions(beam_size=3, n_best=2))
    with running_server(ServerConfig(default_models=False, models=(spec,)), host) as server, \
            Client(server.target, timeout=60) as client:
        (result,) = client.translate("t", TEXTS[:1], beam_size=3, n_best=2, return_attention=True)
    assert [h.text for h in result.hypotheses] == [h.text for h in expected[0].hypotheses]
    assert list(result.source_tokens) == expected[0].source_tokens
    assert len(result.hypotheses[0].attention) == len(result.hypotheses[0].tokens)
    torch.testing.assert_close(torch.tensor([h.score for h in result.hypotheses]),
                               torch.tensor([h.score for h in expected[0].hypotheses]))
