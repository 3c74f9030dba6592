"""Recurrent states of texts: reading text, an LRU prefix cache, and a session's checkpoint ring.

An RNN's whole context is its fixed-size state, so a typed document costs a few KB to
remember: appending k characters costs k steps, and going back (backspace) restores a
checkpoint instead of re-reading the document.

A recurrent state also forgets: what a character LSTM predicts after a long document
depends on its last few hundred characters only. So a long read is *bounded*
(``window``): where more than ``window`` characters would be read at once (a Session
opened on a long document, a long paste, a ``Suggest`` text with no cached prefix, a
delete past the checkpoint ring), only the text from :func:`window_start` on is read,
from the model's start state. The default window is measured
(``benchmarks/assistant_window.py``; see the backend's ``window_chars``).
"""

from __future__ import annotations

import bisect
import re
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass

import torch

from rnnserve.plugin_api import LanguageModel, State


@dataclass(frozen=True)
class TextState:
    """The model state after reading some text, and the next-token logits [vocab] there."""

    state: State
    logits: torch.Tensor


def start_state(model: LanguageModel) -> TextState:
    """The state after the start-of-text token."""
    logits, state = model.forward(torch.tensor([[model.vocab.bos_id]]), model.initial_state(1))
    return TextState(state, logits[0, -1].clone())


#: A word start: a non-space character after a space.
_WORD_START = re.compile(r"\s\S")


def window_start(text: str, window: int) -> int:
    """Where a bounded read of ``text`` starts: 0 if it is at most ``window`` characters long
    (or ``window`` is 0: no bound), else the first line start in the first quarter of its last
    ``window`` characters, else their first word start (else their first character)."""
    if window <= 0 or len(text) <= window:
        return 0
    cut = len(text) - window
    line = text.find("\n", cut - 1, cut + window // 4)
    if line != -1:
        return line + 1
    word = _WORD_START.search(text, cut - 1)
    return word.start() + 1 if word is not None else cut


def read(model: LanguageModel, start: TextState, text: str) -> TextState:
    """Continue ``start`` by reading ``text`` (one whole-sequence call)."""
    if not text:
        return start
    ids, _ = model.vocab.encode(text)
    logits, state = model.forward(torch.tensor([ids]), start.state)
    # A copy: the view logits[0, -1] would keep all [len(text), vocab] logits alive in the caches.
    return TextState(state, logits[0, -1].clone())


def read_variants(model: LanguageModel, start: TextState, texts: list[str]) -> tuple[State, torch.Tensor, torch.Tensor]:
    """Read equally long ``texts`` (in one batched call) after ``start``.

    Returns:
        the states after each text (batch ``len(texts)``), the next-token logits there
        [len(texts), vocab], and each text's log-probability after ``start`` [len(texts)] (float64).
    """
    ids = torch.tensor([model.vocab.encode(text)[0] for text in texts])  # [R, T]
    rows = ids.shape[0]
    state = tuple(t.expand(*[rows if d == dim else -1 for d in range(t.dim())]).contiguous()
                  for t, dim in zip(start.state, model.state_batch_dims, strict=True))
    logits, state = model.forward(ids, state)
    previous = torch.cat([start.logits.expand(rows, 1, -1), logits[:, :-1]], dim=1).float()  # [R, T, vocab]
    logprob = torch.log_softmax(previous, dim=-1).gather(2, ids[:, :, None]).sum(dim=(1, 2)).double()
    return state, logits[:, -1].clone(), logprob


class PrefixCache:
    """LRU map text -> TextState; a lookup reuses the longest cached prefix of the text.

    Only the lengths of cached texts can be prefix lengths, so a lookup tries those (at most
    ``capacity``, longest first; one slice and hash each, in C) rather than every position
    of a document that may be 100,000 characters long.
    """

    def __init__(self, model: LanguageModel, capacity: int, window: int = 0) -> None:
        self.model = model
        self.capacity = capacity
        #: Reads longer than this start over from the start state at ``window_start`` (0: never).
        self.window = window
        self.hits = 0
        self.misses = 0
        self.chars_read = 0
        self._entries: OrderedDict[str, TextState] = OrderedDict()
        self._lengths: Counter[int] = Counter()  # cached texts per length
        self._sorted_lengths: list[int] = []  # the distinct lengths of cached texts, ascending
        self._start: TextState | None = None

    def __len__(self) -> int:
        return len(self._entries)

    def state(self, text: str) -> TextState:
        """The state after ``text``, reading only what no cached prefix covers; caches the result."""
        cached, length = self._longest_prefix(text)
        if length == len(text) and cached is not None:
            self.hits += 1
            self._entries.move_to_end(text)
            return cached
        begin = window_start(text, self.window)
        if cached is None or begin > length:  # nothing cached, or only prefixes further back than the window
            self.misses += 1
            if self._start is None:
                self._start = start_state(self.model)
            cached, length = self._start, begin
        else:
            self.hits += 1
        result = read(self.model, cached, text[length:])
        self.chars_read += len(text) - length
        self._put(text, result)
        return result

    def _longest_prefix(self, text: str) -> tuple[TextState | None, int]:
        for i in range(bisect.bisect_right(self._sorted_lengths, len(text)) - 1, -1, -1):
            length = self._sorted_lengths[i]
            entry = self._entries.get(text[:length])
            if entry is not None:
                return entry, length
        return None, 0

    def _put(self, text: str, state: TextState) -> None:
        if text not in self._entries:
            self._count(len(text), +1)
        self._entries[text] = state
        self._entries.move_to_end(text)
        while len(self._entries) > self.capacity:
            evicted, _ = self._entries.popitem(last=False)
            self._count(len(evicted), -1)

    def _count(self, length: int, change: int) -> None:
        self._lengths[length] += change
        if change > 0 and self._lengths[length] == 1:
            bisect.insort(self._sorted_lengths, length)
        elif self._lengths[length] == 0:
            del self._lengths[length]
            self._sorted_lengths.pop(bisect.bisect_left(self._sorted_lengths, length))


class CheckpointRing:
    """The state of a document being edited at its end, with a ring of earlier states.

    A checkpoint is kept every ``every`` characters, the newest ``size`` of them. Appending
    reads only the new text; deleting restores the nearest checkpoint at or before the new
    end and re-reads fewer than ``every`` characters. The states after the last ``recent``
    appends are kept too, so the start of the word being typed is at hand without a read.
    """

    def __init__(self, model: LanguageModel, every: int = 32, size: int = 64, recent: int = 24,
                 window: int = 0) -> None:
        self.model = model
        self.every = every
        self.size = size
        #: A read of more than this many characters (opening on a long document, a long paste,
        #: a delete past the ring) starts over from the start state at ``window_start`` (0: never).
        self.window = window
        self.text = ""
        self.chars_read = 0
        self._start = start_state(model)
        self.current = self._start
        self._ring: deque[tuple[int, TextState]] = deque(maxlen=size)
        self._recent: deque[tuple[int, TextState]] = deque(maxlen=recent)

    def append(self, text: str, after: TextState | None = None) -> None:
        """Read ``text`` at the end; ``after``, the state after one appended character if the
        caller has it (a search reached it, see :class:`WordNodes`), saves the read."""
        pos = len(self.text)
        self.text += text
        if after is not None and len(text) == 1:
            self.current = after
            if len(self.text) % self.every == 0:
                self._ring.append((len(self.text), after))
            self._recent.append((len(self.text), after))
            return
        if self.window and len(self.text) - pos > self.window:
            begin = window_start(self.text, self.window)
            if begin > pos:  # the state forgets what came before: read the window only
                self.current, pos = self._start, begin
        # Checkpoints older than the ring keeps would be dropped at once: read that part in one call.
        reach = (len(self.text) - self.every * self.size) // self.every * self.every
        if reach > pos:
            self.current = read(self.model, self.current, self.text[pos:reach])
            self.chars_read += reach - pos
            pos = reach
            self._ring.clear()
            self._ring.append((pos, self.current))
        while pos < len(self.text):
            stop = min(len(self.text), (pos // self.every + 1) * self.every)
            self.current = read(self.model, self.current, self.text[pos:stop])
            self.chars_read += stop - pos
            pos = stop
            if pos % self.every == 0:
                self._ring.append((pos, self.current))
        if text:
            self._recent.append((len(self.text), self.current))

    def delete(self, chars: int) -> None:
        self.truncate(max(0, len(self.text) - chars))

    def truncate(self, length: int) -> None:
        """Cut the document to ``length`` characters."""
        if length >= len(self.text):
            return
        while self._ring and self._ring[-1][0] > length:
            self._ring.pop()
        while self._recent and self._recent[-1][0] > length:
            self._recent.pop()
        if self._recent and self._recent[-1][0] == length:
            self.text, self.current = self.text[:length], self._recent[-1][1]
            return
        # Past the ring's reach (more than size * every characters back) it re-reads from the
        # start, or (``window``) from the window start before the new end.
        base_pos, base = self._ring[-1] if self._ring else (0, self._start)
        rest = self.text[base_pos:length]
        self.text = self.text[:base_pos]
        self.current = base
        self.append(rest)

    def reset(self) -> None:
        self.text = ""
        self.current = self._start
        self._ring.clear()
        self._recent.clear()

    def state_at(self, length: int) -> TextState:
        """The state after the first ``length`` characters (from the nearest kept state)."""
        if length == len(self.text):
            return self.current
        if length > len(self.text):
            raise ValueError(f"state after {length} characters of a {len(self.text)}-character text")
        base_pos, base = (0, self._start)
        for kept in (self._ring, self._recent):
            for pos, state in reversed(kept):
                if pos <= length:
                    if pos > base_pos:
                        base_pos, base = pos, state
                    break
        if self.window and length - base_pos > self.window:
            begin = window_start(self.text[:length], self.window)
            if begin > base_pos:
                base_pos, base = begin, self._start
        self.chars_read += length - base_pos
        return read(self.model, base, self.text[base_pos:length])


@dataclass(frozen=True)
class Node:
    """A text reached from a word start: the state after it (batch 1), the next-token logits
    [vocab] float32 there, and its natural-log probability after the word start."""

    state: State
    logits: torch.Tensor
    logprob: float


class WordNodes:
    """The states a session's searches reached from the start of the word being typed.

    A word completion search from ``Eli`` steps ``Eliz``, ``Eliza``, ... to score them; when
    the person then types ``z``, the search from ``Eliz`` needs those same states again.
    Keyed by the text after the word start (exact case), the nodes of one search are the
    next one's starting points and first steps, and the state after a typed letter is often
    already here, so a keystroke in the middle of a word costs few or no model steps. A
    search after a word boundary (next words) leaves the nodes of the word typed next.

    The nodes belong to one word start (``anchor``: its position and the character before
    it); moving to another clears them, as does any edit that is not an append, and those
    the typed word has left behind are dropped (``keep_under``). At most ``capacity`` nodes
    are kept (least recently used go first).
    """

    def __init__(self, capacity: int = 1024) -> None:
        self.capacity = capacity
        self.anchor: tuple[int, str] | None = None
        self._nodes: OrderedDict[str, Node] = OrderedDict()

    def __len__(self) -> int:
        return len(self._nodes)

    def at(self, anchor: tuple[int, str]) -> WordNodes:
        """These nodes for the word starting at ``anchor`` = (position, character before it):
        cleared if they were another word's."""
        if anchor != self.anchor:
            self.clear()
            self.anchor = anchor
        return self

    def clear(self) -> None:
        self._nodes.clear()
        self.anchor = None

    def get(self, key: str) -> Node | None:
        node = self._nodes.get(key)
        if node is not None:
            self._nodes.move_to_end(key)
        return node

    def keep_under(self, prefix: str) -> None:
        """Drop the nodes that do not extend ``prefix`` (in any case): the typed word has left them."""
        prefix = prefix.lower()
        for key in [key for key in self._nodes if not key.lower().startswith(prefix)]:
            del self._nodes[key]

    def logprob(self, key: str) -> float:
        """Log-probability of the node ``key`` (which must be here) after the word start."""
        return self._nodes[key].logprob

    def put(self, key: str, node: Node) -> None:
        self._nodes[key] = node
        self._nodes.move_to_end(key)
        while len(self._nodes) > self.capacity:
            self._nodes.popitem(last=False)
