"""The jordan-lm plugin's hooks: a backend, the model it ships, and its training command."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rnnserve.plugin_api import BackendFactory, Command, ModelSpec, hookimpl, lazy_backend

#: The plugin API this plugin was written against (rnnserve refuses to load it on a host
#: whose API it does not match).
PLUGIN_API_VERSION = "1.2"  # lazy_backend
BACKEND = "jordan-lm"
MODEL = "austen-jordan-lm"
MODEL_DIR = Path(__file__).resolve().parent / "models" / MODEL


@hookimpl
def register_backends(register: Callable[[str, BackendFactory], None]) -> None:
    register(BACKEND, lazy_backend(f"{__package__}.backend:create_backend"))


@hookimpl
def register_models(register: Callable[[ModelSpec], None]) -> None:
    if (MODEL_DIR / "model.safetensors").exists():  # shipped once trained; model_card.json is read from there
        register(ModelSpec(name=MODEL, backend=BACKEND, path=str(MODEL_DIR)))


@hookimpl
def register_commands(register: Callable[[Command], None]) -> None:
    from .train import COMMAND

    register(COMMAND)
