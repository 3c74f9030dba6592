"""Rebuild the held-out slices in ``tests/data/shipped/`` from the data commands' output.

    rnnserve data austen --out runs/austen/data
    rnnserve data english --out runs/english/data
    rnnserve data en-de --out runs/en-de/data
    python -m tests.shipped.make_slices --austen runs/austen/data --english runs/english/data \
        --en-de runs/en-de/data

Each source may be given alone (``--en-de`` only, after a retrained translator's new
split; ``--en-de-split NAME`` samples ``NAME.en`` / ``NAME.de`` rather than ``test.*``).
The selections are deterministic, so the same data gives the same files; the README in
that directory records which source files (with their sha256) each came from. After
rebuilding, run ``pytest tests/shipped -k quality`` and update ``FLOORS`` in
``tests/shipped/test_shipped_quality.py`` (see its docstring).
"""

from __future__ import annotations

import argparse
import hashlib
import re
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "data" / "shipped"

#: Persuasion (test.txt, one paragraph per line): the Score slice starts at this paragraph
#: (well past the title page and chapter 1) and takes whole paragraphs up to SCORE_CHARS.
SCORE_FROM_LINE, SCORE_CHARS = 400, 4000
#: The assistant passage: a later part of Persuasion, about ASSIST_CHARS characters ending at a sentence.
ASSIST_FROM_LINE, ASSIST_CHARS = 800, 1000
#: en-de: every EN_DE_STEP-th pair of the test split (test.en / test.de), from the first.
EN_DE_STEP = 10
#: The modern-English test split (documents separated by an empty line): the Score slice is
#: whole paragraphs from the start of document MODERN_SCORE_DOC, the assistant passage starts
#: document MODERN_ASSIST_DOC (documents of at least a few sentences, counted from 0).
MODERN_SCORE_DOC, MODERN_ASSIST_DOC = 10, 25

FILES = {
    "score": "persuasion-score.txt",
    "assist": "persuasion-assist.txt",
    "en": "en-de-test.en",
    "de": "en-de-test.de",
    "words": "austen-train-words.tsv",
    "modern-score": "modern-score.txt",
    "modern-assist": "modern-assist.txt",
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def whole_paragraphs(lines: list[str], start: int, chars: int) -> str:
    """Paragraphs ``lines[start:]`` joined by newlines, as few as reach ``chars`` characters."""
    taken: list[str] = []
    for line in lines[start:]:
        taken.append(line)
        if len("\n".join(taken)) >= chars:
            break
    return "\n".join(taken)


def up_to_sentence(lines: list[str], start: int, chars: int) -> str:
    """Text from paragraph ``start`` cut after the last sentence end at or before ``chars`` characters."""
    text = "\n".join(lines[start:])[: chars + 200]
    ends = [m.end() for m in re.finditer(r"[.!?][\"']?(?=\s)", text) if m.end() <= chars]
    if not ends:
        raise ValueError(f"no sentence end in the first {chars} characters of paragraph {start}")
    return text[: ends[-1]]


def austen(data: Path) -> list[str]:
    import collections

    test = (data / "test.txt").read_text(encoding="utf-8").splitlines()
    (OUT / FILES["score"]).write_text(whole_paragraphs(test, SCORE_FROM_LINE, SCORE_CHARS) + "\n", encoding="utf-8")
    (OUT / FILES["assist"]).write_text(up_to_sentence(test, ASSIST_FROM_LINE, ASSIST_CHARS) + "\n", encoding="utf-8")
    # The unigram baseline of benchmarks/assistant.py (UnigramCompleter): word counts of the
    # training split, with the same tokenisation, most frequent first (ties in first-seen order).
    counts = collections.Counter(re.findall(r"[A-Za-z']+", (data / "train.txt").read_text(encoding="utf-8")))
    (OUT / FILES["words"]).write_text("".join(f"{w}\t{n}\n" for w, n in counts.most_common()), encoding="utf-8")
    return [
        f"- `{FILES['score']}`: *Persuasion* (the held-out test novel), paragraphs {SCORE_FROM_LINE + 1}- of "
        f"`test.txt` (whole paragraphs, at least {SCORE_CHARS:,} characters).",
        f"- `{FILES['assist']}`: *Persuasion*, from paragraph {ASSIST_FROM_LINE + 1} of `test.txt`, cut after the "
        f"last sentence end within {ASSIST_CHARS:,} characters.",
        f"- `{FILES['words']}`: word counts of `train.txt` (`[A-Za-z']+`, most frequent first): the unigram "
        "baseline of `benchmarks/assistant.py` without the 3.3 MB training text.",
        f"- from `rnnserve data austen --out runs/austen/data`: test.txt sha256 {sha256(data / 'test.txt')}, "
        f"train.txt sha256 {sha256(data / 'train.txt')}.",
        "- Licence: Jane Austen's novels are in the public domain (packaged by janeaustenr, Debian "
        "r-cran-janeaustenr).",
    ]


def documents(text: str, min_chars: int) -> list[list[str]]:
    """The documents of a ``rnnserve data english`` split (paragraph lines; an empty line between
    documents) with at least ``min_chars`` characters."""
    docs = [block.splitlines() for block in text.split("\n\n")]
    return [doc for doc in docs if len("\n".join(doc)) >= min_chars]


def english(data: Path) -> list[str]:
    docs = documents((data / "test.txt").read_text(encoding="utf-8"), 1500)
    score = whole_paragraphs(["\n".join(doc) for doc in docs], MODERN_SCORE_DOC, SCORE_CHARS)
    (OUT / FILES["modern-score"]).write_text(score + "\n", encoding="utf-8")
    (OUT / FILES["modern-assist"]).write_text(up_to_sentence(docs[MODERN_ASSIST_DOC], 0, ASSIST_CHARS) + "\n",
                                              encoding="utf-8")
    return [
        f"- `{FILES['modern-score']}`: the modern-English test split, its documents of at least 1,500 characters "
        f"from number {MODERN_SCORE_DOC} (counted from 0), whole documents up to at least {SCORE_CHARS:,} "
        "characters.",
        f"- `{FILES['modern-assist']}`: the same split, document {MODERN_ASSIST_DOC}, cut after the last sentence "
        f"end within {ASSIST_CHARS:,} characters. The assistant's baseline is PyPI wordfreq's English list.",
        f"- from `rnnserve data english --out runs/english/data`: test.txt sha256 {sha256(data / 'test.txt')}.",
        "- Licence: text of Debian documentation packages; see the english-char-lstm model card.",
    ]


def en_de(data: Path, split: str = "test") -> list[str]:
    en = (data / f"{split}.en").read_text(encoding="utf-8").splitlines()
    de = (data / f"{split}.de").read_text(encoding="utf-8").splitlines()
    if len(en) != len(de):
        raise ValueError(f"{split}.en has {len(en)} lines, {split}.de {len(de)}")
    (OUT / FILES["en"]).write_text("".join(line + "\n" for line in en[::EN_DE_STEP]), encoding="utf-8")
    (OUT / FILES["de"]).write_text("".join(line + "\n" for line in de[::EN_DE_STEP]), encoding="utf-8")
    return [
        f"- `{FILES['en']}` / `{FILES['de']}`: every {EN_DE_STEP}th pair (from the first) of the en-de test split "
        f"(`{split}.en` / `{split}.de`, {len(en[::EN_DE_STEP])} of {len(en)} pairs).",
        f"- from `rnnserve data en-de --out runs/en-de/data`: {split}.en sha256 {sha256(data / f'{split}.en')}, "
        f"{split}.de sha256 {sha256(data / f'{split}.de')}.",
        "- Licence: Ding dictionary example sentences (GPL-2.0-or-later) and Bible verses (World English Bible, "
        "Elberfelder 1932: public domain); see the en-de-gru model card.",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--austen", type=Path, help="output of `rnnserve data austen`")
    parser.add_argument("--english", type=Path, help="output of `rnnserve data english`")
    parser.add_argument("--en-de", type=Path, help="output of `rnnserve data en-de`")
    parser.add_argument("--en-de-split", default="test",
                        help="which split's SPLIT.en / SPLIT.de to sample (default: test; never train or dev)")
    args = parser.parse_args(argv)
    if args.austen is None and args.english is None and args.en_de is None:
        parser.error("give --austen, --english and/or --en-de")
    OUT.mkdir(parents=True, exist_ok=True)
    readme = OUT / "README.md"
    sections = dict.fromkeys(("austen", "english", "en-de"), "")
    if readme.exists():  # keep the section of the source not rebuilt now
        for block in readme.read_text(encoding="utf-8").split("\n## ")[1:]:
            name, _, body = block.partition("\n")
            sections[name.strip()] = body.strip("\n")
    if args.austen:
        sections["austen"] = "\n".join(austen(args.austen))
    if args.english:
        sections["english"] = "\n".join(english(args.english))
    if args.en_de:
        if args.en_de_split.startswith(("train", "dev")):
            parser.error(f"--en-de-split {args.en_de_split}: the slice must be held out (a test split)")
        sections["en-de"] = "\n".join(en_de(args.en_de, args.en_de_split))
    readme.write_text(
        "# Held-out slices for the shipped-model quality floors (tests/shipped)\n\n"
        "Written by `python -m tests.shipped.make_slices --austen runs/austen/data --english runs/english/data "
        "--en-de runs/en-de/data` "
        "from the data commands' output; none of it was trained on (word counts excepted, see below).\n"
        + "".join(f"\n## {name}\n\n{body}\n" for name, body in sections.items() if body),
        encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
