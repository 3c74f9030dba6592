"""The cache model of predictive text: words of the document so far are likely to come again.

A character model trained on other books has not met this document's names and subjects;
after ``Sir Walter Elliot`` has been typed twice, ``El`` should offer ``Elliot``. The
cache distribution over the next word is the relative frequency of the document's words
(those matching the typed prefix), mixed with the language model's:
P(w) = (1 - weight) P_lm(w) + weight P_cache(w) (Kuhn & De Mori, 1990).

The counts are kept for the document up to its last space before a multiple of ``BLOCK``
characters (an LRU of the last few such heads), and only the rest is counted per call: as
a document grows, each head is counted once per ``BLOCK`` characters, and a keystroke
costs a binary search of its sorted words plus a regex over at most ``BLOCK`` or so
characters, however long the document.
"""

from __future__ import annotations

import bisect
import collections
import itertools
import re
from collections.abc import Container
from dataclasses import dataclass
from functools import lru_cache

#: A word as ``is_word_char`` sees it: letters and apostrophes.
WORD = re.compile(r"(?:[^\W\d_]|')+")

#: Sorts after every string that starts with a given prefix.
_LAST = "\U0010ffff"


@dataclass(frozen=True)
class _Words:
    """The words of one text: those not excluded, with their counts and spellings, and the
    occurrences of all of them (excluded ones too: they still count in the normaliser)."""

    keys: list[str]  # sorted keys not excluded (lower case with fold_case)
    counts: dict[str, int]  # key -> occurrences, every key
    spelling: dict[str, str]  # kept key -> its most frequent spelling
    all_keys: list[str]  # sorted keys, excluded ones too
    cumulative: list[int]  # [len(all_keys) + 1]: occurrences of all_keys[:i]

    def kept(self, match: str) -> list[str]:
        """The kept keys that start with ``match``."""
        start = bisect.bisect_left(self.keys, match)
        return self.keys[start:bisect.bisect_left(self.keys, match + _LAST, lo=start)]

    def total(self, match: str) -> int:
        """Occurrences of all the words that start with ``match``, ``match`` itself not counted."""
        start = bisect.bisect_left(self.all_keys, match)
        end = bisect.bisect_left(self.all_keys, match + _LAST, lo=start)
        return self.cumulative[end] - self.cumulative[start] - self.counts.get(match, 0)


def _count_words(document: str, fold_case: bool, exclude: Container[str]) -> _Words:
    spellings: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for found in WORD.finditer(document):
        word = found.group()
        spellings[word.lower() if fold_case else word][word] += 1
    all_keys = sorted(spellings)
    counts = {key: spellings[key].total() for key in all_keys}
    keys = [key for key in all_keys if key not in exclude]
    return _Words(keys, counts, {key: spellings[key].most_common(1)[0][0] for key in keys}, all_keys,
                  list(itertools.accumulate((counts[key] for key in all_keys), initial=0)))


#: The counts of recent document heads (documents up to a cut; see the module docstring).
_head_words = lru_cache(maxsize=64)(_count_words)

#: Heads of documents are cut at a space before a multiple of this many characters.
BLOCK = 512


def cache_distribution(document: str, prefix: str = "", *, fold_case: bool, exclude: Container[str] = (),
                       window: int | None = None) -> dict[str, tuple[float, str]]:
    """P_cache(word | the word starts with ``prefix``) over the words of ``document`` (of about
    its last ``window`` characters: those before its cached head's end, plus the rest).

    Returns word key -> (probability, the word's most frequent spelling). With
    ``fold_case`` keys are lower case and ``prefix`` matches any casing; words equal to the
    prefix are left out (a suggestion never repeats what was typed). Words in ``exclude``
    (hashable: it is part of the cache key) are left out too, after normalising (their
    probability is not given to the others). Empty when no word of the document extends
    the prefix.
    """
    cut = max(0, document.rfind(" ", 0, len(document) // BLOCK * BLOCK))
    head = document[max(0, cut - window):cut] if window is not None else document[:cut]
    match = prefix.lower() if fold_case else prefix
    parts = (_head_words(head, fold_case, exclude), _count_words(document[cut:], fold_case, exclude))
    kept: dict[str, int] = {}
    spelling: dict[str, str] = {}
    for words in parts:
        for key in words.kept(match):
            kept[key] = kept.get(key, 0) + words.counts[key]
            spelling.setdefault(key, words.spelling[key])
    kept.pop(match, None)
    if not kept:
        return {}
    total = sum(words.total(match) for words in parts)
    return {key: (n / total, spelling[key]) for key, n in kept.items()}
