"""The cache model of predictive text: words of the document so far are likely to come again.

A character model trained on other books has not met this document's names and subjects;
after ``Sir Walter Elliot`` has been typed twice, ``El`` should offer ``Elliot``. The
cache distribution over the next word is the relative frequency of the document's words
(those matching the typed prefix), mixed with the language model's:
P(w) = (1 - weight) P_lm(w) + weight P_cache(w) (Kuhn & De Mori, 1990).
"""

from __future__ import annotations

import collections
import re

#: A word as ``is_word_char`` sees it: letters and apostrophes.
WORD = re.compile(r"(?:[^\W\d_]|')+")


def cache_distribution(document: str, prefix: str = "", *, fold_case: bool) -> dict[str, tuple[float, str]]:
    """P_cache(word | the word starts with ``prefix``) over the words of ``document``.

    Returns word key -> (probability, the word's most frequent spelling). With
    ``fold_case`` keys are lower case and ``prefix`` matches any casing; words equal to the
    prefix are left out (a suggestion never repeats what was typed). Empty when no word
    of the document extends the prefix.
    """
    match = prefix.lower() if fold_case else prefix
    spellings: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for found in WORD.finditer(document):
        word = found.group()
        key = word.lower() if fold_case else word
        if key.startswith(match) and key != match:
            spellings[key][word] += 1
    total = sum(sum(c.values()) for c in spellings.values())
    return {key: (sum(c.values()) / total, c.most_common(1)[0][0]) for key, c in spellings.items()}
