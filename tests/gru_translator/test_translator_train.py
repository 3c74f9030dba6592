"""Training: a reversal task and the toy translation are learned in seconds; runs resume; batching; schedule."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from rnnserve.training import TrainingSetupError, lr_at
from rnnserve_plugins.gru_translator.beam import greedy_search
from rnnserve_plugins.gru_translator.checkpoint import load_model
from rnnserve_plugins.gru_translator.subwords import PAD_ID
from rnnserve_plugins.gru_translator.train import TrainConfig, collate, make_batches, train
from tests.gru_translator.conftest import tiny_model

MODEL = {"embedding_dim": 32, "encoder_hidden": 32, "encoder_layers": 1, "decoder_hidden": 64, "decoder_layers": 1,
         "dropout": 0.0}


def config(**changes) -> TrainConfig:
    base = {"batch_tokens": 800, "lr": 1e-2, "min_lr": 1e-3, "warmup_steps": 10, "max_steps": 150, "eval_every": 75,
            "checkpoint_every": 25, "log_every": 5, "seed": 3, "threads": 1}
    return TrainConfig(**{**base, **changes})


def test_a_tiny_model_learns_to_reverse_sequences():
    torch.manual_seed(0)
    model = tiny_model(seed=0, vocab_size=16, embedding_dim=32, encoder_hidden=32, encoder_layers=1,
                       decoder_hidden=64, decoder_layers=1, dropout=0.0).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = nn.CrossEntropyLoss(ignore_index=PAD_ID)

    def sample(n: int) -> list[list[int]]:
        return [torch.randint(4, 16, (int(torch.randint(3, 7, ())),)).tolist() for _ in range(n)]

    for _ in range(250):
        sources = sample(64)
        src, lengths, tgt_in, tgt_out = collate(sources, [s[::-1] for s in sources])
        loss = loss_fn(model(src, lengths, tgt_in).flatten(0, 1), tgt_out.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    tests = sample(200)
    with torch.inference_mode():
        hyps = greedy_search(model, tests, [len(s) + 2 for s in tests])
    accuracy = sum(h.tokens == s[::-1] for h, s in zip(hyps, tests, strict=True)) / len(tests)
    assert accuracy > 0.8


def test_toy_translation_is_learned_and_the_run_is_written(toy_data, tmp_path):
    result = train(toy_data, tmp_path / "run", MODEL, config(), quiet=True)
    assert result.step == 150
    assert [r["step"] for r in result.history["dev"]] == [75, 150]
    assert result.best_bleu > 50 and result.history["train"][-1]["loss"] < result.history["train"][0]["loss"] - 2
    model, vocab, config_json = load_model(tmp_path / "run" / "best")
    assert config_json["training"]["dev"]["bleu"] == result.best_bleu
    with torch.inference_mode():
        (hyp,) = greedy_search(model, [vocab.encode("The dog sees the cat.")], [30])
    assert vocab.decode(hyp.tokens) == "Der Hund sieht die Katze."
    for name in ("loss.png", "history.json", "best/loss.png", "last/optimizer.safetensors", "last/trainer_state.json"):
        assert (tmp_path / "run" / name).exists(), name


def test_killed_run_resumes_where_it_stopped(toy_data, tmp_path):
    train(toy_data, tmp_path, MODEL, config(max_steps=20, eval_every=1000), quiet=True)
    state = json.loads((tmp_path / "last" / "trainer_state.json").read_text())
    assert state["step"] == 20 and state["position"] > 0
    resumed = train(toy_data, tmp_path, {**MODEL, "decoder_hidden": 999}, config(max_steps=30, eval_every=1000),
                    quiet=True)
    assert resumed.step == 30
    assert resumed.model.config.decoder_hidden == 64  # the checkpoint's model, not the new flags
    assert [r["step"] for r in resumed.history["train"]] == [5, 10, 15, 20, 25, 30]


def test_token_budget_batches_cover_every_pair_once():
    src = [int(n) for n in torch.randint(1, 40, (500,))]
    tgt = [int(n) for n in torch.randint(1, 40, (500,))]
    batches = make_batches(src, tgt, 300, seed=1, epoch=0)
    assert sorted(i for b in batches for i in b) == list(range(500))
    assert all(len(b) * max(max(src[i], tgt[i] + 1) for i in b) <= 300 for b in batches if len(b) > 1)
    assert make_batches(src, tgt, 300, seed=1, epoch=0) == batches
    assert make_batches(src, tgt, 300, seed=1, epoch=1) != batches


def test_lr_schedule_and_collate():
    c = config(lr=1.0, min_lr=0.1, warmup_steps=10, max_steps=110)
    assert lr_at(0, c) == pytest.approx(0.1) and lr_at(9, c) == pytest.approx(1.0)
    assert lr_at(60, c) == pytest.approx(0.55) and lr_at(110, c) == pytest.approx(0.1)
    src, lengths, tgt_in, tgt_out = collate([[5, 6], [7]], [[8], [9, 10]])
    assert src.tolist() == [[5, 6], [7, 0]] and lengths.tolist() == [2, 1]
    assert tgt_in.tolist() == [[2, 8, 0], [2, 9, 10]] and tgt_out.tolist() == [[8, 3, 0], [9, 10, 3]]


def test_phrases_join_the_training_pairs_when_asked(toy_data, tmp_path):
    en = (toy_data / "train.en").read_text().splitlines()[:40]
    de = (toy_data / "train.de").read_text().splitlines()[:40]
    (toy_data / "train.phrases.en").write_text("".join(" ".join(line.split()[:2]) + "\n" for line in en))
    (toy_data / "train.phrases.de").write_text("".join(" ".join(line.split()[:2]) + "\n" for line in de))
    used = {}
    for phrases in (False, True):
        train(toy_data, tmp_path / str(phrases), MODEL, config(max_steps=2, eval_every=1000, phrases=phrases),
              quiet=True)
        used[phrases] = load_model(tmp_path / str(phrases) / "last")[2]["training"]["train_pairs_used"]
    assert used == {False: 260, True: 300}


def test_bfloat16_autocast_trains_and_keeps_float32_weights(toy_data, tmp_path):
    result = train(toy_data, tmp_path / "run", MODEL, config(autocast="bfloat16", max_steps=60, eval_every=60),
                   quiet=True)
    losses = [r["loss"] for r in result.history["train"]]
    assert losses[-1] < losses[0] - 1, losses
    assert all(r["pairs_per_s"] > 0 for r in result.history["train"])
    assert {p.dtype for p in result.model.parameters()} == {torch.float32}


def test_autocast_setting_is_checked():
    with pytest.raises(TrainingSetupError, match="autocast must be one of"):
        config(autocast="float16")


def test_a_run_resumes_warm_from_its_snapshot_on_a_fresh_machine(toy_data, tmp_path):
    """The snapshot (float16 weights + trainer state, no optimizer) is what a repository can carry
    to the next machine: a run directory without last/ continues from it at its step and data position."""
    snapshot = tmp_path / "snapshot"
    first = train(toy_data, tmp_path / "run", MODEL, config(max_steps=50, checkpoint_every=25, eval_every=50),
                  quiet=True, snapshot=snapshot)
    assert sorted(p.name for p in snapshot.iterdir()) == ["config.json", "model.safetensors", "sentencepiece.model",
                                                          "trainer_state.json"]
    assert json.loads((snapshot / "config.json").read_text())["storage_dtype"] == "float16"
    state = json.loads((snapshot / "trainer_state.json").read_text())
    assert state["step"] == 50 and "param_groups" not in state
    resumed = train(toy_data, tmp_path / "elsewhere", MODEL, config(max_steps=80, checkpoint_every=25, eval_every=40),
                    quiet=True, snapshot=snapshot)
    assert resumed.step == 80
    assert [r["step"] for r in resumed.history["dev"]] == [50, 80]  # the history came along
    assert resumed.history["train"][-1]["loss"] < first.history["train"][0]["loss"]
