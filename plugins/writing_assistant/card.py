"""The writing assistants' model cards: no weights of their own, their measured keystroke savings."""

from __future__ import annotations

from rnnserve.plugin_api import ModelCard

HOW = "beam search over characters, casing kept, per-session recurrent state"


#: Keystroke savings measured on 2026-12-06 (AMD EPYC family 26, torch 2.13.0) typing the first 10,000
#: characters of each held-out text, against PyPI wordfreq's context-free completer (same acceptance rule),
#: the Austen assistant on the continued austen-char-lstm (step 5,800) with its 200,000-word lexicon:
#:   python -m benchmarks.assistant --data runs/english/data --model writing-assistant,austen-writing-assistant \
#:       --ksr-only --chars 10000        # and --data runs/austen/data (Persuasion)
KSR = {
    "writing-assistant": {"modern_ksr1": 0.2377, "modern_ksr3": 0.3432, "modern_ksr3_vs_wordfreq": 1.488,
                          "persuasion_ksr1": 0.1276, "persuasion_ksr3": 0.2043, "persuasion_ksr3_vs_wordfreq": 0.899},
    "austen-writing-assistant": {"modern_ksr1": 0.1282, "modern_ksr3": 0.2077, "modern_ksr3_vs_wordfreq": 0.901,
                                 "persuasion_ksr1": 0.2396, "persuasion_ksr3": 0.3438,
                                 "persuasion_ksr3_vs_wordfreq": 1.513},
}
KSR_COMMAND = ("python -m benchmarks.assistant --data runs/english/data (or runs/austen/data) "
               "--model writing-assistant,austen-writing-assistant --ksr-only --chars 10000")


def card(name: str, language_model: str, text: str, limitations: str) -> ModelCard:
    """The card of assistant ``name`` on ``language_model``: no weights of its own, its measured savings."""
    base = language_model.removesuffix("-int8")
    return ModelCard(
        description=f"Word completion, next-word and phrase suggestions for {text} from the {language_model} "
                    f"character language model: {HOW}. Metrics: keystroke savings (KSR@k: share of keystrokes "
                    "saved by a typist who accepts a top-k word suggestion) on 10,000 held-out characters of the "
                    "modern-English test split and of Persuasion, and the ratio to PyPI wordfreq's context-free "
                    "completer.",
        data=f"No weights of its own; see the {base} model card.",
        training_command=KSR_COMMAND,
        metrics=dict(KSR.get(name, {})),
        license="MIT (code); the language model's card gives its weights' licence.",
        limitations=limitations,
    )

AUSTEN_LIMITS = ("Suggestions reflect Jane Austen's vocabulary and style (early-19th-century English); "
                 "little help on modern text.")
MODERN_LIMITS = ("Suggestions reflect the English of software documentation, manuals and interfaces; printable "
                 "ASCII only; e-mail and fiction are further from its data.")
