"""Word vocabulary. Each token carries its leading space, so decoding is concatenation.

``'It is a truth, sir.'`` -> ``["It", " is", " a", " truth", ",", " sir", "."]``. Every
character of a text is in exactly one token, so ``decode(encode(text)) == text`` for any
text made of known tokens. Ids: 0 ``<bos>``, 1 ``<eos>`` (end of a paragraph), 2 ``<unk>``,
then the known tokens. Unknown tokens become ``<unk>`` and are reported, never raised.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

#: A word (apostrophes inside it allowed), a number, or any other single character, each
#: with at most one leading space; or one whitespace character on its own.
TOKEN = re.compile(r" ?[A-Za-z]+(?:'[A-Za-z]+)*| ?[0-9]+| ?[^\sA-Za-z0-9]|\s")
SPECIALS = ("<bos>", "<eos>", "<unk>")


def tokenize(text: str) -> list[str]:
    return TOKEN.findall(text)


class WordVocab:
    """Implements ``rnnserve.plugin_api.Vocabulary``."""

    bos_id, eos_id, unk_id = 0, 1, 2

    def __init__(self, tokens: Sequence[str]) -> None:
        self.tokens = list(tokens)
        self._ids = {token: i + len(SPECIALS) for i, token in enumerate(self.tokens)}

    @classmethod
    def build(cls, paragraphs: Iterable[str], min_count: int = 2) -> WordVocab:
        """The tokens seen at least ``min_count`` times (rarer ones will be ``<unk>``)."""
        counts = Counter(token for paragraph in paragraphs for token in tokenize(paragraph))
        return cls(sorted(token for token, n in counts.items() if n >= min_count))

    @property
    def size(self) -> int:
        return len(SPECIALS) + len(self.tokens)

    def encode(self, text: str) -> tuple[list[int], list[str]]:
        """Token ids of ``text`` and its distinct unknown tokens (without their leading space)."""
        ids, unknown = [], []
        for token in tokenize(text):
            ids.append(self._ids.get(token, self.unk_id))
            if ids[-1] == self.unk_id:
                unknown.append(token.strip() or token)
        return ids, list(dict.fromkeys(unknown))

    def decode(self, ids: Sequence[int]) -> str:
        """The text of ``ids``; special tokens decode to ""."""
        first = len(SPECIALS)
        return "".join(self.tokens[i - first] for i in ids if first <= i < self.size)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps({"specials": SPECIALS, "tokens": self.tokens}, ensure_ascii=False) + "\n",
                        encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> WordVocab:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if tuple(raw["specials"]) != SPECIALS:
            raise ValueError(f"{path}: special tokens {raw['specials']}, expected {list(SPECIALS)}")
        return cls(raw["tokens"])
