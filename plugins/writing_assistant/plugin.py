"""The ``writing-assistant`` plugin's hooks (its entry point) and its shipped models."""

from __future__ import annotations

from collections.abc import Callable

from rnnserve.plugin_api import BackendFactory, LoadContext, ModelCard, ModelSpec, hookimpl
from rnnserve_plugins.char_lstm.plugin import ENGLISH_DIR, ENGLISH_MODEL, SHIPPED_INT8_MODEL, is_shipped

PLUGIN_API_VERSION = "1.0"

BACKEND = "writing-assistant"
AUSTEN_ASSISTANT = "austen-writing-assistant"
HOW = "beam search over characters, casing kept, per-session recurrent state"


def card(language_model: str, text: str, limitations: str) -> ModelCard:
    """The card of an assistant on ``language_model``: it has no weights of its own."""
    base = language_model.removesuffix("-int8")
    return ModelCard(
        description=f"Word completion, next-word and phrase suggestions for {text} from the {language_model} "
                    f"character language model: {HOW}. Keystroke savings: benchmarks/README.md and the README's "
                    "writing-assistant section (`python -m benchmarks.assistant`).",
        data=f"No weights of its own; see the {base} model card.",
        license="MIT (code); the language model's card gives its weights' licence.",
        limitations=limitations,
    )


def _create_backend(spec: ModelSpec, context: LoadContext) -> object:
    from .backend import create_backend  # torch-heavy imports only when a model is loaded

    return create_backend(spec, context)


@hookimpl
def register_backends(register: Callable[[str, BackendFactory], None]) -> None:
    register(BACKEND, _create_backend)


@hookimpl
def register_models(register: Callable[[ModelSpec], None]) -> None:
    austen = card(SHIPPED_INT8_MODEL, "Jane Austen-style prose", "Suggestions reflect Jane Austen's vocabulary and "
                  "style (early-19th-century English); little help on modern text.")
    modern_lm = f"{ENGLISH_MODEL}-int8" if is_shipped(ENGLISH_DIR) else SHIPPED_INT8_MODEL
    modern = card(modern_lm, "modern English", "Suggestions reflect the English of software documentation, "
                  "manuals and interfaces; printable ASCII only; e-mail and fiction are further from its data.") \
        if modern_lm != SHIPPED_INT8_MODEL else austen
    register(ModelSpec(name=BACKEND, backend=BACKEND, options={"language_model": modern_lm}, card=modern))
    register(ModelSpec(name=AUSTEN_ASSISTANT, backend=BACKEND, options={"language_model": SHIPPED_INT8_MODEL},
                       card=austen))
