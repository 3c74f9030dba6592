"""Suggestions for the text before a cursor: word completion, next words, phrase continuation.

Casing follows what was typed: the word being typed is completed from the typed prefix
and, when they differ, from its lower-case and capitalised forms (a model trained on
prose rarely sees ``ELIZ``); the best completion of each word wins and is rendered in the
typed casing (``ELIZ`` -> ``ELIZABETH``, ``eliz`` -> ``elizabeth``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypeVar

import torch

from rnnserve.backends import LanguageModel, Suggestion, SuggestionKind, SuggestOptions
from rnnserve_plugins.writing_assistant.search import Hypothesis, beam_search
from rnnserve_plugins.writing_assistant.states import TextState, read

T = TypeVar("T")

#: Characters that end a phrase suggestion (a clause or a sentence).
CLAUSE_END = set(".,;:!?\n")


def is_word_char(ch: str) -> bool:
    return ch.isalpha() or ch == "'"


def typed_word(text: str) -> str:
    """The word being typed at the end of ``text`` ("" after a space or punctuation)."""
    end = len(text)
    while end > 0 and is_word_char(text[end - 1]):
        end -= 1
    return text[end:]


def casing_variants(prefix: str) -> list[str]:
    """The typed prefix, then its lower-case and capitalised forms if they differ."""
    return list(dict.fromkeys([prefix, prefix.lower(), prefix.capitalize()]))


def render(prefix: str, rest: str) -> str:
    """Completion ``rest`` of ``prefix`` in the typed casing."""
    shouting = len(prefix) > 1 and prefix.isupper()
    return prefix + (rest.upper() if shouting else rest)


class Suggester:
    """Suggestion search for one language model (runs on the model's thread)."""

    def __init__(self, model: LanguageModel, *, beam: int = 8, max_word_chars: int = 20,
                 phrase_chars: int = 60, lexicon: frozenset[str] | None = None) -> None:
        self.model = model
        #: Lower-case words a completion must be one of (None: any string the model ends with a
        #: boundary). A character model also puts boundary mass after non-words ("univers").
        self.lexicon = lexicon
        self.beam = beam
        self.max_word_chars = max_word_chars
        self.phrase_chars = phrase_chars
        vocab = model.vocab
        self.token_text = [vocab.decode([i]) for i in range(vocab.size)]
        single = [len(t) == 1 for t in self.token_text]
        self.word = torch.tensor([s and is_word_char(t) for s, t in zip(single, self.token_text, strict=True)])
        self.letter = torch.tensor([s and t.isalpha() for s, t in zip(single, self.token_text, strict=True)])
        self.boundary = torch.tensor([s and not is_word_char(t) for s, t in zip(single, self.token_text, strict=True)])
        self.printable = torch.tensor([s and (t.isprintable() or t == "\n")
                                       for s, t in zip(single, self.token_text, strict=True)])
        self.clause_end = torch.tensor([t in CLAUSE_END and s for s, t in zip(single, self.token_text, strict=True)])
        if vocab.eos_id is not None:
            self.boundary[vocab.eos_id] = True

    def suggest(self, text: str, options: SuggestOptions, state_at: Callable[[int], TextState]) -> list[Suggestion]:
        """Suggestions for ``text``; ``state_at(n)`` gives the state after ``text[:n]``."""
        out: list[Suggestion] = []
        k = options.max_suggestions
        for kind in options.kinds:
            if kind is SuggestionKind.WORD:
                prefix = typed_word(text)
                found = self._complete(prefix, state_at(len(text) - len(prefix)), k) if prefix \
                    else self._next_words(text, state_at(len(text)), k, kind)
            elif kind is SuggestionKind.NEXT_WORDS:
                found = self._next_words(text, state_at(len(text)), k, kind)
            else:
                found = self._phrases(state_at(len(text)), k, options.max_phrase_chars or self.phrase_chars)
            out.extend(_normalised(found))
        return out

    def _complete(self, prefix: str, word_start: TextState, k: int) -> list[Suggestion]:
        """Completions of the typed ``prefix`` (never the bare prefix itself)."""
        best: dict[str, tuple[float, str]] = {}
        for variant in casing_variants(prefix):
            state = read(self.model, word_start, variant)
            for hyp in self._words(state, k, first_letter=False):
                word = render(prefix, hyp.text)
                key = word.lower()
                if key not in best or hyp.logprob > best[key][0]:
                    best[key] = (hyp.logprob, hyp.text)
        ranked = self._real_words(sorted(best.items(), key=lambda item: -item[1][0]), lambda item: item[0], k)
        return [Suggestion(text=render(prefix, rest), kind=SuggestionKind.WORD, probability=0.0,
                           absolute_probability=math.exp(lp), insert_text=render(prefix, rest)[len(prefix):],
                           replace_chars=len(prefix))
                for _, (lp, rest) in ranked]

    def _next_words(self, text: str, state: TextState, k: int, kind: SuggestionKind) -> list[Suggestion]:
        """The k most likely next words; a space is typed first unless the text ends with one."""
        lead = " " if text and not text[-1].isspace() else ""
        if lead:
            state = read(self.model, state, lead)
        found = self._real_words(self._words(state, k, first_letter=True), lambda h: h.text.lower(), k)
        return [Suggestion(text=h.text, kind=kind, probability=0.0, absolute_probability=math.exp(h.logprob),
                           insert_text=lead + h.text)
                for h in found]

    def _words(self, state: TextState, k: int, *, first_letter: bool) -> list[Hypothesis]:
        """Up to k word continuations (4k candidates when a lexicon will filter them)."""
        wanted = 4 * k if self.lexicon is not None else k
        return beam_search(self.model, self.token_text, state.state, state.logits, extend=self.word,
                           end_mass=self.boundary, first=self.letter if first_letter else None,
                           beam=max(self.beam, 2 * wanted), max_chars=self.max_word_chars, results=wanted)

    def _real_words(self, ranked: list[T], word: Callable[[T], str], k: int) -> list[T]:
        """The k best candidates that are lexicon words; all candidates when none is."""
        if self.lexicon is None:
            return ranked[:k]
        real = [c for c in ranked if word(c) in self.lexicon]
        return (real or ranked)[:k]

    def _phrases(self, state: TextState, k: int, max_chars: int) -> list[Suggestion]:
        found = beam_search(self.model, self.token_text, state.state, state.logits, extend=self.printable,
                            end_on=self.clause_end, beam=max(self.beam, k), max_chars=max_chars, results=k,
                            finish_at_limit=True)
        return [Suggestion(text=h.text, kind=SuggestionKind.PHRASE, probability=0.0,
                           absolute_probability=math.exp(h.logprob), insert_text=h.text)
                for h in found if h.text.strip()]


def _normalised(found: list[Suggestion]) -> list[Suggestion]:
    total = sum(s.absolute_probability for s in found)
    for s in found:
        s.probability = s.absolute_probability / total if total > 0 else 0.0
    return found
