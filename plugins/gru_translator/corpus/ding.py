"""The Ding dictionary (Debian ``trans-de-en``; TU Chemnitz, GPL-2+): example sentences and phrases.

``usr/share/trans/de-en`` holds one entry per line, ``German :: English``. Both sides are
split into sub-entries at ``" | "`` (aligned by position; lines whose sides have a
different number of sub-entries are skipped), and each sub-entry into alternatives at
``"; "`` (zipped when both sides have as many, otherwise first with first). A pair is an
example sentence when, after cleaning, both sides have 3+ words, end in ``.``, ``!`` or
``?`` and the English side starts with a capital. The multi-word phrases (2+ words a
side, not sentences, no ``sb.``/``sth.``/``jdm.``/``etw.``-style placeholders) are kept
apart as training-only data.

Cleaning: annotations in ``{}``, ``[]`` and ``()`` are removed; ``a/b`` and ``a / b``
alternatives keep their first word.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from .filters import Pair, normalise

PACKAGE = "trans-de-en"
FILE = "usr/share/trans/de-en"

_ANNOTATION = re.compile(r"\s*(\{[^{}]*\}|\[[^\[\]]*\]|\([^()]*\))")
_SLASH = re.compile(r"(\S+)\s?/\s?\S+")
#: Dictionary placeholders ("to give sb. sth.", "jdm. etw. geben") and leftover markup.
_PLACEHOLDER = re.compile(r"\b(sb|sth|sb's|sth's|jd|jdm|jdn|jds|etw|o\.\s?s|so)\.|[<>{}\[\]()/=+]|\.\.\.")


def clean_ding(text: str) -> str:
    """Remove ``{}``/``[]``/``()`` annotations and keep the first of ``a/b`` alternatives."""
    previous = None
    while previous != text:
        previous, text = text, _ANNOTATION.sub("", text)
    while "/" in text:
        replaced = _SLASH.sub(r"\1", text)
        if replaced == text:
            break
        text = replaced
    return normalise(text)


def is_sentence(text: str) -> bool:
    return len(text.split()) >= 3 and text[-1] in ".!?"


def parse_ding(lines: Iterable[str]) -> Iterator[Pair]:
    """(english, german) example sentences of the Ding dictionary lines (``German :: English``)."""
    for en, de in ding_entries(lines):
        if is_sentence(en) and is_sentence(de) and en[0].isupper():
            yield en, de


def parse_ding_phrases(lines: Iterable[str]) -> Iterator[Pair]:
    """(english, german) multi-word phrases of the Ding dictionary: 2+ words a side, not
    sentences, without placeholders such as ``sb.``, ``sth.``, ``jdm.``, ``etw.``."""
    for en, de in ding_entries(lines):
        if min(len(en.split()), len(de.split())) < 2 or is_sentence(en) or is_sentence(de):
            continue
        if not (_PLACEHOLDER.search(en) or _PLACEHOLDER.search(de)):
            yield en, de


def ding_entries(lines: Iterable[str]) -> Iterator[Pair]:
    """Every cleaned (english, german) alternative of the Ding dictionary lines (``German :: English``)."""
    for line in lines:
        if line.startswith("#") or " :: " not in line:
            continue
        german, english = line.split(" :: ", 1)
        de_subs, en_subs = german.split(" | "), english.split(" | ")
        if len(de_subs) != len(en_subs):
            continue
        for de_sub, en_sub in zip(de_subs, en_subs, strict=True):
            de_alts, en_alts = de_sub.split("; "), en_sub.split("; ")
            alternatives = zip(en_alts, de_alts, strict=True) if len(de_alts) == len(en_alts) \
                else [(en_alts[0], de_alts[0])]
            for en_raw, de_raw in alternatives:
                en, de = clean_ding(en_raw), clean_ding(de_raw)
                if en and de:
                    yield en, de
