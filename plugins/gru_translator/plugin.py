"""The ``gru-seq2seq`` plugin's hooks (its entry point) and its shipped models."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rnnserve.plugin_api import BackendFactory, Command, ModelSpec, hookimpl

PLUGIN_API_VERSION = "1.1"  # int8_copy

BACKEND = "gru-seq2seq"
SHIPPED_MODEL = "en-de-gru"
SHIPPED_DIR = Path(__file__).resolve().parent / "models" / SHIPPED_MODEL


def _create_backend(spec: ModelSpec, context) -> object:
    from .backend import create_backend  # torch-heavy imports only when a model is loaded

    return create_backend(spec, context)


@hookimpl
def register_backends(register: Callable[[str, BackendFactory], None]) -> None:
    register(BACKEND, _create_backend)


@hookimpl
def register_models(register: Callable[[ModelSpec], None]) -> None:
    if all((SHIPPED_DIR / name).exists() for name in ("config.json", "model.safetensors", "sentencepiece.model")):
        register(ModelSpec(name=SHIPPED_MODEL, backend=BACKEND, path=str(SHIPPED_DIR)))


@hookimpl
def register_commands(register: Callable[[Command], None]) -> None:
    from .commands import COMMANDS

    for command in COMMANDS:
        register(command)
