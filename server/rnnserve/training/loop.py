"""The training skeleton: set-up, then a loop of optimizer steps with evaluations and checkpoints.

A trainer subclasses :class:`TrainingRun` and fills in what is its own: ``set_up`` (data and
model), ``make_optimizer``, ``train_step`` (the forward and backward passes of one optimizer
step), ``evaluate``, ``write_model`` (its checkpoint files) and a few small descriptions. The
skeleton does the rest the same way for every trainer:

- **set-up**: the device and, under ``torchrun``, the process group; the seed; the directory to
  resume from (``OUT/last``; ``OUT/last.old`` after a kill between the renames of a save; a
  committed snapshot, warm); the saved progress; every rank agreeing on the step; DDP;
- **step**: the learning rate of the step (linear warm-up, then cosine decay: :func:`lr_at`),
  the trainer's forward and backward passes, gradient-norm clipping (the guard against
  exploding gradients through time), the optimizer step; a log line every ``log_every``;
- **evaluation** every ``eval_every`` steps on rank 0: ``OUT/best`` when the score improved, the
  history plotted into ``loss.png``;
- **checkpoint** every ``checkpoint_every`` steps (and after each evaluation) on rank 0:
  ``OUT/last`` (model, optimizer, RNG and ``trainer_state.json``), ``OUT/history.json`` and the
  snapshot; ``time_limit_min`` stops every rank at the same step, after a checkpoint.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import distributed as dist
from torch import nn

from .helpers import (
    Placement,
    agree_on_resume,
    command_line,
    fresh_tmp,
    hardware,
    placement,
    replace_dir,
    resume_source,
    resume_state,
    save_snapshot,
    save_training_state,
    start_process_group,
    time_is_up,
    warmup_cosine_lr,
)


@dataclass
class LoopConfig:
    """What every training loop has; a trainer's ``TrainConfig`` adds its own fields (and may
    change these defaults). Each field is a command-line flag and a key of ``train.json``."""

    lr: float = 2e-3
    min_lr: float = 1e-4
    warmup_steps: int = 100
    max_steps: int = 2000
    #: Gradients are scaled down so that their global L2 norm is at most this.
    grad_clip: float = 1.0
    eval_every: int = 200
    checkpoint_every: int = 50
    log_every: int = 10
    seed: int = 1234
    #: torch intra-op threads per process (0: torch's default).
    threads: int = 0
    #: Stop (resumably, after a checkpoint) once this process has trained this many minutes (0: no limit).
    time_limit_min: float = 0.0
    #: "auto" (a GPU when there is one: cuda:LOCAL_RANK, nccl between processes), "cpu" or "cuda".
    device: str = "auto"


def lr_at(step: int, config: LoopConfig) -> float:
    """Learning rate of optimizer step ``step`` (0-based): linear warm-up, then cosine to ``min_lr``."""
    return warmup_cosine_lr(step, lr=config.lr, min_lr=config.min_lr, warmup_steps=config.warmup_steps,
                            max_steps=config.max_steps)


def optimizer_step(optimizer: torch.optim.Optimizer, parameters: list[nn.Parameter], lr: float, grad_clip: float,
                   backward: Callable[[], Any]) -> tuple[Any, float]:
    """One optimizer step at learning rate ``lr``: zero the gradients, ``backward()`` (the forward
    and backward passes; its result is returned), clip the gradients' global norm to
    ``grad_clip``, step. Returns ``backward()``'s result and the norm before clipping."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.zero_grad(set_to_none=True)
    result = backward()
    grad_norm = nn.utils.clip_grad_norm_(parameters, grad_clip)
    optimizer.step()
    return result, float(grad_norm)


def save_plot(draw: Callable[[Any], None], paths: list[Path]) -> None:
    """Draw a 7 x 4 inch figure (``draw(axes)``) into each of ``paths`` whose directory exists."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    draw(ax)
    fig.tight_layout()
    for path in paths:
        if path.parent.is_dir():  # OUT/best exists once an evaluation has improved
            fig.savefig(path)
    plt.close(fig)


def curve(rows: list[dict], key: str) -> tuple[list[int], list[float]]:
    """The steps and the ``key`` values of history rows, to plot."""
    return [r["step"] for r in rows], [r[key] for r in rows]


@dataclass
class StepReport:
    """What one optimizer step did: its mean ``loss`` and the units it read on all ranks
    (``{"chars": 8192}``), whose rates per second the log records."""

    loss: float
    counts: dict[str, int]


@dataclass
class Evaluation:
    """One evaluation: the ``score`` that picks ``OUT/best``, its ``history`` row, what
    ``best/config.json`` records when it is the best (``best_info``) and the printed ``summary``."""

    score: float
    record: dict
    best_info: dict
    summary: str


class _Window:
    """Wall time and units read since the last log line (or evaluation), for throughput."""

    def __init__(self) -> None:
        self.restart()

    def restart(self) -> None:
        self.start, self.counts = time.perf_counter(), {}

    def add(self, counts: dict[str, int]) -> None:
        for key, value in counts.items():
            self.counts[key] = self.counts.get(key, 0) + value

    def close(self) -> tuple[float, dict[str, float]]:
        """The window's seconds and its rates per second; the next window starts now."""
        seconds = time.perf_counter() - self.start
        rates = {key: value / seconds for key, value in self.counts.items()}
        self.restart()
        return seconds, rates


class TrainingRun:
    """One training run into ``out``, as one rank of ``WORLD_SIZE`` when launched by torchrun.

    The class attributes name the trainer (``NAME`` prefixes its messages, ``MODULE`` is recorded
    in the command line), its evaluation (``EVAL_KEY``: its history list; ``BEST_KEY``: the best
    score's key in ``trainer_state.json``, starting at ``INITIAL_BEST``; ``HIGHER_IS_BETTER``)
    and whether ``elapsed_s`` counts the evaluations' time (``ELAPSED_INCLUDES_EVALUATION``; else
    it adds up the training between them). After :meth:`run`: ``model``, ``step``, ``best``,
    ``elapsed`` (seconds over all resumed runs) and ``history``; ``resume_dir`` is where it
    resumed from (None: a fresh start).
    """

    NAME: ClassVar[str]
    MODULE: ClassVar[str]
    EVAL_KEY: ClassVar[str] = "val"
    BEST_KEY: ClassVar[str] = "best_val"
    INITIAL_BEST: ClassVar[float] = float("inf")
    HIGHER_IS_BETTER: ClassVar[bool] = False
    ELAPSED_INCLUDES_EVALUATION: ClassVar[bool] = True

    model: nn.Module
    vocab: Any

    def __init__(self, data_dir: Path, out: Path, config: LoopConfig, *, quiet: bool = False,
                 snapshot: Path | None = None) -> None:
        self.data_dir, self.out, self.config, self.quiet, self.snapshot = data_dir, out, config, quiet, snapshot
        self.step, self.best, self.elapsed = 0, self.INITIAL_BEST, 0.0
        self.history: dict[str, list[dict]] = {"train": [], self.EVAL_KEY: []}
        self.running: float | None = None  # moving average of the training loss (not saved)
        self.place: Placement = placement(config.device)

    # -- what a trainer fills in ------------------------------------------------------------

    def set_up(self, resume_dir: Path | None) -> None:
        """Read the data; set ``model`` (loaded from ``resume_dir`` when given, on ``place.device``)
        and ``vocab``."""
        raise NotImplementedError

    def make_optimizer(self) -> torch.optim.Optimizer:
        raise NotImplementedError

    def restore(self, state: dict | None) -> None:
        """Set the data position from a resumed run's ``trainer_state.json`` (None: the start)."""

    def describe(self) -> str:
        """The data and batches, for the line printed at the start."""
        raise NotImplementedError

    def train_step(self) -> StepReport:
        """The forward and backward passes of optimizer step ``step`` (gradients are zeroed
        before, clipped and applied after)."""
        raise NotImplementedError

    def log_fields(self, rates: dict[str, float]) -> tuple[dict, dict]:
        """A log line's own fields: the history row's (after step, loss, lr and grad_norm) and the
        progress bar's, from the rates per second of the units ``train_step`` counted."""
        raise NotImplementedError

    def evaluate(self) -> Evaluation:
        raise NotImplementedError

    def draw_history(self, ax: Any) -> None:
        """Plot ``history`` on the axes of ``loss.png``."""
        raise NotImplementedError

    def write_model(self, directory: Path, training: dict, dtype: torch.dtype) -> None:
        """Write the model files into the existing ``directory``; ``training`` goes into its config."""
        raise NotImplementedError

    def progress(self) -> dict:
        """The trainer's own fields of ``trainer_state.json`` (its data position)."""
        return {}

    def extra_info(self) -> dict:
        """The trainer's own fields of a checkpoint's ``training`` record."""
        return {}

    # -- the skeleton -------------------------------------------------------------------------

    @property
    def rank0(self) -> bool:
        return self.place.rank == 0

    def run(self) -> TrainingRun:
        """Set up (or resume), train to ``max_steps`` or the time limit, return ``self``."""
        self.start()
        self.loop()
        return self

    def start(self) -> None:
        """The process group, seed, data and model, optimizer, resumed progress and DDP."""
        config, place = self.config, self.place
        start_process_group(place)
        if config.threads:
            torch.set_num_threads(config.threads)
        torch.manual_seed(config.seed)
        self.resume_dir = resume_dir = resume_source(self.out, self.snapshot)
        self.set_up(resume_dir)
        self.optimizer = self.make_optimizer()
        state = None
        if resume_dir is not None:
            state = resume_state(resume_dir, self.optimizer)  # exact from last/, warm from a snapshot
            if self.rank0 and resume_dir == self.snapshot:
                print(f"[{self.NAME}] warm resume from {resume_dir} (no optimizer moments saved there)", flush=True)
            self.step, self.best = state["step"], state[self.BEST_KEY]
            self.elapsed, self.history = state["elapsed_s"], state["history"]
        agree_on_resume(place, self.step)  # before any rank can stop alone: the others would wait for it
        self.restore(state)
        if not self.rank0:  # dropout differs between ranks, and after a resume
            torch.manual_seed(config.seed + 1000 * self.place.rank + self.step)
        self.net: nn.Module = nn.parallel.DistributedDataParallel(self.model, device_ids=place.ddp_device_ids) \
            if place.distributed else self.model
        manifest = self.data_dir / "manifest.json"
        self.training_info = {"train": asdict(config),
                              "data": json.loads(manifest.read_text()) if manifest.exists() else {},
                              "command": command_line(self.MODULE), "hardware": hardware(), **self.extra_info()}
        if self.rank0:
            self.out.mkdir(parents=True, exist_ok=True)
            parameters = sum(p.numel() for p in self.model.parameters())
            print(f"[{self.NAME}] {'resuming at step ' + str(self.step) if resume_dir else 'starting'}: "
                  f"{getattr(self.model, 'config', '')} ({parameters:,} parameters), {self.describe()}", flush=True)

    def loop(self) -> None:
        """Optimizer steps until ``max_steps`` or the time limit; evaluations and checkpoints between."""
        from tqdm import tqdm

        config, place = self.config, self.place
        bar = tqdm(total=config.max_steps, initial=self.step, disable=self.quiet or not self.rank0, unit="step",
                   mininterval=1.0 if sys.stderr.isatty() else 30.0, dynamic_ncols=True)
        self.window = _Window()
        run_start, elapsed_before = self.window.start, self.elapsed
        stop = False
        while self.step < config.max_steps and not stop:
            self.net.train()
            report, grad_norm = optimizer_step(self.optimizer, list(self.model.parameters()),
                                               lr_at(self.step, config), config.grad_clip, self.train_step)
            self.step += 1
            self.running = report.loss if self.running is None else 0.95 * self.running + 0.05 * report.loss
            self.window.add(report.counts)
            if self.step % config.log_every == 0 or self.step == config.max_steps:
                self.log(bar, grad_norm)
            bar.update(1)
            stop = time_is_up(run_start, config.time_limit_min, place)
            evaluating = self.step % config.eval_every == 0 or self.step == config.max_steps or stop
            checkpointing = evaluating or self.step % config.checkpoint_every == 0
            if self.ELAPSED_INCLUDES_EVALUATION:
                self.elapsed = elapsed_before + time.perf_counter() - run_start
            if evaluating and self.rank0:
                self.evaluate_and_keep_best(bar)
            if checkpointing and self.rank0:
                self.save_last()
            if checkpointing and place.distributed:
                dist.barrier()
        bar.close()
        if place.distributed:
            dist.barrier()

    def log(self, bar: Any, grad_norm: float) -> None:
        """Append a row to ``history["train"]`` and show the loss and throughput on the bar."""
        seconds, rates = self.window.close()
        if not self.ELAPSED_INCLUDES_EVALUATION:
            self.elapsed += seconds
        lr = lr_at(self.step - 1, self.config)
        row, postfix = self.log_fields(rates)
        self.history["train"].append({"step": self.step, "loss": round(self.running, 5), "lr": lr,
                                      "grad_norm": round(grad_norm, 4), **row})
        bar.set_postfix(loss=f"{self.running:.3f}", **postfix, lr=f"{lr:.2e}", refresh=False)

    def evaluate_and_keep_best(self, bar: Any) -> None:
        """Evaluate, keep ``OUT/best`` when the score improved, redraw ``loss.png``, print a line."""
        result = self.evaluate()
        self.history[self.EVAL_KEY].append(result.record)
        improved = result.score > self.best if self.HIGHER_IS_BETTER else result.score < self.best
        if improved:
            self.best = result.score
            self.save_model(self.out / "best", {**self.training_info, "step": self.step, **result.best_info})
        save_plot(self.draw_history, [self.out / "loss.png", self.out / "best" / "loss.png"])
        bar.write(f"[{self.NAME}] step {self.step} {result.summary}{' (best)' if improved else ''}, "
                  f"{self.elapsed / 60:.1f} min", file=sys.stdout)
        sys.stdout.flush()
        self.window.restart()  # evaluation is not training throughput

    def save_model(self, directory: Path, training: dict, dtype: torch.dtype = torch.float32) -> None:
        """Write a complete model directory, replacing ``directory`` only once it is written."""
        tmp = fresh_tmp(directory)
        self.write_model(tmp, training, dtype)
        replace_dir(tmp, directory)

    def save_last(self) -> None:
        """``OUT/last`` (model, optimizer, RNG, progress: an exact resume), ``OUT/history.json``, and
        the snapshot (float16 weights and the progress: a warm resume elsewhere)."""
        state = {"step": self.step, **self.progress(), self.BEST_KEY: self.best, "elapsed_s": self.elapsed,
                 "history": self.history, "train": asdict(self.config)}
        training = {**self.training_info, "step": self.step}
        tmp = fresh_tmp(self.out / "last")
        self.write_model(tmp, training, torch.float32)
        save_training_state(tmp, self.optimizer, state)
        replace_dir(tmp, self.out / "last")
        (self.out / "history.json").write_text(json.dumps(self.history) + "\n")
        if self.snapshot is not None:
            save_snapshot(self.snapshot, lambda directory: self.write_model(directory, training, torch.float16), state)
