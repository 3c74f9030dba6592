"""The ``writing-assistant`` plugin's hooks (its entry point) and its shipped models."""

from __future__ import annotations

from collections.abc import Callable

from rnnserve.plugin_api import BackendFactory, ModelSpec, hookimpl, lazy_backend
from rnnserve_plugins.char_lstm.plugin import ENGLISH_DIR, ENGLISH_MODEL, SHIPPED_INT8_MODEL, is_shipped

from .card import AUSTEN_LIMITS, MODERN_LIMITS, card

PLUGIN_API_VERSION = "1.2"  # lazy_backend

BACKEND = "writing-assistant"
AUSTEN_ASSISTANT = "austen-writing-assistant"
#: Austen's vocabulary reaches further down wordfreq's list than modern text: on the first 10,000
#: characters of the Austen *validation* text (2026-12-06), completions from the 200,000 most
#: frequent words saved KSR@3 0.3728 against 0.3695 with the default 100,000 (beam 12 as well:
#: 0.3713; a document-cache weight of 0.2: 0.3691).
AUSTEN_OPTIONS = {"language_model": SHIPPED_INT8_MODEL, "lexicon_words": 200_000}


@hookimpl
def register_backends(register: Callable[[str, BackendFactory], None]) -> None:
    register(BACKEND, lazy_backend(f"{__package__}.backend:create_backend"))


@hookimpl
def register_models(register: Callable[[ModelSpec], None]) -> None:
    austen = card(AUSTEN_ASSISTANT, SHIPPED_INT8_MODEL, "Jane Austen-style prose", AUSTEN_LIMITS)
    modern_lm = f"{ENGLISH_MODEL}-int8" if is_shipped(ENGLISH_DIR) else SHIPPED_INT8_MODEL
    modern = card(BACKEND, modern_lm, "modern English", MODERN_LIMITS) if modern_lm != SHIPPED_INT8_MODEL else austen
    register(ModelSpec(name=BACKEND, backend=BACKEND, options={"language_model": modern_lm}, card=modern))
    register(ModelSpec(name=AUSTEN_ASSISTANT, backend=BACKEND, options=AUSTEN_OPTIONS, card=austen))
