"""Documentation translated paragraph by paragraph: HTML (and Mallard) blocks and their alignment.

A page is read into its text blocks (``<p>``, ``<h1>``–``<h6>``, ``<td>``/``<th>``,
``<li>``, ``<dt>``/``<dd>``, ``<caption>``, and Mallard's ``<title>``) in document order,
each keyed by its tag and ``id``. Code (``<pre>``, ``<script>``, ``<style>``, Mallard's
``<screen>``), page furniture and metadata (``<head>``, ``<header>``, ``<nav>``,
``<aside>``, ``<footer>``, Mallard's ``<info>``) and elements marked ``hidden`` are left
out. An English page and its German translation are aligned block by block when their key
sequences are the same (a translation made from the same source keeps every block), and
otherwise around the ``id`` values that occur once on each side and along the longest
common stretches of tags between them (see :func:`align_blocks`).
"""

from __future__ import annotations

from dataclasses import dataclass
from difflib import SequenceMatcher
from html.parser import HTMLParser

from .filters import Pair, normalise

BLOCKS = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6", "td", "th", "li", "dt", "dd", "caption", "title"})
SKIPPED = frozenset({"pre", "script", "style", "head", "header", "nav", "aside", "footer", "noscript", "button",
                     "select", "textarea", "info", "screen"})
#: The least difflib ratio of two runs' key sequences for their blocks to be paired (see ``_align_run``).
MIN_SIMILARITY = 0.9
VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
                  "wbr"})


@dataclass(frozen=True)
class Block:
    """One text block of a page: its tag, its ``id`` attribute (or "") and its text."""

    tag: str
    id: str
    text: str

    @property
    def key(self) -> tuple[str, str]:
        return self.tag, self.id


class _BlockParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[Block] = []
        self._open: list[tuple[str, str, list[str]]] = []  # (tag, id, text parts) of the open blocks
        self._skip: list[str] = []  # tags of the open skipped elements, outermost first

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in VOID:
            if tag == "br" and self._open and not self._skip:
                self._open[-1][2].append(" ")
            return
        attributes = dict(attrs)
        if self._skip:
            if tag == self._skip[0]:
                self._skip.append(tag)
            return
        if tag in SKIPPED or "hidden" in attributes:
            self._skip.append(tag)
        elif tag in BLOCKS:
            self._open.append((tag, attributes.get("id") or "", []))

    def handle_endtag(self, tag: str) -> None:
        if self._skip:
            if tag == self._skip[0]:
                self._skip.pop()
            return
        if tag in BLOCKS and any(open_tag == tag for open_tag, _, _ in self._open):
            while self._open:
                open_tag, block_id, parts = self._open.pop()
                text = normalise("".join(parts))
                if text:
                    self.blocks.append(Block(open_tag, block_id, text))
                if open_tag == tag:
                    break

    def handle_data(self, data: str) -> None:
        if self._open and not self._skip:
            self._open[-1][2].append(data)


def html_blocks(page: str) -> list[Block]:
    """The text blocks of an HTML page, in the order their elements close."""
    parser = _BlockParser()
    parser.feed(page)
    parser.close()
    return parser.blocks


def align_blocks(english: list[Block], german: list[Block]) -> list[Pair]:
    """(english, german) texts of the blocks of a page and its translation.

    Pages with the same key sequence align block by block. Otherwise the ``id`` values that
    occur once on each side (with the same tag, in the same order) are anchors: each anchor
    block pairs with its namesake, and in the runs of blocks between two anchors the blocks
    in the longest common stretches of key sequence pair up (:func:`_align_run`).
    """
    if [b.key for b in english] == [b.key for b in german]:
        return [(e.text, g.text) for e, g in zip(english, german, strict=True)]
    unique_de = _unique_ids(german)
    anchors: list[tuple[int, int]] = []  # (english index, german index), increasing on both sides
    for index, block in _unique_ids(english).values():
        found = unique_de.get(block.id)
        if found is not None and found[1].tag == block.tag and (not anchors or found[0] > anchors[-1][1]):
            anchors.append((index, found[0]))
    pairs: list[Pair] = []
    previous = (-1, -1)
    for anchor in [*anchors, (len(english), len(german))]:
        pairs += _align_run(english[previous[0] + 1: anchor[0]], german[previous[1] + 1: anchor[1]])
        if anchor[0] < len(english):
            pairs.append((english[anchor[0]].text, german[anchor[1]].text))
        previous = anchor
    return pairs


def _align_run(english: list[Block], german: list[Block]) -> list[Pair]:
    """The blocks of two runs that sit in the longest common stretches of their key sequences
    (difflib's matching blocks); a block inserted or left out on one side costs only itself. Runs
    whose key sequences are less than ``MIN_SIMILARITY`` alike (a partial translation, a page
    restructured since) give nothing: their common stretches are as likely chance as translation."""
    matcher = SequenceMatcher(a=[b.key for b in english], b=[b.key for b in german], autojunk=False)
    if matcher.ratio() < MIN_SIMILARITY:
        return []
    return [(english[i + k].text, german[j + k].text) for i, j, size in matcher.get_matching_blocks()
            for k in range(size)]


def _unique_ids(blocks: list[Block]) -> dict[str, tuple[int, Block]]:
    """The blocks whose ``id`` occurs once, with their index, in page order."""
    seen: dict[str, list[tuple[int, Block]]] = {}
    for index, block in enumerate(blocks):
        if block.id:
            seen.setdefault(block.id, []).append((index, block))
    return {key: found[0] for key, found in seen.items() if len(found) == 1}
