"""rnnserve.training's helpers every trainer shares: the resumable optimizer/RNG state and the
command-line flags made from a trainer's config dataclasses."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, fields
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from rnnserve.training import add_config_flags, config_sections, load_training_state, save_training_state


def _trained_adamw() -> tuple[nn.Module, torch.optim.AdamW]:
    torch.manual_seed(0)
    model = nn.GRU(3, 4, batch_first=True)
    optimizer = torch.optim.AdamW([{"params": [model.weight_ih_l0, model.weight_hh_l0], "weight_decay": 0.01},
                                   {"params": [model.bias_ih_l0, model.bias_hh_l0], "weight_decay": 0.0}],
                                  lr=1e-2, betas=(0.9, 0.99))
    for _ in range(2):
        loss = model(torch.randn(2, 5, 3))[0].square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model, optimizer


def test_training_state_round_trip_restores_optimizer_and_rng(tmp_path: Path) -> None:
    model, optimizer = _trained_adamw()
    save_training_state(tmp_path, optimizer, {"step": 2, "history": {"train": [{"step": 1, "loss": 0.5}]}})
    expected_rng = torch.get_rng_state()
    assert set(load_file(str(tmp_path / "optimizer.safetensors"))) >= {"rng.torch", "state.0.exp_avg"}
    assert "rng.cuda" not in load_file(str(tmp_path / "optimizer.safetensors"))  # this process has no GPU state
    assert "param_groups" in json.loads((tmp_path / "trainer_state.json").read_text())

    torch.manual_seed(99)
    fresh = torch.optim.AdamW([{"params": [model.weight_ih_l0, model.weight_hh_l0]},
                               {"params": [model.bias_ih_l0, model.bias_hh_l0]}], lr=1.0)
    state = load_training_state(tmp_path, fresh)
    assert state == {"step": 2, "history": {"train": [{"step": 1, "loss": 0.5}]}}
    assert torch.equal(torch.get_rng_state(), expected_rng)
    saved, restored = optimizer.state_dict(), fresh.state_dict()
    assert saved["param_groups"] == restored["param_groups"]  # lr, betas (a tuple again), weight decay
    for index, tensors in saved["state"].items():
        for name, value in tensors.items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(restored["state"][index][name]))


@dataclass
class _Model:
    hidden_size: int = 16
    cell: str = "lstm"


@dataclass
class _Train:
    lr: float = 1e-3
    phrases: bool = False


SECTIONS = {"model": {f.name: f for f in fields(_Model)}, "train": {f.name: f for f in fields(_Train)}}


def _parse(argv: list[str], config: Path | None = None) -> dict[str, dict]:
    parser = argparse.ArgumentParser()
    add_config_flags(parser, SECTIONS, {"cell": ("lstm", "gru")})
    return config_sections(parser.parse_args(argv), SECTIONS, config)


def test_flags_override_the_config_file_and_defaults_stay_unset(tmp_path: Path) -> None:
    config = tmp_path / "run.json"
    config.write_text(json.dumps({"model": {"hidden_size": 64, "cell": "gru"}, "train": {"lr": 0.5}}))
    assert _parse(["--hidden-size", "32", "--phrases", "true"], config) == {
        "model": {"hidden_size": 32, "cell": "gru"}, "train": {"lr": 0.5, "phrases": True}}
    assert _parse([]) == {"model": {}, "train": {}}  # the dataclasses' defaults apply
    assert _parse(["--phrases", "false"])["train"]["phrases"] is False  # not bool("false")
    assert _parse(["--lr", "2e-3"])["train"]["lr"] == pytest.approx(2e-3)


def test_unknown_options_and_values_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "run.json"
    config.write_text(json.dumps({"train": {"lr": 0.5, "learning_rate": 0.1}, "model": {"layers": 2}}))
    with pytest.raises(SystemExit, match=r"unknown option\(s\) \['model.layers', 'train.learning_rate'\]"):
        _parse([], config)
    with pytest.raises(SystemExit):
        _parse(["--cell", "rnn"])
    assert "invalid choice: 'rnn'" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "message"), [
    (["train", "char-lstm", "--data", "{tmp}/none", "--out", "{tmp}/run"],
     "error: {tmp}/none/train.txt not found; run `rnnserve data austen --out {tmp}/none` first"),
    (["train", "gru-seq2seq", "--data", "{tmp}/none", "--out", "{tmp}/run"],
     "error: {tmp}/none/sentencepiece.model not found; run `rnnserve data en-de --out {tmp}/none` first"),
    (["train", "gru-seq2seq", "--data", "{tmp}", "--out", "{tmp}/run", "--accumulate", "0"],
     "error: accumulate must be at least 1, got 0"),
    # 2,000 characters and the final newline the reader ends every split with; 64 streams of 128
    (["train", "char-lstm", "--data", "{tmp}", "--out", "{tmp}/run"],
     "error: 2001 training characters cut into 64 streams are shorter than one window of 128: lower --batch-size "
     "or --seq-len"),
])
def test_training_commands_refuse_bad_set_ups_in_one_line(tmp_path: Path, argv: list[str], message: str) -> None:
    from rnnserve.cli import main

    for split in ("train", "val"):
        (tmp_path / f"{split}.txt").write_text("abc " * 500)
    with pytest.raises(SystemExit) as exit_info:
        main([arg.format(tmp=tmp_path) for arg in argv])
    assert exit_info.value.code == message.format(tmp=tmp_path)
    assert not (tmp_path / "run").exists()


def _resume_rank(rank: int, port: int, out: str) -> None:
    import os

    from rnnserve.training import TrainingSetupError, agree_on_resume, placement, start_process_group

    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank),
                       "LOCAL_RANK": str(rank), "WORLD_SIZE": "2"})
    place = placement("cpu")
    start_process_group(place)
    outcome = "agreed"
    try:
        agree_on_resume(place, 300)  # both at step 300: fine
        agree_on_resume(place, 300 if rank == 0 else 0)  # rank 1 found no checkpoint
    except TrainingSetupError as exc:
        outcome = str(exc)
    Path(out, f"rank{rank}.txt").write_text(outcome)
    torch.distributed.destroy_process_group()


def test_ranks_that_would_resume_from_different_steps_stop(tmp_path: Path) -> None:
    """A rank on a node that cannot see rank 0's OUT/last would start afresh while the others
    resume: every rank refuses, naming the cause."""
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mp.spawn(_resume_rank, args=(port, str(tmp_path)), nprocs=2, join=True)
    for rank in (0, 1):
        assert (tmp_path / f"rank{rank}.txt").read_text() == (
            "the ranks would resume from different steps [300, 0] (rank order): every rank reads OUT/last, so OUT "
            "must be on storage that every node sees")
