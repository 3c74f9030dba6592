"""GRU sequence-to-sequence translator backend (``gru-seq2seq``), a plugin of the ``rnnserve`` group.

Registers the ``gru-seq2seq`` backend factory, the shipped English→German model ``en-de-gru``
(when its checkpoint is present in ``models/``), and the commands ``data en-de``,
``train gru-seq2seq`` and ``eval gru-seq2seq``.

Modules: ``data`` and ``corpus`` (the parallel corpus), ``subwords`` (SentencePiece),
``document`` and ``protect`` (documents, protected spans), ``model`` (encoder, attention,
decoder), ``beam`` (greedy and batched beam search), ``train``, ``checkpoint``, ``backend``
(the :class:`rnnserve.plugin_api.Translator`), ``evaluate`` (sacreBLEU/chrF per domain,
decoding speed), ``card`` (the model card), ``commands``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rnnserve.plugin_api import BackendFactory, Command, ModelSpec, hookimpl

PLUGIN_API_VERSION = "1.0"

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
