"""A word list that steers a character beam search: which characters may extend a prefix.

Words are kept lower case in one sorted list; "does any word start with this prefix?" is
a binary search, so 100,000 words cost one list of strings instead of a trie of dicts.
A beam search asks for each live hypothesis which tokens may come next; the answers are
[vocab] bool masks, cached per prefix (the same prefixes recur keystroke after keystroke).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from functools import lru_cache

import torch


class Lexicon:
    """Lower-case words, and per prefix the vocabulary tokens that keep it a prefix of one."""

    def __init__(self, words: Iterable[str], token_text: list[str]) -> None:
        self.words = sorted({w.lower() for w in words if w})
        self._set = frozenset(self.words)
        self._letters = sorted({c for w in self.words for c in w})
        #: [letters, vocab] bool: the tokens that are each lower-case letter in any case
        self._tokens = torch.tensor([[t.lower() == c for t in token_text] for c in self._letters])
        self.continuations = lru_cache(maxsize=1 << 16)(self._continuations)

    def __contains__(self, word: str) -> bool:
        return word.lower() in self._set

    def __len__(self) -> int:
        return len(self.words)

    def has_prefix(self, prefix: str) -> bool:
        """Whether some word starts with ``prefix`` (any case)."""
        prefix = prefix.lower()
        i = bisect.bisect_left(self.words, prefix)
        return i < len(self.words) and self.words[i].startswith(prefix)

    def _continuations(self, prefix: str) -> torch.Tensor:
        """[vocab] bool: tokens t with ``prefix + t`` still the prefix of a word (``prefix`` lower case)."""
        rows = [i for i, letter in enumerate(self._letters) if self.has_prefix(prefix + letter)]
        return self._tokens[rows].any(dim=0)
