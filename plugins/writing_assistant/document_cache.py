"""The cache model of predictive text: words of the document so far are likely to come again.

A character model trained on other books has not met this document's names and subjects;
after ``Sir Walter Elliot`` has been typed twice, ``El`` should offer ``Elliot``. The
cache distribution over the next word is the relative frequency of the document's words
(those matching the typed prefix), mixed with the language model's:
P(w) = (1 - weight) P_lm(w) + weight P_cache(w) (Kuhn & De Mori, 1990).

The words of a document are counted once per document text (an LRU of the last few): in
a session the text before the word being typed stays the same keystroke after keystroke,
so a document is scanned once per word, and each keystroke is a binary search of its
sorted words.
"""

from __future__ import annotations

import bisect
import collections
import re
from collections.abc import Container
from dataclasses import dataclass
from functools import lru_cache

#: A word as ``is_word_char`` sees it: letters and apostrophes.
WORD = re.compile(r"(?:[^\W\d_]|')+")


@dataclass(frozen=True)
class _Words:
    keys: list[str]  # sorted word keys (lower case with fold_case)
    spellings: dict[str, collections.Counter[str]]  # key -> how often each spelling occurs


@lru_cache(maxsize=64)
def _words(document: str, fold_case: bool) -> _Words:
    spellings: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for found in WORD.finditer(document):
        word = found.group()
        spellings[word.lower() if fold_case else word][word] += 1
    return _Words(sorted(spellings), dict(spellings))


def cache_distribution(document: str, prefix: str = "", *, fold_case: bool,
                       exclude: Container[str] = ()) -> dict[str, tuple[float, str]]:
    """P_cache(word | the word starts with ``prefix``) over the words of ``document``.

    Returns word key -> (probability, the word's most frequent spelling). With
    ``fold_case`` keys are lower case and ``prefix`` matches any casing; words equal to the
    prefix are left out (a suggestion never repeats what was typed). Words in ``exclude``
    are left out too, after normalising (their probability is not given to the others).
    Empty when no word of the document extends the prefix.
    """
    words = _words(document, fold_case)
    match = prefix.lower() if fold_case else prefix
    start = bisect.bisect_left(words.keys, match)
    end = bisect.bisect_left(words.keys, match + "\U0010ffff", lo=start)  # keys that start with match
    counts = {key: words.spellings[key] for key in words.keys[start:end] if key != match}
    total = sum(sum(c.values()) for c in counts.values())
    return {key: (sum(c.values()) / total, c.most_common(1)[0][0]) for key, c in counts.items() if key not in exclude}
