"""Cleaning and filtering of (english, german) pairs: normalisation, markup, accelerators,
placeholders, a language check, the length filter and the deduplication key."""

from __future__ import annotations

import html
import re
import unicodedata
from collections import Counter
from functools import cache

Pair = tuple[str, str]  # (english, german)

MAX_WORDS = 60
MAX_RATIO = 2.0
#: Added to both lengths before their ratio is taken, so that short UI strings ("Set" → "Festlegen") pass.
RATIO_SLACK = 10
#: The languages the identifier chooses between. Measured on 20,000 UI and documentation pairs
#: of 3+ words: among 13 European languages it rejected 1,022 pairs, mostly good short strings
#: taken for Latin or Spanish ("Select Vertex Color"); between English and German only 261,
#: mostly German sides left in English (GCC's untranslated internal errors, time zone names).
LANGUAGE_SET = ("en", "de")

_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "‟": '"', "«": '"', "»": '"', "‘": "'", "’": "'",
                         "‚": "'", "`": "'", "´": "'", "\u00a0": " ", "\u202f": " ", "\u2009": " ",
                         "\u200b": "", "\u00ad": ""})
_TAG = re.compile(r"</?[A-Za-z][\w:.-]*(?:\s+[^<>]*)?/?>")
#: printf (``%s``, ``%1$d``, ``%(name)s``, ``%-5.2f``, ``%lu``), Qt/KDE (``%1``), brace (``{0}``, ``{name}``),
#: ``$(name)``/``${name}`` and LibreOffice's ``$name$`` and ``%PRODUCTNAME`` placeholders.
PLACEHOLDER = re.compile(r"%[A-Z]{2,}\w*|"
                         r"%(?:\d+\$)?(?:\([\w.-]+\))?[-+#0']*(?:\d+|\*)?(?:\.(?:\d+|\*))?(?:hh|h|ll|l|L|z|j|t|I64)?"
                         r"[diouxXeEfFgGaAcspn%@]|%\d+|\{[\w.:!-]*\}|\$\w+\$|\$\{\w+\}|\$\(\w+\)")
_ACCEL_UNDERSCORE = re.compile(r"(?<![\w%$])_(?=[^\W_])")
_ACCEL_AMPERSAND = re.compile(r"&(?!&|#?\w+;)(?=[^\W_])")
_ACCEL_TILDE = re.compile(r"(?<![\w/])~(?=[^\W_])|(?<=[^\W\d_])~(?=[^\W\d_])")


def normalise(text: str) -> str:
    """ASCII quotes and apostrophes, no soft hyphens or zero-width spaces, single spaces, no space before
    final punctuation."""
    text = re.sub(r"\s+", " ", text.translate(_QUOTES)).strip()
    return re.sub(r" ([.!?,;:])(?=$| )", r"\1", text)


def strip_markup(text: str) -> str:
    """Text without HTML/XML tags, character references resolved (``&lt;`` → ``<``)."""
    return html.unescape(_TAG.sub(" ", text)) if "<" in text or "&" in text else text


def strip_accelerators(text: str) -> str:
    """Text without keyboard-accelerator marks: GTK ``_File``, Qt/KDE ``&File`` (``&&`` is a literal ``&``)
    and LibreOffice ``~File``; format placeholders and ``~/`` paths are left as they are."""
    spans = [m.span() for m in PLACEHOLDER.finditer(text)]

    def outside(pattern: re.Pattern, replacement: str, value: str) -> str:
        if not spans:
            return pattern.sub(replacement, value)
        return pattern.sub(lambda m: m.group() if any(a <= m.start() < b for a, b in spans) else replacement, value)

    text = outside(_ACCEL_UNDERSCORE, "", text)
    text = outside(_ACCEL_AMPERSAND, "", text).replace("&&", "&")
    return _ACCEL_TILDE.sub("", text)


def placeholders(text: str) -> Counter[str]:
    """The format placeholders of ``text`` (a multiset; ``%%`` is not one)."""
    return Counter(m for m in PLACEHOLDER.findall(text) if m != "%%")


def same_placeholders(pair: Pair) -> bool:
    """Whether both sides carry the same placeholders (printf placeholders with a position, ``%1$s``,
    compare by position, as translators may reorder them)."""
    return placeholders(pair[0]) == placeholders(pair[1])


def fold(text: str) -> str:
    """The deduplication key of a text: case-folded, accents kept, only letters and digits."""
    return "".join(ch for ch in unicodedata.normalize("NFKC", text).casefold() if ch.isalnum())


def keep(pair: Pair) -> bool:
    """Length filter: at most ``MAX_WORDS`` words a side, ratio of the character lengths (each plus
    ``RATIO_SLACK``) within ``MAX_RATIO``."""
    en, de = pair
    if max(len(en.split()), len(de.split())) > MAX_WORDS:
        return False
    return 1 / MAX_RATIO <= (len(en) + RATIO_SLACK) / (len(de) + RATIO_SLACK) <= MAX_RATIO


@cache
def _identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE)
    identifier.set_languages(list(LANGUAGE_SET))
    return identifier


def language(text: str) -> str:
    """The language (ISO 639-1) py3langid finds for ``text`` among :data:`LANGUAGE_SET`, placeholders aside."""
    return _identifier().classify(PLACEHOLDER.sub(" ", text))[0]


def right_languages(pair: Pair) -> bool:
    """Whether the English side is identified as English and the German side as German."""
    return language(pair[0]) == "en" and language(pair[1]) == "de"
