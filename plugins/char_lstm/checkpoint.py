"""Checkpoint directories, written and read without pickle (safetensors + JSON only).

A model directory (what the backend serves) holds:

* ``config.json``: ``{"format": FORMAT, "model": CharRNNConfig fields, "training": {...}}``
  (the training section is informational: data manifest, hyper-parameters, step, losses);
* ``model.safetensors``: the ``CharRNN`` state dict, float32 or float16 storage (loading
  always computes in float32);
* ``vocab.json``: the :class:`~.vocab.CharVocab`;
* after evaluation, ``MODEL_CARD.md`` and ``model_card.json``.

A training directory's ``last/`` checkpoint adds ``optimizer.safetensors`` (every
optimizer state tensor plus the RNG states) and ``trainer_state.json`` (param groups,
step, epoch, history), written by ``rnnserve.training.save_training_state``, so a killed
run resumes without unpickling anything.
Directories are written to a temporary sibling and swapped in by rename, so a kill
mid-save leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from rnnserve.training import read_checkpoint_config, write_whole

from .model import CharRNN, CharRNNConfig
from .vocab import CharVocab

FORMAT = "rnnserve-char-lstm/1"


class CheckpointError(RuntimeError):
    """A checkpoint directory is missing files or is not in this backend's format."""


def write_model_files(directory: Path, model: CharRNN, vocab: CharVocab, training: dict | None = None,
                      dtype: torch.dtype = torch.float32) -> None:
    """Write config.json, model.safetensors and vocab.json into an existing ``directory``."""
    config = {"format": FORMAT, "model": model.config.to_dict(), "training": training or {},
              "storage_dtype": str(dtype).removeprefix("torch.")}
    (directory / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    tensors = {k: v.detach().to("cpu", dtype).contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, str(directory / "model.safetensors"), metadata={"format": FORMAT})
    (directory / "model.safetensors").chmod(0o644)  # safetensors creates it owner-only
    vocab.save(directory / "vocab.json")


def save_model(directory: Path, model: CharRNN, vocab: CharVocab, training: dict | None = None,
               dtype: torch.dtype = torch.float32) -> None:
    """Write a complete model directory, replacing ``directory`` if it exists."""
    write_whole(directory, lambda tmp: write_model_files(tmp, model, vocab, training, dtype))


def load_model(directory: Path) -> tuple[CharRNN, CharVocab, dict]:
    """Rebuild the model (float32, eval mode) and vocabulary; also returns config.json."""
    config = read_checkpoint_config(directory, FORMAT, "char-lstm", ("model.safetensors", "vocab.json"),
                                    error=CheckpointError)
    model = CharRNN(CharRNNConfig.from_dict(config["model"]))
    tensors = {k: v.float() for k, v in load_file(str(directory / "model.safetensors")).items()}
    model.load_state_dict(tensors, strict=True)
    vocab = CharVocab.load(directory / "vocab.json")
    if vocab.size != model.config.vocab_size:
        raise CheckpointError(f"{directory}: vocab.json has {vocab.size} ids, the model {model.config.vocab_size}")
    return model.eval(), vocab, config
