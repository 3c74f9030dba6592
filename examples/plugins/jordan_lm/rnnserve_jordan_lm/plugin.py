"""The jordan-lm plugin's hooks: a backend, the model it ships, and its training command."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rnnserve.plugin_api import BackendFactory, Command, LoadContext, ModelSpec, hookimpl

#: The plugin API this plugin was written against (rnnserve refuses to load it on a host
#: whose API it does not match).
PLUGIN_API_VERSION = "1.0"
BACKEND = "jordan-lm"
MODEL = "austen-jordan-lm"
MODEL_DIR = Path(__file__).resolve().parent / "models" / MODEL


def _create_backend(spec: ModelSpec, context: LoadContext) -> object:
    from .backend import create_backend  # torch loads when a model does, not when the CLI starts

    return create_backend(spec, context)


@hookimpl
def register_backends(register: Callable[[str, BackendFactory], None]) -> None:
    register(BACKEND, _create_backend)


@hookimpl
def register_models(register: Callable[[ModelSpec], None]) -> None:
    if (MODEL_DIR / "model.safetensors").exists():  # shipped once trained; model_card.json is read from there
        register(ModelSpec(name=MODEL, backend=BACKEND, path=str(MODEL_DIR)))


@hookimpl
def register_commands(register: Callable[[Command], None]) -> None:
    from .train import COMMAND

    register(COMMAND)
