"""The readers of ``rnnserve data english`` (:mod:`.english`): a Debian package's files to documents.

A document is ``(id, raw paragraphs)``: an HTML or Mallard page (:func:`page_documents`, its
``<p>`` blocks), an Info node (:func:`info_documents`, its unindented paragraphs), a man page
rendered by GNU roff from an unpacked ``groff-base`` (:class:`Groff`, :func:`man_documents`,
the paragraphs at the body indentation of its prose sections), or a gettext catalogue's
English messages (:func:`catalogue_documents`). Normalising and the prose test come after,
in :mod:`.english`.
"""

from __future__ import annotations

import bz2
import gzip
import os
import re
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rnnserve_plugins.debian_packages import DebPackage

Document = tuple[str, list[str]]  # (document id, raw paragraphs)


def html_paragraphs(page: str) -> list[str]:
    """The ``<p>`` blocks of an HTML or Mallard page (code, tables, lists, navigation left out)."""
    from rnnserve_plugins.gru_translator.corpus.documents import html_blocks

    return [block.text for block in html_blocks(page) if block.tag == "p"]


_INFO_XREF = re.compile(r"\*([Nn])ote\s+([^:]+?)::")
_INFO_XREF_LABELLED = re.compile(r"\*([Nn])ote\s+([^:]+?):\s*(?:\([^)]*\))?[^.,:]*[.,]")


def info_paragraphs(node: str) -> list[str]:
    """Prose paragraphs of one Info node: blank-line separated blocks at the left margin (the first line
    may be indented by 3, as makeinfo does; examples and definitions are indented further) that are not menus
    or underlined headings; cross references become their names (``*note Foo::`` → ``see Foo``)."""
    out = []
    for block in re.split(r"\n\s*\n", node):
        lines = block.split("\n")
        first = lines[0].removeprefix("   ")  # makeinfo indents a paragraph's first line by 3
        if not block.strip() or any(not line or line[0] in " *" for line in [first, *lines[1:]]):
            continue
        if len(lines) >= 2 and re.fullmatch(r"[*=.-]+", lines[-1].strip()):  # an underlined heading
            continue
        text = " ".join(line.strip() for line in lines)
        text = _INFO_XREF.sub(lambda m: ("See " if m.group(1) == "N" else "see ") + m.group(2), text)
        text = _INFO_XREF_LABELLED.sub(lambda m: ("See " if m.group(1) == "N" else "see ") + m.group(2) + ".", text)
        out.append(text)
    return out


def info_documents(name: str, content: bytes) -> Iterator[Document]:
    """Documents (one per node) of an Info file (``.info``, ``.info-N``, gzipped or not)."""
    text = (gzip.decompress(content) if name.endswith(".gz") else content).decode("utf-8", "replace")
    for index, node in enumerate(text.split("\x1f")):
        header, _, body = node.lstrip("\n").partition("\n")
        if not header.startswith("File:") or "Node: Top," in header:
            continue
        paragraphs = info_paragraphs(body)
        if paragraphs:
            yield f"{name}#{index}", paragraphs


#: Man page sections that are not prose (or are boilerplate).
MAN_SKIPPED_SECTIONS = frozenset({
    "NAME", "SYNOPSIS", "EXAMPLE", "EXAMPLES", "FILES", "SEE ALSO", "COLOPHON", "AUTHOR", "AUTHORS", "COPYRIGHT",
    "REPORTING BUGS", "ATTRIBUTES", "STANDARDS", "CONFORMING TO", "LIBRARY", "OPTIONS", "ENVIRONMENT",
    "EXIT STATUS", "RETURN VALUE", "ERRORS", "SUMMARY"})
MAN_BODY_INDENT = 7


def man_paragraphs(rendered: str) -> list[str]:
    """Prose paragraphs of a man page rendered by groff on one very long line per paragraph: those
    at the body indentation of a kept section, with no run of 3+ spaces (a table or a tagged item)."""
    out, section = [], ""
    for line in rendered.split("\n"):
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip(" "))
        if indent == 0:
            section = line.strip()
            continue
        if section in MAN_SKIPPED_SECTIONS or indent != MAN_BODY_INDENT or "   " in line.strip():
            continue
        out.append(line.strip())
    return out


class Groff:
    """GNU roff run from an unpacked ``groff-base`` package (nothing installed)."""

    def __init__(self, deb: DebPackage, root: Path):
        subprocess.run(["dpkg-deb", "-x", str(deb.path), str(root)], check=True)
        share = next((root / "usr/share/groff").glob("[0-9]*"))
        self.binary = root / "usr/bin/groff"
        self.env = {**os.environ, "GROFF_BIN_PATH": str(root / "usr/bin"), "GROFF_FONT_PATH": str(share / "font"),
                    "GROFF_TMAC_PATH": f"{share / 'tmac'}:{root / 'etc/groff'}", "GROFF_NO_SGR": "1"}

    def render(self, source: bytes) -> str:
        """Plain UTF-8 text of a man page: no hyphenation, one paragraph per line (a 2,000-column line)."""
        run = subprocess.run([str(self.binary), "-t", "-man", "-Tutf8", "-P-cbuo", "-rHY=0", "-rLL=2000n",
                              "-rcR=1"], input=source, capture_output=True, env=self.env, timeout=60)
        return run.stdout.decode("utf-8", "replace")


def man_documents(pages: list[tuple[str, bytes]], groff: Groff) -> Iterator[Document]:
    """Documents (one per page) of man page sources; ``.so`` links are skipped."""
    def one(item: tuple[str, bytes]) -> Document:
        name, content = item
        source = gzip.decompress(content) if name.endswith(".gz") else content
        if source.lstrip().startswith(b".so "):
            return name, []
        return name, man_paragraphs(groff.render(source))

    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
        yield from (doc for doc in pool.map(one, pages) if doc[1])


def page_documents(name: str, content: bytes) -> Iterator[Document]:
    """One document: an HTML/Mallard page (KDE's ``index.cache.bz2`` handbooks bzip2-compressed)."""
    text = (bz2.decompress(content) if name.endswith(".bz2") else content).decode("utf-8", "replace")
    paragraphs = html_paragraphs(text)
    if paragraphs:
        yield name, paragraphs


def catalogue_documents(name: str, content: bytes) -> Iterator[Document]:
    """One document: the English messages of a gettext catalogue without format placeholders (prose filtering
    keeps the sentences)."""
    from rnnserve_plugins.gru_translator.corpus.catalogues import catalogue_pairs
    from rnnserve_plugins.gru_translator.corpus.filters import PLACEHOLDER

    messages = list(dict.fromkeys(english for english, _ in catalogue_pairs(content, name)
                                  if not PLACEHOLDER.search(english)))  # no "%s", "{0}", ... to fill in
    if messages:
        yield name, messages
