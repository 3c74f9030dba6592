"""Shared pieces of the scale-out tests: a tiny char-lstm checkpoint and a config serving it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from rnnserve_plugins.char_lstm.checkpoint import save_model
from rnnserve_plugins.char_lstm.model import CharRNN, CharRNNConfig
from rnnserve_plugins.char_lstm.vocab import CharVocab

TEXT = "It is a truth universally acknowledged, that a single man in possession of a good fortune. "
#: Only the plugins the tiny config needs (faster start, no shipped models).
PLUGINS = "char-lstm,writing-assistant"


def make_tiny_model(directory: Path) -> Path:
    """A tiny, randomly initialised (seeded) char-lstm model directory."""
    torch.manual_seed(0)
    vocab = CharVocab.build(TEXT)
    model = CharRNN(CharRNNConfig(vocab_size=vocab.size, embedding_dim=8, hidden_size=16, num_layers=1,
                                  dropout=0.0))
    save_model(directory, model.eval(), vocab)
    return directory


def tiny_config_text(model_dir: Path, *, assistant: bool = True, port: int = 0) -> str:
    text = (f'[server]\nport = {port}\ndefault_models = false\ngrace_seconds = 5\n\n'
            f'[[models]]\nname = "tiny"\nbackend = "char-lstm"\npath = "{model_dir}"\n')
    if assistant:
        text += ('\n[[models]]\nname = "tiny-assist"\nbackend = "writing-assistant"\n'
                 'options = { language_model = "tiny" }\n')
    return text


@pytest.fixture(scope="session")
def tiny_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("scaleout")
    config = root / "rnnserve.toml"
    config.write_text(tiny_config_text(make_tiny_model(root / "tiny")))
    return config


def server_env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1", "RNNSERVE_PLUGINS": PLUGINS}


def start_serve(args: list[str], timeout: float = 90) -> tuple[subprocess.Popen[str], list[str]]:
    """``rnnserve serve ARGS``; returns the process and its stdout lines up to the client-target line
    (``--workers``) or the first ``listening on`` line."""
    proc = subprocess.Popen([sys.executable, "-m", "rnnserve.cli", "serve", "--http-port", "0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=server_env())
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    workers = "--workers" in args
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            proc.kill()
            raise RuntimeError(f"rnnserve serve exited with {proc.wait()}: {lines}")
        lines.append(line.rstrip("\n"))
        if (workers and "client target" in line) or (not workers and re.search(r"listening on", line)):
            return proc, lines
    proc.kill()
    raise TimeoutError(f"rnnserve serve did not start: {lines}")
