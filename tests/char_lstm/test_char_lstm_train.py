"""Training on the committed Austen slice: loss goes down, runs resume, the LR schedule, the card."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from rnnserve.training import lr_at
from rnnserve_plugins.char_lstm.checkpoint import load_model
from rnnserve_plugins.char_lstm.data import read_split
from rnnserve_plugins.char_lstm.evaluate import evaluate_loss
from rnnserve_plugins.char_lstm.train import TrainConfig, make_streams, train

SLICE = Path(__file__).resolve().parents[1] / "data" / "austen_slice"
MODEL = {"embedding_dim": 16, "hidden_size": 48, "num_layers": 1, "dropout": 0.0}


def config(**changes) -> TrainConfig:
    base = {"seq_len": 32, "batch_size": 8, "lr": 1e-2, "min_lr": 1e-3, "warmup_steps": 5, "max_steps": 40,
            "eval_every": 20, "checkpoint_every": 10, "log_every": 5, "min_count": 1, "seed": 7, "threads": 1}
    return TrainConfig(**{**base, **changes})


def test_training_lowers_the_loss_and_writes_a_run(tmp_path):
    result = train(SLICE, tmp_path, MODEL, config(), quiet=True, write_card=False)
    assert result.step == 40
    first_val, last_val = result.history["val"][0]["loss"], result.history["val"][-1]["loss"]
    assert result.history["train"][-1]["loss"] < result.history["train"][0]["loss"] - 0.3
    assert last_val < first_val
    model, vocab, config_json = load_model(tmp_path / "best")
    untrained = evaluate_loss(type(model)(model.config), vocab.encode_tensor(read_split(SLICE, "val")), 0)
    assert result.best_val < untrained - 0.5
    assert config_json["training"]["train"]["max_steps"] == 40
    for name in ("loss.png", "history.json", "best/loss.png", "last/optimizer.safetensors",
                 "last/trainer_state.json"):
        assert (tmp_path / name).exists(), name


def test_killed_run_resumes_where_it_stopped(tmp_path):
    train(SLICE, tmp_path, MODEL, config(max_steps=20), quiet=True, write_card=False)
    state = json.loads((tmp_path / "last" / "trainer_state.json").read_text())
    assert state["step"] == 20
    resumed = train(SLICE, tmp_path, {"hidden_size": 999}, config(max_steps=30), quiet=True, write_card=False)
    assert resumed.step == 30
    assert resumed.model.config.hidden_size == 48  # the checkpoint's model, not the new flags
    assert [r["step"] for r in resumed.history["train"]] == [5, 10, 15, 20, 25, 30]


def test_lr_schedule_and_streams():
    c = config(lr=1.0, min_lr=0.1, warmup_steps=10, max_steps=110)
    assert lr_at(0, c) == pytest.approx(0.1) and lr_at(9, c) == pytest.approx(1.0)
    assert lr_at(60, c) == pytest.approx(0.55) and lr_at(110, c) == pytest.approx(0.1)
    streams = make_streams(torch.arange(2, 12), 3, bos_id=0)
    # Each stream after the first starts with the token before its cut, not a fake <bos> before mid-text.
    assert streams.tolist() == [[0, 2, 3, 4], [4, 5, 6, 7], [7, 8, 9, 10]]
    assert make_streams(torch.tensor([0, 2, 3, 0, 5, 6, 7]), 2, bos_id=0).tolist() == [[0, 2, 3, 0], [0, 5, 6, 7]]


def test_model_card_files(tmp_path):
    from rnnserve.ops.config import ModelCard
    from rnnserve_plugins.char_lstm.card import write_card_for

    train(SLICE, tmp_path, MODEL, config(max_steps=10, eval_every=10), quiet=True, write_card=False)
    card = write_card_for(tmp_path / "best", SLICE, wall_time_s=1.0, streams=4)
    raw = json.loads((tmp_path / "best" / "model_card.json").read_text())
    assert ModelCard.from_dict(raw) == card
    for key in ("val_nats_per_char", "test_nats_per_char", "test_bits_per_char", "test_nats_per_char_int8",
                "step_ms_batch1_fused", "step_ms_batch1_fused_int8", "step_ms_batch64_default"):
        assert isinstance(card.metrics[key], float), key
    assert card.metrics["test_bits_per_char"] == pytest.approx(card.metrics["test_nats_per_char"] / 0.693147, 1e-3)
    text = (tmp_path / "best" / "MODEL_CARD.md").read_text()
    assert "## Samples" in text and "nats/char" in text


def test_runs_are_reproducible_from_the_seed(tmp_path):
    runs = [train(SLICE, tmp_path / name, {**MODEL, "dropout": 0.3}, config(max_steps=8, eval_every=8), quiet=True,
                  write_card=False) for name in ("a", "b")]
    for (name, a), b in zip(runs[0].model.state_dict().items(), runs[1].model.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_a_document_is_read_from_the_initial_state_wherever_it_starts(cell):
    """Rows of one window with <bos> at different columns: after its <bos>, each row's logits and
    final state are those of its document read alone from zeros, whatever the row read before."""
    from rnnserve_plugins.char_lstm.model import CharRNN, CharRNNConfig

    torch.manual_seed(0)
    model = CharRNN(CharRNNConfig(vocab_size=9, cell=cell, embedding_dim=6, hidden_size=10, num_layers=2,
                                  dropout=0.0)).eval()
    document = torch.tensor([0, 3, 4, 5, 6, 7])  # <bos> (id 0) and five characters
    window = torch.tensor([[2, 3, *document.tolist(), 8],
                           [*document.tolist(), 8, 2, 3],
                           [5, 5, 5, 5, 5, 5, 5, 5, 5]])  # no document starts: read straight through
    state = tuple(torch.randn_like(s) for s in model.initial_state(3))  # mid-text states
    with torch.no_grad():
        logits, final = model(window, state, window == 0)
        alone, alone_state = model(document[None], model.initial_state(1))
        through, _ = model(window[2:], tuple(s[:, 2:] for s in state))
        continued, _ = model(torch.tensor([[8]]), alone_state)
        _, row_1_alone = model(window[1:2], model.initial_state(1))
    torch.testing.assert_close(logits[0, 2:8], alone[0])
    torch.testing.assert_close(logits[1, :6], alone[0])
    torch.testing.assert_close(logits[2], through[0])
    assert not torch.allclose(logits[0, :2], logits[2, :2])  # before its document, row 0 read its own past
    torch.testing.assert_close(logits[0, 8], continued[0, 0])
    for carried, expected in zip(final, row_1_alone, strict=True):
        torch.testing.assert_close(carried[:, 1:2], expected)
    grads = torch.autograd.grad(model(window, state, window == 0)[0].sum(), list(model.parameters()))
    assert all(torch.isfinite(g).all() for g in grads)


def test_evaluation_reads_each_document_alone():
    """Two documents in one text score what they score apart (streams=1 is exact)."""
    from rnnserve_plugins.char_lstm.model import CharRNN, CharRNNConfig

    torch.manual_seed(1)
    model = CharRNN(CharRNNConfig(vocab_size=9, embedding_dim=6, hidden_size=10, num_layers=1, dropout=0.0))
    first, second = torch.tensor([3, 4, 5, 6]), torch.tensor([7, 8, 3])
    both = evaluate_loss(model, torch.cat([first, torch.tensor([0]), second]), 0, streams=1)
    apart = (evaluate_loss(model, first, 0, streams=1) * 4 + evaluate_loss(model, second, 0, streams=1) * 3) / 7
    assert both == pytest.approx(apart, rel=1e-5)


def test_stepwise_evaluation_scores_the_decoding_path():
    """stepwise=True reads through the backend's fused step: float32 scores what forward scores, and the
    int8 backend's decoding path (int8 steps) scores close to it but not identically."""
    from rnnserve_plugins.char_lstm.backend import CharRNNBackend
    from rnnserve_plugins.char_lstm.model import CharRNN, CharRNNConfig
    from rnnserve_plugins.char_lstm.vocab import CharVocab

    torch.manual_seed(2)
    model = CharRNN(CharRNNConfig(vocab_size=9, embedding_dim=6, hidden_size=16, num_layers=2, dropout=0.0)).eval()
    vocab = CharVocab.build("abcdefg")  # 2 specials + 7 characters = 9
    tokens = torch.randint(1, 9, (300,))
    exact = evaluate_loss(model, tokens, 0, streams=3, burn_in=20)
    assert evaluate_loss(CharRNNBackend(model, vocab), tokens, 0, streams=3, burn_in=20,
                         stepwise=True) == pytest.approx(exact, rel=1e-5)
    int8 = evaluate_loss(CharRNNBackend(model, vocab, quantized=True), tokens, 0, streams=3, burn_in=20, stepwise=True)
    assert int8 != exact and int8 == pytest.approx(exact, rel=0.01)


def test_a_time_limited_run_resumes_from_its_snapshot_on_another_machine(tmp_path):
    """--time-limit-min stops after a checkpoint; with OUT gone (a fresh machine), the committed
    float16 snapshot resumes the run at its step (warm: no optimizer state in it)."""
    snapshot = tmp_path / "snapshot"
    first = train(SLICE, tmp_path / "run", MODEL, config(max_steps=40, time_limit_min=1e-9), quiet=True,
                  write_card=False, snapshot=snapshot)
    assert first.step == 1  # the limit is checked after every step
    state = json.loads((snapshot / "trainer_state.json").read_text())
    assert state["step"] == 1 and not (snapshot / "optimizer.safetensors").exists()
    assert json.loads((snapshot / "config.json").read_text())["storage_dtype"] == "float16"
    shutil.rmtree(tmp_path / "run")
    resumed = train(SLICE, tmp_path / "run", {"hidden_size": 999}, config(max_steps=20), quiet=True,
                    write_card=False, snapshot=snapshot)
    assert resumed.step == 20 and resumed.model.config.hidden_size == 48
    assert json.loads((snapshot / "trainer_state.json").read_text())["step"] == 20


def test_an_english_corpus_card_reports_each_source_its_mix_and_its_licences(tmp_path):
    """A `rnnserve data english` layout: the card's text, samples and licence follow the manifest, and
    each test.<source>.txt gets its own loss."""
    from rnnserve_plugins.char_lstm.card import ENGLISH, write_card_for

    data = tmp_path / "data"
    data.mkdir()
    docs = {"man": "The command prints its options.\nUse it with care.\n",
            "python-docs": "The function returns a list of strings.\nEach item is a path.\n"}
    for split in ("train", "val", "test"):
        (data / f"{split}.txt").write_text("\n".join(docs.values()) * (40 if split == "train" else 4))
    for name, text in docs.items():
        (data / f"test.{name}.txt").write_text(text * 4)
    manifest = {"sources": {
        "man": {"packages": [{"file": "manpages.deb", "sha256": "aa", "licence": "GPL-2+ | BSD-2-clause"}],
                "chars": {"train": 1000}},
        "python-docs": {"packages": [{"file": "python3-doc.deb", "sha256": "bb", "licence": "PSF-2.0"}],
                        "chars": {"train": 3000}}},
        "mix": {"man": 0.25, "python-docs": 0.75}, "reserved_packages_refused": ["wesnoth*"],
        "split": "by hash", "charset": "printable ASCII"}
    (data / "manifest.json").write_text(json.dumps(manifest))
    train(data, tmp_path / "run", MODEL, config(max_steps=10, eval_every=10), quiet=True, write_card=False)
    card = write_card_for(tmp_path / "run" / "best", data, wall_time_s=1.0, streams=2)
    assert isinstance(card.metrics["test_man_bits_per_char"], float)
    assert isinstance(card.metrics["test_python-docs_bits_per_char"], float)
    assert "modern English prose" in card.description and "wesnoth*" in card.data
    assert "from 2 Debian packages" in card.license and "BSD, GPL, PSF (each" in card.license
    text = (tmp_path / "run" / "best" / "MODEL_CARD.md").read_text()
    assert "| man | 1 | 1,000 | 25.0% |" in text
    assert "| python-docs | 1 | 3,000 | 75.0% |" in text
    assert f"> **{ENGLISH.sample_prompts[0]}**" in text and "held-out paragraphs of every source" in text
