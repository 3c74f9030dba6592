"""Writing-assistant backend plugin: word completion, next words and phrases while a person types.

Built on a language model the host already serves (plugins building on plugins).
"""

from __future__ import annotations

from collections.abc import Callable

from rnnserve import hookimpl
from rnnserve.backends import BackendFactory
from rnnserve.config import ModelCard, ModelSpec
from rnnserve_plugins.writing_assistant.backend import create_backend

CARD = ModelCard(
    description="Word completion, next-word and phrase suggestions from the austen-char-lstm-int8 character "
                "language model: beam search over characters, casing kept, per-session recurrent state.",
    data="No weights of its own; see the austen-char-lstm model card.",
    license="MIT",
    limitations="Suggestions reflect Jane Austen's vocabulary and style.",
)


@hookimpl
def register_backends(register: Callable[[str, BackendFactory], None]) -> None:
    register("writing-assistant", create_backend)


@hookimpl
def register_models(register: Callable[[ModelSpec], None]) -> None:
    register(ModelSpec(name="writing-assistant", backend="writing-assistant",
                       options={"language_model": "austen-char-lstm-int8"}, card=CARD))
