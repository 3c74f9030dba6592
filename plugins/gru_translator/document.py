"""Documents: a text of several sentences or paragraphs, translated sentence by sentence.

The model was trained on sentences, so a longer text is cut into sentences, every sentence
of every text of a call is translated in one batch, and each text is put back together
with its own whitespace and line breaks between the translated sentences.

A sentence ends at a line break, or where the corpus's rule for English ends one
(:mod:`.corpus.sentences`: ``.``, ``!`` or ``?`` followed by white space and a capital
letter, digit or opening quote, unless after a known abbreviation or an ellipsis), so
serving cuts text the way the training pairs were cut.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .corpus.sentences import BOUNDARY, ends_without_boundary

_LINE_BREAK = re.compile(r"[ \t]*(?:\r\n|\r|\n)\s*")


@dataclass(frozen=True)
class Document:
    """A text cut into ``sentences``; ``separators`` has one more item: the text is
    ``separators[0] + sentences[0] + separators[1] + ... + sentences[-1] + separators[-1]``."""

    sentences: tuple[str, ...]
    separators: tuple[str, ...]

    def join(self, translations: list[str]) -> str:
        """The document with each sentence replaced by its translation, whitespace kept."""
        if len(translations) != len(self.sentences):
            raise ValueError(f"{len(translations)} translations for {len(self.sentences)} sentences")
        parts = [self.separators[0]]
        for translation, separator in zip(translations, self.separators[1:], strict=True):
            parts += [translation, separator]
        return "".join(parts)


def split_document(text: str) -> Document:
    """``text`` cut into sentences (see the module docstring)."""
    sentences: list[str] = []
    separators: list[str] = []
    lead = len(text) - len(text.lstrip())
    separators.append(text[:lead])
    position = lead
    body = text.rstrip()
    while position < len(body):
        line_end = _LINE_BREAK.search(body, position)
        end = line_end.start() if line_end else len(body)
        start = position
        for gap in BOUNDARY.finditer(body, position, end):
            if ends_without_boundary(body[start: gap.start()], "en"):
                continue
            sentences.append(body[start: gap.start()])
            separators.append(gap.group(0))
            start = gap.end()
        sentences.append(body[start:end])
        separators.append(line_end.group(0) if line_end else "")
        position = line_end.end() if line_end else len(body)
    separators[-1] += text[max(len(body), lead):]
    return Document(tuple(sentences), tuple(separators))
