"""The ``writing-assistant`` backend: suggestions and sessions on top of a served language model.

It owns no weights: it borrows a language model the host already serves (by name, option
``language_model``, default ``austen-char-lstm-int8``) and runs its math on that model's
scheduler thread: reads with ``SharedLanguageModel.call``, suggestion searches with
``SharedLanguageModel.run_steps``, so the searches of concurrent sessions and ``Suggest``
calls share batched model steps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rnnserve.backends import Assistant, AssistantSession, LoadContext, SharedLanguageModel, Suggestion, SuggestOptions
from rnnserve.config import ModelSpec
from rnnserve.step_programs import StepProgram
from rnnserve_plugins.writing_assistant.states import CheckpointRing, PrefixCache
from rnnserve_plugins.writing_assistant.suggest import Suggester

DEFAULTS: dict[str, Any] = {
    "language_model": "austen-char-lstm-int8",
    "beam": 8,               # live hypotheses per step of the character beam search
    "max_word_chars": 20,    # longest word completion
    "phrase_chars": 60,      # longest phrase suggestion
    "cache_entries": 1024,   # prefix cache size (a few KB each)
    "checkpoint_every": 32,  # session checkpoint spacing, in characters
    "checkpoints": 64,       # session checkpoints kept (backspace reach: every * checkpoints)
    "lexicon_words": 100_000,  # completions must be among the N most frequent English words (wordfreq); 0: off
    "cache_weight": 0.1,     # weight of the document's own words in word suggestions (document_cache.py)
    "cache_chars": 20_000,   # characters before the cursor the document cache counts
    "cache_scope": "unknown",  # the cache offers words outside the lexicon ("unknown") or any ("all")
    "concurrent_calls": 32,  # calls (sessions' keystrokes, Suggest) whose searches may share model steps
}


def english_lexicon(size: int) -> frozenset[str] | None:
    """The ``size`` most frequent English words (PyPI wordfreq, CC-BY-SA data), lower case."""
    if size <= 0:
        return None
    from wordfreq import top_n_list

    return frozenset(top_n_list("en", size))


class WritingAssistant(Assistant):
    def __init__(self, shared: SharedLanguageModel, **options: Any) -> None:
        unknown = sorted(set(options) - set(DEFAULTS))
        if unknown:
            raise ValueError(f"unknown writing-assistant option(s) {unknown}; valid: {sorted(DEFAULTS)}")
        self.options = {**DEFAULTS, **options}
        self.shared = shared
        # Every model call runs on the language model's thread (shared.call / run_steps), so
        # concurrent calls are safe; their searches' steps are batched there.
        self.concurrent_calls = int(self.options["concurrent_calls"])
        if self.concurrent_calls < 1:
            raise ValueError(f"concurrent_calls must be >= 1, got {self.concurrent_calls}")
        self.suggester = Suggester(shared.model, beam=self.options["beam"],
                                   max_word_chars=self.options["max_word_chars"],
                                   phrase_chars=self.options["phrase_chars"],
                                   lexicon=english_lexicon(self.options["lexicon_words"]),
                                   cache_weight=self.options["cache_weight"], cache_chars=self.options["cache_chars"],
                                   cache_scope=self.options["cache_scope"])
        self.cache = PrefixCache(shared.model, self.options["cache_entries"])

    def suggest(self, text: str, options: SuggestOptions) -> list[Suggestion]:
        return self.shared.run_steps(lambda: self.suggester.suggest(text, options,
                                                                    lambda n: self.cache.state(text[:n])))

    def open_session(self, options: SuggestOptions, text: str = "") -> AssistantSession:
        return WritingSession(self, options, text)

    def parameter_count(self) -> int:
        return self.shared.model.parameter_count()

    def counters(self) -> dict[str, float]:
        return {"prefix_cache_hits": self.cache.hits, "prefix_cache_misses": self.cache.misses,
                "prefix_cache_entries": len(self.cache), "prefix_cache_chars_read": self.cache.chars_read}


class WritingSession(AssistantSession):
    """A document typed at its end; its state lives in a checkpoint ring.

    Edits are queued and read into the ring on the language model's thread at the start of
    the next suggestion search, so a keystroke is one trip to that thread, not two.
    """

    #: Edits queued without a search are read once this many are waiting.
    MAX_QUEUED_EDITS = 256

    def __init__(self, assistant: WritingAssistant, options: SuggestOptions, text: str) -> None:
        self.assistant = assistant
        self.options = options
        self.ring: CheckpointRing = assistant.shared.call(lambda: CheckpointRing(
            assistant.shared.model, assistant.options["checkpoint_every"], assistant.options["checkpoints"]))
        self._edits: list[Callable[[], None]] = []
        self._chars = 0
        self.append(text)

    def append(self, text: str) -> None:
        self._queue(lambda: self.ring.append(text), self._chars + len(text))

    def delete(self, chars: int) -> None:
        self._queue(lambda: self.ring.delete(chars), max(0, self._chars - chars))

    def reset(self) -> None:
        self._queue(self.ring.reset, 0)

    def suggestions(self) -> list[Suggestion]:
        suggester = self.assistant.suggester

        def search() -> StepProgram[list[Suggestion]]:
            self._read_edits()
            return (yield from suggester.suggest(self.ring.text, self.options, self.ring.state_at))

        return self.assistant.shared.run_steps(search)

    @property
    def document_chars(self) -> int:
        return self._chars

    def _queue(self, edit: Callable[[], None], chars: int) -> None:
        self._edits.append(edit)
        self._chars = chars
        if len(self._edits) >= self.MAX_QUEUED_EDITS:
            self.assistant.shared.call(self._read_edits)

    def _read_edits(self) -> None:
        """Apply the queued edits (on the language model's thread)."""
        edits, self._edits = self._edits, []
        for edit in edits:
            edit()


def create_backend(spec: ModelSpec, context: LoadContext) -> WritingAssistant:
    options = dict(spec.options)
    shared = context.language_model(options.pop("language_model", DEFAULTS["language_model"]))
    return WritingAssistant(shared, **options)
