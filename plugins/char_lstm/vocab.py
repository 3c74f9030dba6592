"""Character vocabulary: two special tokens, then one id per known character.

Ids: ``0`` = ``<bos>`` (fed before any text; also starts every novel in training),
``1`` = ``<unk>`` (any character outside the vocabulary), then the known characters in
sorted order. There is no end-of-text token (``eos_id`` is None): the corpus has no
natural document end a generation should stop at.

Unknown-character policy: ``encode`` never raises; each unknown character becomes
``<unk>`` and the distinct unknown characters are reported. Training maps rare
characters (fewer than ``min_count`` occurrences in the training text) to ``<unk>`` too,
so the model learns a small probability for it. ``decode`` renders special tokens as "".
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import torch

BOS = "<bos>"
UNK = "<unk>"
SPECIALS = (BOS, UNK)


class CharVocab:
    """Maps characters to ids and back (implements ``rnnserve.plugin_api.Vocabulary``)."""

    def __init__(self, chars: Sequence[str]):
        if len(set(chars)) != len(chars) or any(len(c) != 1 for c in chars):
            raise ValueError("vocabulary characters must be distinct single characters")
        self.chars = list(chars)
        self._ids = {c: i + len(SPECIALS) for i, c in enumerate(self.chars)}
        self._lookup = ["", "", *self.chars]

    @classmethod
    def build(cls, text: str, min_count: int = 1) -> CharVocab:
        """Vocabulary of the characters that occur at least ``min_count`` times in ``text``."""
        counts = Counter(text)
        return cls(sorted(c for c, n in counts.items() if n >= min_count))

    @property
    def size(self) -> int:
        return len(SPECIALS) + len(self.chars)

    @property
    def bos_id(self) -> int:
        return 0

    @property
    def unk_id(self) -> int:
        return 1

    @property
    def eos_id(self) -> int | None:
        return None

    def encode(self, text: str) -> tuple[list[int], list[str]]:
        """Ids of ``text`` (unknown characters -> ``unk_id``) and the distinct unknown characters."""
        ids = [self._ids.get(c, 1) for c in text]
        unknown = list(dict.fromkeys(c for c in text if c not in self._ids))
        return ids, unknown

    def encode_tensor(self, text: str) -> torch.Tensor:
        """[len(text)] int64 ids of ``text``; faster than ``encode`` for a whole corpus."""
        if not text:
            return torch.zeros(0, dtype=torch.int64)
        table = torch.full((max(map(ord, text), default=0) + 1,), self.unk_id, dtype=torch.int64)
        for c, i in self._ids.items():
            if ord(c) < len(table):
                table[ord(c)] = i
        codes = torch.frombuffer(bytearray(text.encode("utf-32-le")), dtype=torch.int32).long()
        return table[codes]

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(self._lookup[i] if 0 <= i < len(self._lookup) else "" for i in ids)

    def to_dict(self) -> dict:
        return {"specials": list(SPECIALS), "chars": self.chars}

    @classmethod
    def from_dict(cls, raw: dict) -> CharVocab:
        if list(raw.get("specials", [])) != list(SPECIALS):
            raise ValueError(f"unsupported vocabulary specials {raw.get('specials')}, expected {SPECIALS}")
        return cls(raw["chars"])

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> CharVocab:
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
