"""Training for the trainers of rnnserve plugins (the built-in ones and any author's).

- :mod:`.loop`: the training skeleton, :class:`TrainingRun` (set-up, then optimizer steps
  with periodic evaluation and checkpoints; a trainer fills in its data, model, step and
  evaluation), its :class:`LoopConfig` and the learning-rate schedule :func:`lr_at`;
- :mod:`.options`: a trainer's command line (:class:`TrainerCommand`) and the flags made
  from config dataclasses;
- :mod:`.helpers`: the pieces under them (placement and the torchrun process group, resume
  and snapshots, checkpoint directories written whole and their ``config.json`` read back
  checked, the time limit, command line and hardware for model cards), also usable alone.
"""

from __future__ import annotations

from .helpers import (
    DEVICES,
    OPTIMIZER_FILE,
    PROCESS_GROUP_TIMEOUT,
    TRAINER_STATE_FILE,
    Placement,
    StoredConfig,
    TrainingSetupError,
    agree_on_resume,
    command_line,
    fresh_tmp,
    hardware,
    load_training_state,
    placement,
    read_checkpoint_config,
    replace_dir,
    resume_source,
    resume_state,
    save_snapshot,
    save_training_state,
    start_process_group,
    time_is_up,
    warmup_cosine_lr,
    write_whole,
)
from .loop import Evaluation, LoopConfig, StepReport, TrainingRun, curve, lr_at, optimizer_step, save_plot
from .options import TrainerCommand, add_config_flags, config_sections

__all__ = [
    "DEVICES", "OPTIMIZER_FILE", "PROCESS_GROUP_TIMEOUT", "TRAINER_STATE_FILE", "Evaluation", "LoopConfig",
    "Placement", "StepReport", "StoredConfig", "TrainerCommand", "TrainingRun", "TrainingSetupError",
    "add_config_flags",
    "agree_on_resume", "command_line", "config_sections", "curve", "fresh_tmp", "hardware", "load_training_state",
    "lr_at", "optimizer_step", "placement", "read_checkpoint_config", "replace_dir", "resume_source", "resume_state",
    "save_plot", "save_snapshot", "save_training_state", "start_process_group", "time_is_up",
    "warmup_cosine_lr", "write_whole",
]
