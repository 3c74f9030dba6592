"""Gettext message catalogues (``.mo``/``.po``) as (english, german) pairs, read with polib.

Each translated entry gives ``(msgid, msgstr)``; a plural entry gives ``(msgid, msgstr[0])``
and ``(msgid_plural, msgstr[1])`` (German has two forms: singular, plural). The context
(``msgctxt``) only tells entries with the same ``msgid`` apart, so it is not part of the
text. Fuzzy, obsolete and untranslated entries and the header are skipped; so are the
translator-credit entries (``Your names``, ``translator-credits``). Both sides lose their
keyboard accelerators and markup; placeholders stay as they are.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import PurePosixPath

import polib

from .filters import Pair, normalise, strip_accelerators, strip_markup

#: Where German catalogues live inside a package (``usr/share/locale/de/...``, LibreOffice's
#: ``program/resource/de/...``, Blender's ``datafiles/locale/de/...``).
CATALOGUE_PATH = re.compile(r"(^|/)de/LC_MESSAGES/[^/]+\.mo$")
_CREDITS = {"translator-credits", "translator_credits", "your names", "your emails", "name of translators",
            "email of translators"}
_KDE_CONTEXT = re.compile(r"^_: [^\n]*\n")  # KDE 3 style context inside msgid


def is_catalogue(path: str) -> bool:
    """Whether a package path is a German gettext catalogue."""
    return CATALOGUE_PATH.search(path) is not None


def clean_message(text: str) -> str:
    """One line of plain text: no accelerators, no markup, normalised spacing and quotes."""
    return normalise(strip_markup(strip_accelerators(_KDE_CONTEXT.sub("", text))))


def _raw_pairs(catalogue: polib._BaseFile) -> Iterator[Pair]:
    for entry in catalogue:
        if not entry.msgid or entry.obsolete or "fuzzy" in entry.flags or entry.msgid.strip().lower() in _CREDITS:
            continue
        if entry.msgid_plural:
            forms = entry.msgstr_plural
            if forms.get(0):
                yield entry.msgid, forms[0]
            if forms.get(1):
                yield entry.msgid_plural, forms[1]
        elif entry.msgstr:
            yield entry.msgid, entry.msgstr


def catalogue_pairs(content: bytes | str, name: str = "messages.mo") -> Iterator[Pair]:
    """Cleaned (english, german) pairs of one catalogue; ``content`` is a ``.mo`` file's bytes or a ``.po``
    file's text (``name``'s suffix says which)."""
    if PurePosixPath(name).suffix == ".po":
        catalogue = polib.pofile(content if isinstance(content, str) else content.decode("utf-8"))
    else:
        catalogue = polib.mofile(content)
    for en, de in _raw_pairs(catalogue):
        en, de = clean_message(en), clean_message(de)
        if en and de:
            yield en, de
