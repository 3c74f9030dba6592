"""Protected spans: text that must come through a translation unchanged.

Numbers, URLs, e-mail addresses, file paths, format placeholders (``%s``, ``%(name)s``,
``{0}``, ``{name}``) and simple markup tags (``<b>``, ``</a>``, ``<br/>``) are not
translated: a subword model would split them into pieces and could change any of them.
Before decoding each is replaced by a mask token ``⟦i⟧`` (i-th span of the source), one
SentencePiece user-defined symbol each (:data:`MASK_TOKENS`), and after decoding every mask
token is replaced by its span again (a mask token already in the text is itself a span).

Training sees the same masks: a pair whose two sides hold the same spans (as a multiset)
is masked on both sides, the German side numbered by the English order (:func:`mask_pair`),
so the model learns to copy ``⟦i⟧`` where its span belongs. A pair whose spans differ
(``3`` in English, ``drei`` in German) is trained unmasked.

Restoring never loses a span: one the decoder dropped is appended at the end, and a mask
token the source did not have is removed.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

#: At most this many spans of one text are masked (the rest stay as they are).
MAX_SPANS = 16
MASK_TOKENS = tuple(f"⟦{i}⟧" for i in range(MAX_SPANS))
_MASK = re.compile(r"⟦(\d+)⟧")

#: One alternative per kind of span, most specific first (a URL before the path inside it).
_SPAN = re.compile("|".join((
    r"⟦\d+⟧",                                                       # a mask token in the text itself
    r"\b(?:https?|ftp)://[^\s<>\"']*[^\s<>\"'.,;:!?)\]]",          # URL
    r"\bwww\.[\w-]+(?:\.[\w-]+)+(?:/[^\s<>\"']*[^\s<>\"'.,;:!?)\]])?",  # www.example.org/...
    r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b",                             # e-mail
    r"(?<![\w/])(?:~|\.{1,2})?(?:/[\w.+-]+)+/?",                     # /usr/share/doc, ~/x, ./a.out
    r"\b[A-Za-z]:\\(?:[\w .+-]+\\)*[\w.+-]+",                        # C:\Program Files\x.exe
    r"%(?:\([\w.-]+\))?[-+ #0]*\d*(?:\.\d+)?[hlLqjzt]*[diouxXeEfFgGcrsa%]",  # printf: %s %5.2f %(name)s
    r"\{\d*(?:[\w.\[\]]+)?(?:![rsa])?(?::[^{}]*)?\}",                # str.format: {0} {name} {:.2f}
    r"\$\{?\w+\}?",                                                  # shell variables $HOME ${x}
    r"</?[A-Za-z][\w-]*(?:\s+[\w-]+(?:=(?:\"[^\"]*\"|'[^']*'|[^\s>]+))?)*\s*/?>",  # <b> </a> <br/>
    r"(?<![\w.])[-+]?\d+(?:[.,:]\d+)*(?:\.\d+)?%?(?![\w])",          # 42 3.14 1,000 10:30 50%
)))


@dataclass(frozen=True)
class Masked:
    """A text with its protected spans replaced by mask tokens: ``spans[i]`` is ``⟦i⟧``."""

    text: str
    spans: tuple[str, ...]


def find_spans(text: str) -> list[str]:
    """The protected spans of ``text``, in order."""
    return [m.group(0) for m in _SPAN.finditer(text)]


def mask(text: str) -> Masked:
    """``text`` with its first :data:`MAX_SPANS` protected spans replaced by ``⟦0⟧``, ``⟦1⟧``, ..."""
    spans: list[str] = []

    def replace(match: re.Match[str]) -> str:
        if len(spans) == MAX_SPANS:
            return match.group(0)
        spans.append(match.group(0))
        return MASK_TOKENS[len(spans) - 1]

    return Masked(_SPAN.sub(replace, text), tuple(spans))


def unmask(translation: str, spans: tuple[str, ...]) -> str:
    """``translation`` with every mask token replaced by its span; spans the decoder dropped
    are appended at the end, mask tokens of no span removed."""
    seen: set[int] = set()

    def restore(match: re.Match[str]) -> str:
        i = int(match.group(1))
        if i >= len(spans):
            return ""
        seen.add(i)
        return spans[i]

    text = _MASK.sub(restore, translation)
    missing = [span for i, span in enumerate(spans) if i not in seen]
    text = re.sub(r" {2,}", " ", text).strip()
    return " ".join([text, *missing]) if missing else text


def mask_pair(english: str, german: str) -> tuple[str, str] | None:
    """Both sides masked alike (the German side numbered by the English order), or None when
    their spans differ or there are none."""
    source = mask(english)
    if not source.spans or Counter(find_spans(german)) != Counter(source.spans):
        return None
    number = {span: i for i, span in reversed(list(enumerate(source.spans)))}
    used: Counter[str] = Counter()

    def replace(match: re.Match[str]) -> str:
        span = match.group(0)
        # the k-th occurrence of a repeated span takes the k-th English index of that span
        indices = [i for i, s in enumerate(source.spans) if s == span]
        index = indices[used[span]] if used[span] < len(indices) else number[span]
        used[span] += 1
        return MASK_TOKENS[index]

    return source.text, _SPAN.sub(replace, german)


def mask_pairs(english: list[str], german: list[str]) -> tuple[list[str], list[str]]:
    """Every pair through :func:`mask_pair`; pairs it leaves unmasked stay as they are."""
    pairs = [mask_pair(e, d) or (e, d) for e, d in zip(english, german, strict=True)]
    return [e for e, _ in pairs], [d for _, d in pairs]


def has_masks(pieces: list[str]) -> bool:
    """Whether a vocabulary of ``pieces`` holds every mask token (as SentencePiece user-defined symbols)."""
    return set(MASK_TOKENS) <= set(pieces)
