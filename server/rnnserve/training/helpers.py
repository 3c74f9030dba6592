"""The pieces every recurrent trainer here needs the same way.

Where a process trains (its device, and under torchrun its rank and process-group backend),
the learning-rate schedule, replacing a checkpoint directory without leaving a half-written
one, the optimizer and RNG state a killed run resumes from (safetensors + JSON, no pickle)
and the small snapshot of it kept in the repository, a time limit all ranks stop at
together, and how a run describes the command and hardware that produced it (for model
cards). :mod:`rnnserve.training.loop` puts them together into one training loop.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shlex
import shutil
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import timedelta
from pathlib import Path
from typing import Self

import torch
from safetensors.torch import load_file, save_file
from torch import distributed as dist

from rnnserve.host.precision import cpu_model

#: Values of a trainer's ``device`` option.
DEVICES = ("auto", "cpu", "cuda")


class TrainingSetupError(ValueError):
    """A training run cannot start as asked: an option out of range, a GPU that is not there,
    too little data for the batches. Training commands print it as one line, not a traceback."""


@dataclass(frozen=True)
class Placement:
    """Where one training process runs.

    ``rank``/``world`` come from torchrun's ``RANK``/``WORLD_SIZE`` (0/1 when run directly);
    ``device`` is ``cuda:LOCAL_RANK`` on a GPU machine (one GPU per process), else the CPU;
    ``backend`` is the process group's: nccl between GPUs, gloo between CPU processes,
    None for a single process.
    """

    device: torch.device
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def ddp_device_ids(self) -> list[int] | None:
        """``DistributedDataParallel(device_ids=...)``: this process's GPU, None on the CPU."""
        return [self.device.index] if self.device.type == "cuda" else None


def placement(device: str = "auto", env: Mapping[str, str] | None = None, cuda_devices: int | None = None) -> Placement:
    """The placement of this process: ``device`` "auto" (a GPU when there is one), "cpu" or
    "cuda"; ``env`` (default ``os.environ``) and ``cuda_devices`` (default
    ``torch.cuda.device_count()``) are parameters so the choice can be tested anywhere."""
    if device not in DEVICES:
        raise TrainingSetupError(f"device must be one of {DEVICES}, got {device!r}")
    env = os.environ if env is None else env
    gpus = torch.cuda.device_count() if cuda_devices is None else cuda_devices
    world, rank, local_rank = (int(env.get(k, d)) for k, d in (("WORLD_SIZE", "1"), ("RANK", "0"),
                                                                  ("LOCAL_RANK", "0")))
    use_cuda = device == "cuda" or (device == "auto" and gpus > 0)
    if use_cuda and local_rank >= gpus:
        raise TrainingSetupError(f"device {device!r}: process LOCAL_RANK={local_rank} needs GPU {local_rank}, "
                                 f"but {gpus} GPU(s) are visible")
    where = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    backend = None if world == 1 else ("nccl" if use_cuda else "gloo")
    return Placement(where, rank, world, local_rank, backend)


#: How long a collective (a barrier, a broadcast) waits for the other ranks: rank 0 evaluates
#: and checkpoints alone while they wait, which may take far longer than NCCL's 10-minute default.
PROCESS_GROUP_TIMEOUT = timedelta(hours=1)


def start_process_group(place: Placement) -> None:
    """Join torchrun's process group (nccl or gloo) unless this process runs alone or already joined."""
    if place.backend is None or dist.is_initialized():
        return
    if place.device.type == "cuda":
        torch.cuda.set_device(place.device)
    dist.init_process_group(place.backend, timeout=PROCESS_GROUP_TIMEOUT)


def agree_on_resume(place: Placement, step: int) -> None:
    """Under DDP, check that every rank resumes from the same step (0: a fresh start).

    Each rank reads ``OUT/last`` itself (the optimizer state is not sent between ranks), so
    ``OUT`` must be on storage that every node sees; a rank that found no checkpoint, or
    another one, would train from another state and the replicas would drift apart.
    """
    if not place.distributed:
        return
    steps: list[object] = [None] * place.world
    dist.all_gather_object(steps, step)
    if len(set(steps)) > 1:
        raise TrainingSetupError(f"the ranks would resume from different steps {steps} (rank order): every rank "
                                 "reads OUT/last, so OUT must be on storage that every node sees")


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
        per_node = int(os.environ.get("LOCAL_WORLD_SIZE", world))
        nodes = [f"--nnodes={world // per_node}"] if per_node < world else []
        launcher = ["torchrun", *nodes, f"--nproc-per-node={per_node}"]
        program = [*launcher, "--no-python", "rnnserve"] if cli else [*launcher, "-m", module]
    else:
        program = ["rnnserve"] if cli else ["python", "-m", module]
    return shlex.join([*program, *sys.argv[1:]])


def hardware() -> str:
    """CPU model (with its family and model numbers), cores, torch threads, processes and torch
    version, for a model card."""
    cpu = cpu_model()
    if cpu == "unknown":
        cpu = platform.processor() or platform.machine()
    gpus = ""
    if torch.cuda.is_available():
        gpus = f", {torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}"
    return (f"{os.cpu_count()} CPU cores ({cpu}){gpus}, {torch.get_num_threads()} torch threads per process, "
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


class StoredConfig:
    """Base of a model's config dataclass, stored as the ``"model"`` section of a checkpoint's
    ``config.json``: :meth:`to_dict` writes it; :meth:`from_dict` reads it back and refuses keys
    the class does not have (a checkpoint of another model or a newer version)."""

    def to_dict(self) -> dict:
        return asdict(self)  # type: ignore[call-overload]  (subclasses are dataclasses)

    @classmethod
    def from_dict(cls, raw: dict) -> Self:
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"unknown model config key(s) {unknown}; valid: {sorted(known)}")
        return cls(**raw)


def write_whole(directory: Path, write: Callable[[Path], None]) -> None:
    """Write ``directory`` whole: ``write(tmp)`` fills a fresh sibling (:func:`fresh_tmp`) that then
    replaces it (:func:`replace_dir`), so a kill mid-write leaves the previous copy intact."""
    tmp = fresh_tmp(directory)
    write(tmp)
    replace_dir(tmp, directory)


def read_checkpoint_config(directory: Path, fmt: str, kind: str, files: Sequence[str] = (),
                           error: Callable[[str], Exception] = ValueError) -> dict:
    """A model directory's ``config.json``, checked: it is there, its ``format`` is ``fmt``, and
    ``files`` stand beside it; a failure raises ``error(message)`` (``kind`` names the backend)."""
    path = directory / "config.json"
    if not path.exists():
        raise error(f"{directory} is not a {kind} model directory (no config.json)")
    config = json.loads(path.read_text())
    if config.get("format") != fmt:
        raise error(f"{path}: format {config.get('format')!r}, expected {fmt!r}")
    for name in files:
        if not (directory / name).exists():
            raise error(f"{directory} lacks {name}")
    return config


#: The optimizer's tensors and the RNG states in a checkpoint directory (:func:`save_training_state`).
OPTIMIZER_FILE = "optimizer.safetensors"
#: The trainer's progress (``step``, ``history``, ...) in a checkpoint or snapshot directory.
TRAINER_STATE_FILE = "trainer_state.json"


def save_training_state(directory: Path, optimizer: torch.optim.Optimizer, state: dict) -> None:
    """Write ``optimizer.safetensors`` (every optimizer state tensor, the torch RNG and, when this
    process has used its GPU, the GPU's RNG) and ``trainer_state.json`` (``state`` plus the param
    groups) into ``directory``."""
    opt = optimizer.state_dict()
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_initialized():  # dropout masks on a GPU come from its own generator
        tensors["rng.cuda"] = torch.cuda.get_rng_state()
    for index, param_state in opt["state"].items():
        for name, value in param_state.items():
            tensors[f"state.{index}.{name}"] = torch.as_tensor(value).detach().cpu().contiguous()
    save_file(tensors, str(directory / OPTIMIZER_FILE))
    (directory / TRAINER_STATE_FILE).write_text(
        json.dumps({**state, "param_groups": opt["param_groups"]}, indent=1) + "\n")


def load_training_state(directory: Path, optimizer: torch.optim.Optimizer) -> dict:
    """Restore the optimizer (its tensors follow its parameters' device) and the RNGs from
    ``directory``; returns the saved trainer state. A run saved on a GPU resumes on a CPU (the
    GPU's RNG is then not needed) and vice versa (the GPU's generator keeps its seed)."""
    tensors = load_file(str(directory / OPTIMIZER_FILE))
    state = json.loads((directory / TRAINER_STATE_FILE).read_text())
    per_param: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("state."):
            _, index, name = key.split(".", 2)
            per_param.setdefault(int(index), {})[name] = value
    groups = [{k: tuple(v) if k == "betas" else v for k, v in group.items()}  # JSON turned tuples into lists
              for group in state.pop("param_groups")]
    optimizer.load_state_dict({"state": per_param, "param_groups": groups})
    torch.set_rng_state(tensors["rng.torch"])
    if "rng.cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda"])
    return state


def resume_source(out: Path, snapshot: Path | None = None) -> Path | None:
    """The directory a run into ``out`` resumes from: ``out/last``; ``out/last.old`` when a kill came
    between the two renames of a save; else ``snapshot`` (a small copy of ``last`` kept in the
    repository, see :func:`save_snapshot`) when it holds a run; None: start afresh."""
    for directory in (out / "last", out / "last.old", snapshot):
        if directory is not None and (directory / TRAINER_STATE_FILE).exists():
            return directory
    return None


def resume_state(directory: Path, optimizer: torch.optim.Optimizer) -> dict:
    """The trainer state saved in ``directory``, restoring the optimizer and RNGs when it has them
    (a ``last`` checkpoint: exact resume); a snapshot has none (warm resume: same weights and data
    position, Adam's moments start again)."""
    if (directory / OPTIMIZER_FILE).exists():
        return load_training_state(directory, optimizer)
    state = json.loads((directory / TRAINER_STATE_FILE).read_text())
    state.pop("param_groups", None)
    return state


def save_snapshot(snapshot: Path, write_weights: Callable[[Path], None], state: dict) -> None:
    """Replace ``snapshot`` with the model files ``write_weights(directory)`` writes (float16 keeps it
    small enough to commit) and ``state`` as ``trainer_state.json``: what a run on another machine
    resumes from (:func:`resume_source`) when only the repository survived."""
    def write(directory: Path) -> None:
        write_weights(directory)
        (directory / TRAINER_STATE_FILE).write_text(json.dumps(state, indent=1) + "\n")

    write_whole(snapshot, write)


def time_is_up(started: float, limit_min: float, place: Placement) -> bool:
    """True once ``limit_min`` minutes (0: no limit) have passed since ``started`` (``time.perf_counter``)
    on rank 0; every rank gets rank 0's answer, so all stop at the same step."""
    if not limit_min:
        return False
    flag = torch.tensor([float(time.perf_counter() - started > 60 * limit_min)], device=place.device)
    if place.distributed:
        dist.broadcast(flag, src=0)
    return bool(flag.item())
