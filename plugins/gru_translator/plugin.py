"""The ``gru-seq2seq`` plugin's hooks (its entry point) and its shipped models."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rnnserve.plugin_api import BackendFactory, Command, ModelSpec, hookimpl, lazy_backend

PLUGIN_API_VERSION = "1.2"  # lazy_backend

BACKEND = "gru-seq2seq"
SHIPPED_MODEL = "en-de-gru"
SHIPPED_DIR = Path(__file__).resolve().parent / "models" / SHIPPED_MODEL


@hookimpl
def register_backends(register: Callable[[str, BackendFactory], None]) -> None:
    register(BACKEND, lazy_backend(f"{__package__}.backend:create_backend"))


@hookimpl
def register_models(register: Callable[[ModelSpec], None]) -> None:
    if all((SHIPPED_DIR / name).exists() for name in ("config.json", "model.safetensors", "sentencepiece.model")):
        register(ModelSpec(name=SHIPPED_MODEL, backend=BACKEND, path=str(SHIPPED_DIR)))


@hookimpl
def register_commands(register: Callable[[Command], None]) -> None:
    from .commands import COMMANDS

    for command in COMMANDS:
        register(command)
