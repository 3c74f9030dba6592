"""Helpers shared by backend trainers (the built-in plugins' and any author's).

Small pieces every recurrent trainer here needs the same way: the learning-rate schedule,
replacing a checkpoint directory without leaving a half-written one, and how a run describes
the command and hardware that produced it (for model cards).
"""

from __future__ import annotations

import math
import os
import platform
import shlex
import shutil
import sys
from pathlib import Path

import torch


def warmup_cosine_lr(step: int, *, lr: float, min_lr: float, warmup_steps: int, max_steps: int) -> float:
    """Learning rate of optimizer step ``step`` (0-based): linear warm-up, then cosine to ``min_lr``."""
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, max_steps - warmup_steps))
    return min_lr + 0.5 * (lr - min_lr) * (1.0 + math.cos(math.pi * progress))


def command_line(module: str) -> str:
    """The command that started this process, as a user would type it (``rnnserve ...``,
    ``python -m module ...``, or either under ``torchrun``)."""
    cli = Path(sys.argv[0]).name == "rnnserve"
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        launcher = ["torchrun", f"--nproc-per-node={world}"]
        program = [*launcher, "--no-python", "rnnserve"] if cli else [*launcher, "-m", module]
    else:
        program = ["rnnserve"] if cli else ["python", "-m", module]
    return shlex.join([*program, *sys.argv[1:]])


def hardware() -> str:
    """CPU model, cores, torch threads, processes and torch version, for a model card."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{os.cpu_count()} CPU cores ({cpu}), {torch.get_num_threads()} torch threads per process, "
            f"{int(os.environ.get('WORLD_SIZE', '1'))} process(es), torch {torch.__version__}")


def fresh_tmp(final: Path) -> Path:
    """An empty sibling directory ``final.tmp`` to write a checkpoint into before :func:`replace_dir`."""
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def replace_dir(tmp: Path, final: Path) -> None:
    """Move the finished ``tmp`` directory to ``final``, replacing it (the old copy is removed last)."""
    old = final.with_name(final.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)
