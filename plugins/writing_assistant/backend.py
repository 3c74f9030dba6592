"""The ``writing-assistant`` backend: suggestions and sessions on top of a served language model.

It owns no weights: it borrows a language model the host already serves (by name, option
``language_model``, default ``austen-char-lstm-int8``) and runs its math on that model's
scheduler thread: reads with ``SharedLanguageModel.call``, suggestion searches with
``SharedLanguageModel.run_steps``, so the searches of concurrent sessions and ``Suggest``
calls share batched model steps.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from rnnserve.plugin_api import (
    Assistant,
    AssistantSession,
    LoadContext,
    ModelSpec,
    SharedLanguageModel,
    StepProgram,
    Suggestion,
    SuggestOptions,
    while_true,
)
from rnnserve_plugins.writing_assistant.states import CheckpointRing, Node, PrefixCache, TextState, WordNodes, read
from rnnserve_plugins.writing_assistant.suggest import Suggester, is_word_char, typed_word

#: The fewest word nodes a session may keep, when it keeps any.
MIN_WORD_NODES = 64

#: Default ``window_chars``, measured with austen-char-lstm-int8 on held-out Persuasion
#: (``python -m benchmarks.assistant_window``, 200 keystrokes of 60,000 characters, both
#: readings one character per step): the top-3 word suggestions from the window equal those
#: from the whole document on 76.5% of keystrokes at W=64, 89% at 256, 92.5% at 512, 93.5% at
#: 768, 94.5% at 1,024, and no more beyond (93-94% up to 4,096): no window reaches 99%. The
#: rest are near-ties that the int8 model's own numbers flip: reading the same window in one
#: call instead of by steps changes the suggestions on 10% of keystrokes. 1,024 is the
#: smallest window on that plateau; it reads a 100,000-character document in ~0.2 s.
WINDOW_CHARS = 1024

DEFAULTS: dict[str, Any] = {
    "language_model": "austen-char-lstm-int8",
    "beam": 8,               # live hypotheses per step of the character beam search
    "max_word_chars": 20,    # longest word completion
    "phrase_chars": 60,      # longest phrase suggestion
    "cache_entries": 1024,   # prefix cache size (a few KB each)
    "checkpoint_every": 32,  # session checkpoint spacing, in characters
    "checkpoints": 64,       # session checkpoints kept (backspace reach: every * checkpoints)
    # Longest read from the start state: a longer document is read from a line or word start
    # among its last window_chars characters (states.window_start; 0: read it all). Measured
    # by benchmarks/assistant_window.py: see WINDOW_CHARS.
    "window_chars": WINDOW_CHARS,
    "word_nodes": 1024,      # most states a session keeps from its searches in the typed word (a few KB each); 0: off
    "lexicon_words": 100_000,  # completions must be among the N most frequent English words (wordfreq); 0: off
    "cache_weight": 0.1,     # weight of the document's own words in word suggestions (document_cache.py)
    "cache_chars": 20_000,   # characters before the cursor the document cache counts
    "cache_scope": "unknown",  # the cache offers words outside the lexicon ("unknown") or any ("all")
    "concurrent_calls": 32,  # calls (sessions' keystrokes, Suggest) whose searches may share model steps
    "expect_next": True,     # sessions search ahead, in the model's idle time, for the likeliest next character
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
        if 0 < int(self.options["word_nodes"]) < MIN_WORD_NODES:
            raise ValueError(f"word_nodes must be 0 (off) or at least {MIN_WORD_NODES} (one keystroke's search keeps "
                             f"more states than that), got {self.options['word_nodes']}")
        self.suggester = Suggester(shared.model, beam=self.options["beam"],
                                   max_word_chars=self.options["max_word_chars"],
                                   phrase_chars=self.options["phrase_chars"],
                                   lexicon=english_lexicon(self.options["lexicon_words"]),
                                   cache_weight=self.options["cache_weight"], cache_chars=self.options["cache_chars"],
                                   cache_scope=self.options["cache_scope"])
        self.window = int(self.options["window_chars"])
        if self.window < 0:
            raise ValueError(f"window_chars must be >= 0 (0: read whole documents), got {self.window}")
        self.cache = PrefixCache(shared.model, self.options["cache_entries"], self.window)
        #: Sessions' searches ahead that finished, and keystrokes they answered (see WritingSession).
        self.expected_searches = 0
        self.expected_hits = 0

    def suggest(self, text: str, options: SuggestOptions) -> list[Suggestion]:
        return self.shared.run_steps(lambda: self.suggester.suggest(text, options,
                                                                    lambda n: self.cache.state(text[:n])))

    def open_session(self, options: SuggestOptions, text: str = "") -> AssistantSession:
        return WritingSession(self, options, text)

    def parameter_count(self) -> int:
        return self.shared.model.parameter_count()

    def counters(self) -> dict[str, float]:
        return {"prefix_cache_hits": self.cache.hits, "prefix_cache_misses": self.cache.misses,
                "prefix_cache_entries": len(self.cache), "prefix_cache_chars_read": self.cache.chars_read,
                "expected_searches": self.expected_searches, "expected_hits": self.expected_hits}


@dataclass
class _Expected:
    """A session's search run ahead, while the model was idle, for the keystroke it expects next."""

    base: str = ""    # the document it was run after
    typed: str = ""   # the character expected next
    after: TextState | None = None  # the state after base + typed
    nodes: WordNodes | None = None  # after a word boundary: the nodes of the word typed next
    result: list[Suggestion] | None = None  # the suggestions for base + typed, once finished


#: A queued edit: ("append", text), ("delete", chars), ("reset", 0), or ("expected", _Expected):
#: a keystroke answered by the search ahead.
Edit = tuple[str, Any]


class WritingSession(AssistantSession):
    """A document typed at its end; its state lives in a checkpoint ring.

    Edits are queued and read into the ring on the language model's thread at the start of
    the next suggestion search, so a keystroke is one trip to that thread, not two. The
    states the searches reach in the word being typed are kept (``WordNodes``): the next
    keystroke's search starts from them, and a typed letter a search reached is not read.
    After answering a keystroke, the session searches ahead for the character the model
    expects next (option ``expect_next``), in the language model's idle time
    (``SharedLanguageModel.run_steps_idle``): when that character is typed, its
    suggestions are ready; a keystroke that arrives first stops that search.
    """

    #: Edits queued without a search are read once this many are waiting.
    MAX_QUEUED_EDITS = 256

    def __init__(self, assistant: WritingAssistant, options: SuggestOptions, text: str) -> None:
        self.assistant = assistant
        self.options = options
        self.ring: CheckpointRing = assistant.shared.call(lambda: CheckpointRing(
            assistant.shared.model, assistant.options["checkpoint_every"], assistant.options["checkpoints"],
            window=assistant.window))
        self.capacity = int(assistant.options["word_nodes"])
        self.nodes = WordNodes(self.capacity) if self.capacity > 0 else None
        self._edits: list[Edit] = []
        self._lock = threading.Lock()  # self._edits: queued by the caller, read on the model's thread
        self._expected: _Expected | None = None
        self._closed = False  # set on the model's thread by close(): nothing searches after it
        self._chars = 0
        self.append(text)

    def append(self, text: str) -> None:
        self._queue(("append", text), self._chars + len(text))

    def delete(self, chars: int) -> None:
        self._queue(("delete", chars), max(0, self._chars - chars))

    def reset(self) -> None:
        self._queue(("reset", 0), 0)

    def suggestions(self) -> list[Suggestion]:
        suggester = self.assistant.suggester
        found = self._expected_answer()
        if found is None:
            def search() -> StepProgram[list[Suggestion]]:
                self._expected = None  # a search ahead still running stops at its next step
                if self._closed:  # closed while this keystroke waited (its caller is gone)
                    return []
                self._apply_edits()
                if self.nodes is not None:
                    self.nodes.keep_under(typed_word(self.ring.text))
                return (yield from suggester.suggest(self.ring.text, self.options, self.ring.state_at, self.nodes))

            found = self.assistant.shared.run_steps(search)
        self._expect_next()
        return found

    @property
    def document_chars(self) -> int:
        return self._chars

    def close(self) -> None:
        """Stop the search ahead and let go of the session's states (a search ahead still queued
        on the model's thread keeps the emptied session until its turn, then returns at once)."""
        def release() -> None:
            self._closed = True
            self._expected = None
            self.nodes = None
            self.ring.reset()
            with self._lock:
                self._edits = []

        self.assistant.shared.call(release)

    def _queue(self, edit: Edit, chars: int) -> None:
        with self._lock:
            self._edits.append(edit)
        self._chars = chars
        if len(self._edits) >= self.MAX_QUEUED_EDITS:
            def apply() -> None:
                self._expected = None
                self._apply_edits()

            self.assistant.shared.call(apply)

    def _expected_answer(self) -> list[Suggestion] | None:
        """The suggestions searched ahead, if the queued edits are the keystroke expected
        (on the caller's thread: such a keystroke never waits for the model's thread)."""
        expected = self._expected
        if expected is None or expected.result is None:  # none, or still searching
            return None
        with self._lock:
            # A finished search ahead has applied every earlier edit, so the ring is still.
            if self._edits != [("append", expected.typed)] or self.ring.text != expected.base:
                return None
            self._edits = [("expected", expected)]  # read into the ring on the model's thread, later
        self._expected = None
        return expected.result

    def _apply_edits(self) -> None:
        """Read the queued edits into the ring (on the language model's thread)."""
        with self._lock:
            edits, self._edits = self._edits, []
        for kind, value in edits:
            if kind == "append":
                self._append(value)
            elif kind == "expected":  # a keystroke answered by the search ahead: its state is known
                self.ring.append(value.typed, after=value.after)
                if value.nodes is not None:
                    self.nodes = value.nodes
                self.assistant.expected_hits += 1
            else:
                if self.nodes is not None:
                    self.nodes.clear()
                if kind == "delete":
                    self.ring.delete(value)
                else:
                    self.ring.reset()

    def _append(self, text: str) -> None:
        """Append to the ring, with no read if a search already reached the typed letter."""
        node = self._word_node(self.ring.text, text) if len(text) == 1 else None
        if node is not None:
            self.ring.append(text, after=TextState(node.state, node.logits))
        else:
            self.ring.append(text)

    def _word_node(self, document: str, letter: str) -> Node | None:
        """The node a search reached for ``document + letter`` in the word being typed, if any."""
        if not is_word_char(letter) or self.nodes is None or self.nodes.anchor is None:
            return None
        start = len(document) - len(typed_word(document))
        if self.nodes.anchor != (start, document[start - 1:start]):
            return None
        return self.nodes.get(document[start:] + letter)

    def _expect_next(self) -> None:
        """Search ahead, in the model's idle time, for the character the model expects next."""
        run_idle = self.assistant.shared.run_steps_idle
        if run_idle is None or not self.assistant.options["expect_next"] or self._closed:
            return
        expected = _Expected()
        self._expected = expected
        run_idle(lambda: self._search_ahead(expected))

    def _search_ahead(self, expected: _Expected) -> StepProgram[None]:
        """The step program behind ``_expect_next`` (on the language model's thread)."""
        if self._expected is not expected or self._closed:
            return  # a keystroke came first, or the session closed
        self._apply_edits()  # the keystroke just answered, if the last search ahead did
        suggester = self.assistant.suggester
        base = self.ring.text
        current = self.ring.current
        typed = suggester.likely_next(current.logits)
        document = base + typed
        in_word = is_word_char(typed)
        # After a word boundary the next word starts: nodes of its own.
        nodes = self.nodes if in_word else WordNodes(self.capacity) if self.capacity > 0 else None
        # A word search reaches the state after a letter as a node: taken from there once the
        # search has run, or read where something needs it first (a phrase, the next words).
        after: TextState | None = None if in_word and nodes is not None else read(suggester.model, current, typed)

        def after_typed() -> TextState:
            nonlocal after
            if after is None:
                node = self._word_node(base, typed)
                after = TextState(node.state, node.logits) if node is not None \
                    else read(suggester.model, current, typed)
            return after

        def state_at(n: int) -> TextState:  # the ring holds ``base``; ``document`` is one character more
            return after_typed() if n == len(document) else self.ring.state_at(n)

        result = yield from while_true(lambda: self._expected is expected,
                                       suggester.suggest(document, self.options, state_at, nodes))
        if result is None:
            return
        expected.base, expected.typed, expected.after, expected.nodes = base, typed, after_typed(), nodes
        expected.result = result
        self.assistant.expected_searches += 1


def create_backend(spec: ModelSpec, context: LoadContext) -> WritingAssistant:
    options = dict(spec.options)
    shared = context.language_model(options.pop("language_model", DEFAULTS["language_model"]))
    return WritingAssistant(shared, **options)
