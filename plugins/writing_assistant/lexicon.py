"""A word list that steers a character beam search: which characters may extend a prefix.

Words are kept lower case in one sorted list; "does any word start with this prefix?" is
a binary search, and the letters that may follow a prefix are found by hopping through
its range of words (one search per letter found), so 100,000 words cost one list of
strings instead of a trie of dicts.
A beam search asks for each live hypothesis which tokens may come next; the answers are
[vocab] bool masks, cached per prefix (the same prefixes recur keystroke after keystroke).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from functools import lru_cache

import torch

#: Sorts after every string that starts with a given prefix.
_LAST = "\U0010ffff"


class Lexicon:
    """Lower-case words, and per prefix the vocabulary tokens that keep it a prefix of one."""

    def __init__(self, words: Iterable[str], token_text: list[str]) -> None:
        self.words = sorted({w.lower() for w in words if w})
        self._set = frozenset(self.words)
        self._letters = sorted({c for w in self.words for c in w})
        self._letter_row = {c: i for i, c in enumerate(self._letters)}
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

    def next_letters(self, prefix: str) -> list[str]:
        """The letters that follow ``prefix`` (lower case) in some word: one binary search per
        letter found, hopping from the first word with ``prefix + letter`` past the last."""
        end = bisect.bisect_left(self.words, prefix + _LAST)
        i = bisect.bisect_left(self.words, prefix, hi=end)
        found = []
        while i < end:
            word = self.words[i]
            if len(word) == len(prefix):  # the prefix itself is a word
                i += 1
                continue
            letter = word[len(prefix)]
            found.append(letter)
            i = bisect.bisect_left(self.words, prefix + letter + _LAST, lo=i, hi=end)
        return found

    def _continuations(self, prefix: str) -> torch.Tensor:
        """[vocab] bool: tokens t with ``prefix + t`` still the prefix of a word (``prefix`` lower case)."""
        rows = [self._letter_row[letter] for letter in self.next_letters(prefix)]
        return self._tokens[rows].any(dim=0)
