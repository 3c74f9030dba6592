"""Checkpoint directories, written and read without pickle (safetensors, JSON and the SentencePiece model).

A model directory (what the backend serves) holds:

* ``config.json``: ``{"format": FORMAT, "model": Seq2SeqConfig fields, "decoding": default
  TranslateOptions fields, "training": {...}, "storage_dtype": ...}`` (``training`` is
  informational: data manifest, hyper-parameters, step, dev BLEU, command, hardware);
* ``model.safetensors``: the ``Seq2Seq`` state dict with tied tensors stored once (the
  first name of each shared parameter), float32 or float16 storage (always computed in
  float32 after loading);
* ``sentencepiece.model``: the joint subword model;
* after evaluation, ``model_card.json`` (``rnnserve.plugin_api.ModelCard``) and ``MODEL_CARD.md``.

A training run's ``last/`` adds ``optimizer.safetensors`` (optimizer tensors + RNG states)
and ``trainer_state.json`` (param groups, progress, history), written by
``rnnserve.training.save_training_state``. Directories are written to a
temporary sibling and renamed into place, so a kill mid-save keeps the previous one.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from rnnserve.plugin_api import TranslateOptions
from rnnserve.training import read_checkpoint_config, write_whole

from .model import Seq2Seq, Seq2SeqConfig
from .subwords import MODEL_FILE, SubwordVocab

FORMAT = "rnnserve-gru-seq2seq/1"
#: The shipped defaults: beam 5, GNMT length penalty 1.0, up to 2x the source pieces, at most 256.
DEFAULT_DECODING = TranslateOptions(beam_size=5, n_best=1, length_penalty=1.0, max_length_ratio=2.0,
                                    max_length=256, return_attention=False)


class CheckpointError(RuntimeError):
    """A checkpoint directory is missing files or is not in this backend's format."""


def aliases(model: torch.nn.Module) -> dict[str, str]:
    """State-dict names that share a tensor with an earlier name (tied weights) → that earlier name."""
    first: dict[int, str] = {}
    out = {}
    for name, tensor in model.state_dict(keep_vars=True).items():
        key = id(tensor)
        if key in first:
            out[name] = first[key]
        else:
            first[key] = name
    return out


def write_model_files(directory: Path, model: Seq2Seq, vocab: SubwordVocab, training: dict | None = None,
                      dtype: torch.dtype = torch.float32, decoding: TranslateOptions = DEFAULT_DECODING) -> None:
    """Write config.json, model.safetensors and the SentencePiece model into an existing ``directory``."""
    config = {"format": FORMAT, "model": model.config.to_dict(), "decoding": asdict(decoding),
              "training": training or {}, "storage_dtype": str(dtype).removeprefix("torch.")}
    (directory / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    tied = aliases(model)
    tensors = {k: v.detach().to("cpu", dtype).contiguous() for k, v in model.state_dict().items() if k not in tied}
    save_file(tensors, str(directory / "model.safetensors"), metadata={"format": FORMAT, "tied": json.dumps(tied)})
    vocab.save(directory / MODEL_FILE)


def save_model(directory: Path, model: Seq2Seq, vocab: SubwordVocab, training: dict | None = None,
               dtype: torch.dtype = torch.float32) -> None:
    """Write a complete model directory, replacing ``directory`` if it exists."""
    write_whole(directory, lambda tmp: write_model_files(tmp, model, vocab, training, dtype))


def load_model(directory: Path) -> tuple[Seq2Seq, SubwordVocab, dict]:
    """Rebuild the model (float32, eval mode) and its vocabulary; also returns config.json."""
    directory = Path(directory)
    config = read_checkpoint_config(directory, FORMAT, "gru-seq2seq", ("model.safetensors", MODEL_FILE),
                                    error=CheckpointError)
    model = Seq2Seq(Seq2SeqConfig.from_dict(config["model"]))
    tensors = {k: v.float() for k, v in load_file(str(directory / "model.safetensors")).items()}
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    untied = sorted(set(missing) - set(aliases(model)))
    if untied or unexpected:
        raise CheckpointError(f"{directory}: weights do not match the config (missing {untied}, "
                              f"unexpected {sorted(unexpected)})")
    vocab = SubwordVocab.load(directory / MODEL_FILE)
    if vocab.size != model.config.vocab_size:
        raise CheckpointError(f"{directory}: {MODEL_FILE} has {vocab.size} pieces, the model {model.config.vocab_size}")
    return model.eval(), vocab, config


def decoding_options(config: dict) -> TranslateOptions:
    """The default TranslateOptions recorded in config.json."""
    return TranslateOptions(**{**asdict(DEFAULT_DECODING), **config.get("decoding", {})})
