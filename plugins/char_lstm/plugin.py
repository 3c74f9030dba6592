"""The ``char-lstm`` plugin's hooks (its entry point) and its shipped models."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rnnserve.plugin_api import BackendFactory, Command, ModelSpec, hookimpl, lazy_backend

PLUGIN_API_VERSION = "1.2"  # lazy_backend

BACKEND = "char-lstm"
SHIPPED_MODEL = "austen-char-lstm"
#: The same checkpoint with int8 dynamic quantization: 2.5x faster than bfloat16 at the
#: writing assistant's small beam batches, which is what it is served for. (Dynamic
#: quantization scales activations per batch, so a seeded sample may change with its
#: batch neighbours: generation is better served by austen-char-lstm.)
SHIPPED_INT8_MODEL = f"{SHIPPED_MODEL}-int8"
SHIPPED_DIR = Path(__file__).resolve().parent / "models" / SHIPPED_MODEL
ENGLISH_MODEL = "english-char-lstm"
ENGLISH_DIR = SHIPPED_DIR.with_name(ENGLISH_MODEL)


def is_shipped(directory: Path) -> bool:
    """Whether a shipped checkpoint is present (a checkout without its weights serves no such model)."""
    return (directory / "config.json").exists() and (directory / "model.safetensors").exists()


@hookimpl
def register_backends(register: Callable[[str, BackendFactory], None]) -> None:
    register(BACKEND, lazy_backend(f"{__package__}.backend:create_backend"))


@hookimpl
def register_models(register: Callable[[ModelSpec], None]) -> None:
    for name, directory in ((SHIPPED_MODEL, SHIPPED_DIR), (ENGLISH_MODEL, ENGLISH_DIR)):
        if is_shipped(directory):
            register(ModelSpec(name=name, backend=BACKEND, path=str(directory), options={"dtype": "auto"}))
            register(ModelSpec(name=f"{name}-int8", backend=BACKEND, path=str(directory), options={"quantize": True}))


@hookimpl
def register_commands(register: Callable[[Command], None]) -> None:
    from .commands import COMMANDS

    for command in COMMANDS:
        register(command)
