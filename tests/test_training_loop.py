"""rnnserve.training's skeleton with a toy trainer: what it writes, when it evaluates and keeps
the best, how it resumes (exactly from last/, warm from a snapshot), its step and its command."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from rnnserve.training import (
    Evaluation,
    LoopConfig,
    StepReport,
    TrainerCommand,
    TrainingRun,
    TrainingSetupError,
    curve,
    optimizer_step,
)


@dataclass
class ToyConfig(LoopConfig):
    batch: int = 4


@dataclass
class ToyModelConfig:
    vocab_size: int = 0
    width: int = 3


class ToyRun(TrainingRun):
    """Fit y = 2x with one weight; the evaluation score is the weight's distance from 2, or (for a
    higher-is-better trainer) its negative; its data position counts the batches read."""

    NAME, MODULE = "toy", "tests.test_training_loop"
    SCORES: ClassVar[list[float] | None] = None  # scripted evaluation scores, in order

    def set_up(self, resume_dir: Path | None) -> None:
        self.model = nn.Linear(1, 1, bias=False)
        if resume_dir is not None:
            self.model.load_state_dict(load_file(str(resume_dir / "model.safetensors")))
        self.vocab, self.batches_read = None, 0
        self.scores = list(self.SCORES or [])

    def make_optimizer(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.model.parameters(), lr=self.config.lr)

    def restore(self, state: dict | None) -> None:
        self.batches_read = state["batches_read"] if state else 0

    def progress(self) -> dict:
        return {"batches_read": self.batches_read}

    def describe(self) -> str:
        return "y = 2x"

    def train_step(self) -> StepReport:
        x = torch.randn(self.config.batch, 1)
        loss = (self.net(x) - 2 * x).square().mean()
        loss.backward()
        self.batches_read += 1
        return StepReport(loss.item(), {"pairs": self.config.batch})

    def log_fields(self, rates: dict[str, float]) -> tuple[dict, dict]:
        return {"pairs_per_s": rates["pairs"]}, {}

    def evaluate(self) -> Evaluation:
        score = self.scores.pop(0) if self.scores else abs(self.model.weight.item() - 2)
        return Evaluation(score, {"step": self.step, "loss": score}, {"score": score}, f"score {score:.3f}")

    def draw_history(self, ax: Any) -> None:
        ax.plot(*curve(self.history["train"], "loss"))

    def write_model(self, directory: Path, training: dict, dtype: torch.dtype) -> None:
        save_file({k: v.to(dtype).contiguous() for k, v in self.model.state_dict().items()},
                  str(directory / "model.safetensors"))
        (directory / "config.json").write_text(json.dumps({"training": training}))


class HigherIsBetterRun(ToyRun):
    EVAL_KEY, BEST_KEY, INITIAL_BEST, HIGHER_IS_BETTER = "dev", "best_score", -1.0, True


def toy_config(**changes: Any) -> ToyConfig:
    base = {"lr": 0.1, "min_lr": 0.01, "warmup_steps": 2, "max_steps": 12, "eval_every": 4, "checkpoint_every": 3,
            "log_every": 2, "seed": 5, "threads": 1, "device": "cpu"}
    return ToyConfig(**{**base, **changes})


def test_a_run_writes_last_best_history_and_plot_and_learns(tmp_path: Path) -> None:
    run = ToyRun(tmp_path, tmp_path / "out", toy_config()).run()
    assert run.step == 12 and run.history["train"][-1]["loss"] < run.history["train"][0]["loss"]
    assert [r["step"] for r in run.history["train"]] == [2, 4, 6, 8, 10, 12]
    assert [r["step"] for r in run.history["val"]] == [4, 8, 12]
    assert all(r["pairs_per_s"] > 0 and r["lr"] > 0 for r in run.history["train"])
    state = json.loads((tmp_path / "out" / "last" / "trainer_state.json").read_text())
    assert list(state) == ["step", "batches_read", "best_val", "elapsed_s", "history", "train", "param_groups"]
    assert state["step"] == 12 and state["batches_read"] == 12 and state["train"]["batch"] == 4
    best = json.loads((tmp_path / "out" / "best" / "config.json").read_text())["training"]
    assert best["score"] == run.best and "-m tests.test_training_loop" in best["command"]
    for name in ("loss.png", "best/loss.png", "history.json", "last/optimizer.safetensors"):
        assert (tmp_path / "out" / name).exists(), name


@pytest.mark.parametrize(("run_class", "scores", "best_step"), [(ToyRun, [0.5, 0.2, 0.3], 8),
                                                                (HigherIsBetterRun, [0.5, 0.2, 0.3], 4)])
def test_the_best_model_is_the_best_score_in_the_trainers_direction(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_class: type[ToyRun], scores: list[float],
        best_step: int) -> None:
    monkeypatch.setattr(run_class, "SCORES", scores)
    run = run_class(tmp_path, tmp_path / "out", toy_config()).run()
    assert run.best == (0.2 if run_class is ToyRun else 0.5)
    assert json.loads((tmp_path / "out" / "best" / "config.json").read_text())["training"]["step"] == best_step
    assert run_class.BEST_KEY in json.loads((tmp_path / "out" / "last" / "trainer_state.json").read_text())


class KilledRun(ToyRun):
    def train_step(self) -> StepReport:
        if self.step == 7:
            raise KeyboardInterrupt  # killed after the checkpoint of step 6
        return super().train_step()


def test_a_killed_run_resumes_exactly_and_a_snapshot_warm(tmp_path: Path) -> None:
    whole = ToyRun(tmp_path, tmp_path / "whole", toy_config()).run()
    with pytest.raises(KeyboardInterrupt):
        KilledRun(tmp_path, tmp_path / "parts", toy_config(), snapshot=tmp_path / "snap").run()
    resumed = ToyRun(tmp_path, tmp_path / "parts", toy_config()).run()
    assert resumed.batches_read == 12 and [r["step"] for r in resumed.history["val"]] == [4, 8, 12]
    assert torch.equal(resumed.model.weight, whole.model.weight)  # same RNG, optimizer and data position
    warm = ToyRun(tmp_path, tmp_path / "elsewhere", toy_config(max_steps=8), snapshot=tmp_path / "snap").run()
    assert warm.history["train"][0]["step"] == 2 and warm.step == 8 and warm.batches_read == 8
    assert not (tmp_path / "snap" / "optimizer.safetensors").exists()


def test_the_time_limit_stops_after_an_evaluation_and_a_checkpoint(tmp_path: Path) -> None:
    run = ToyRun(tmp_path, tmp_path / "out", toy_config(time_limit_min=1e-9)).run()
    assert run.step == 1 and [r["step"] for r in run.history["val"]] == [1]
    assert json.loads((tmp_path / "out" / "last" / "trainer_state.json").read_text())["step"] == 1


def test_optimizer_step_sets_the_rate_clips_and_returns_the_norm_before_clipping() -> None:
    weight = nn.Parameter(torch.zeros(2))
    optimizer = torch.optim.SGD([weight], lr=1.0)
    weight.grad = torch.ones(2)  # stale: zeroed before the backward pass

    def backward() -> str:
        (weight * torch.tensor([3.0, 4.0])).sum().backward()
        return "done"

    result, norm = optimizer_step(optimizer, [weight], 0.5, 1.0, backward)
    assert result == "done" and norm == pytest.approx(5.0)
    assert optimizer.param_groups[0]["lr"] == 0.5
    assert weight.detach().tolist() == pytest.approx([-0.3, -0.4])  # 0.5 x the gradient scaled to norm 1


def _command(started: list) -> TrainerCommand:
    def start(args: argparse.Namespace, model: dict, config: ToyConfig) -> None:
        if config.batch == 13:
            raise ValueError("unlucky batch")
        started.append((args, model, config))

    return TrainerCommand("tests.toy", "Train a toy.", ToyModelConfig, ToyConfig, start, data_help="toy data",
                          choices={"device": ("cpu",)}, errors=(ValueError,),
                          extra_flags={"--no-card": {"action": "store_true"}})


def test_a_trainer_command_parses_its_flags_over_its_config_file(tmp_path: Path) -> None:
    started: list = []
    config = tmp_path / "train.json"
    config.write_text(json.dumps({"model": {"width": 5}, "train": {"batch": 7, "max_steps": 9}}))
    code = _command(started).main(["--data", "d", "--out", "o", "--config", str(config), "--max-steps", "11",
                                   "--no-card"])
    ((args, model, train_config),) = started
    assert code == 0 and args.no_card and args.data == Path("d") and model == {"width": 5}
    assert (train_config.batch, train_config.max_steps, train_config.lr) == (7, 11, LoopConfig.lr)
    with pytest.raises(SystemExit):
        _command(started).main(["--data", "d", "--out", "o", "--vocab-size", "3"])  # from the data, not a flag


def test_a_trainer_command_prints_set_up_errors_in_one_line() -> None:
    def refuse(args: argparse.Namespace, model: dict, config: ToyConfig) -> None:
        raise TrainingSetupError("no GPU here")

    with pytest.raises(SystemExit, match=r"^error: unlucky batch$"):
        _command([]).main(["--data", "d", "--out", "o", "--batch", "13"])  # one of its errors
    refusing = TrainerCommand("tests.toy", "Train a toy.", ToyModelConfig, ToyConfig, refuse, data_help="toy")
    with pytest.raises(SystemExit, match=r"^error: no GPU here$"):
        refusing.main(["--data", "d", "--out", "o"])
