"""The modern-English corpus of ``rnnserve data english``: English prose from Debian packages.

Sources (each a group of Debian packages, fetched with ``apt-get download`` through
:mod:`rnnserve_plugins.debian_packages`, which refuses the packages reserved for outside
evaluation, and read from the ``.deb`` without installing anything):

* ``man``: the Linux man-pages project (``manpages``, ``manpages-dev``), rendered to text by
  GNU roff from Debian's ``groff-base``, downloaded and unpacked into a temporary directory
  and run from there (``GROFF_*_PATH``), never installed. groff is the renderer ``man``
  itself uses; no Python library implements the ``man`` macros, ``tbl`` and escapes fully.
* ``python-docs``: the Python documentation (``python3.11-doc``, which ``python3-doc``
  depends on), Sphinx HTML.
* ``debian-reference``: ``debian-reference-en`` (HTML).
* ``gnu-info``: GNU manuals in Debian main, as Info files (coreutils, grep, sed, Bash, ...).
* more documentation, HTML: PostgreSQL, Django, Sphinx, Flask, Requests, Rust (the books,
  not the API pages), Git, Apache httpd, KiCad.
* the English sides of the translator's corpora (:mod:`rnnserve_plugins.gru_translator.corpus.sources`):
  its documentation sources' English pages (LibreOffice, GIMP, GNOME and KDE help, Debian Edu)
  and, as ``ui-messages``, the English ``msgid`` of its UI catalogues that are whole sentences.

Cleaning, to prose (the readers are in :mod:`.english_readers`): HTML and Mallard pages keep
their ``<p>`` blocks (code, tables, lists and page furniture go; see :func:`html_blocks`);
man pages keep the paragraphs at the body indentation of their prose sections (no SYNOPSIS,
EXAMPLES, FILES, SEE ALSO, ...; option and tagged lists are indented further, tables hold
runs of spaces); Info nodes keep the unindented paragraphs (examples and definitions are
indented, menus start with ``*``). Every paragraph is then normalised (:func:`normalise`:
ASCII quotes, dashes and ellipses, accents dropped, single spaces) and kept only if it reads
as prose (:func:`is_prose`) and all its characters are in :data:`CHARSET` (printable ASCII;
the manifest reports how many characters were in it before and after the normalisation).

Deduplication: a paragraph whose key (lower case, letters and digits) was seen before, in
any source, is dropped. Split: by ``sha256(key) % 1000``: ``< TEST_BUCKETS`` test, the next
``VAL_BUCKETS`` validation, the rest train; a paragraph never lands in two splits.

Layout (:mod:`rnnserve_plugins.char_lstm.data`): ``train.txt``, ``val.txt``, ``test.txt``
hold documents (a page, a man page, an Info node) separated by an empty line, one paragraph
per line; a document holds its paragraphs of that split, in page order. Documents are in a
fixed pseudo-random order (by hash), so that every training stream mixes the sources.
``test.<source>.txt`` holds each source's test documents alone; ``manifest.json`` records each
package (version, sha256, licence), the characters per source and split, the mix, the
character coverage and the wall time.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rnnserve_plugins.debian_packages import RESERVED, DebPackage, check_allowed, fetch, sha256_file

from .data import DOCUMENT_SEPARATOR, SPLITS
from .english_readers import Document, Groff, catalogue_documents, info_documents, man_documents, page_documents

#: The characters the model reads: printable ASCII (space to ``~``); ``\\n`` separates paragraphs.
CHARSET = frozenset(chr(c) for c in range(0x20, 0x7F))
TEST_BUCKETS = 20  # of 1000: 2% test
VAL_BUCKETS = 20  # 2% validation
MIN_WORDS = 6
GROFF_PACKAGE = "groff-base"

# ---------------------------------------------------------------- normalisation and the prose test

_TYPOGRAPHY = str.maketrans({
    "“": '"', "”": '"', "„": '"', "‟": '"', "«": '"', "»": '"', "″": '"',
    "‘": "'", "’": "'", "‚": "'", "‛": "'", "´": "'", "′": "'", "`": "'",
    "‐": "-", "‑": "-", "‒": "-", "–": "-", "—": " - ", "―": " - ", "−": "-", "⁃": "-",
    "…": "...", "×": "x", "•": "", "·": "", "→": "->", "←": "<-", "⇒": "=>", "≤": "<=", "≥": ">=", "≠": "!=",
    "\u00a0": " ", "\u202f": " ", "\u2009": " ", "\u2002": " ", "\u2003": " ", "\u200b": "", "\u00ad": "",
    "\ufeff": "", "\u200e": "", "\u200f": "", "\t": " ", "©": "(c)", "®": "(R)", "™": "(TM)",
})
_CODE_CHARS = frozenset("{}[]<>=;\\|_$#@^~*")


def normalise(text: str) -> str:
    """ASCII typography (quotes, dashes, ellipses), accents dropped (``café`` → ``cafe``), single spaces."""
    text = text.translate(_TYPOGRAPHY)
    if not text.isascii():
        text = "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))
    text = re.sub(r"\s+", " ", text).strip()
    return re.sub(r" ([.!?,;:])(?=$| )", r"\1", text)


def is_prose(text: str) -> bool:
    """Whether a normalised paragraph reads as prose: at least ``MIN_WORDS`` words, a sentence end,
    mostly letters, few code characters, no table-like runs of spaces."""
    words = text.split()
    if len(words) < MIN_WORDS or not re.search(r"[.!?:][\"')]*$", text):
        return False
    if not re.match(r"[\"'(]?[A-Za-z0-9]", text):
        return False
    letters = sum(ch.isalpha() for ch in text)
    if letters < 0.65 * (len(text) - len(words) + 1):
        return False
    if sum(ch in _CODE_CHARS for ch in text) > 0.02 * len(text):
        return False
    return sum(len(w) > 30 for w in words) <= 1  # long tokens: paths, URLs, identifiers


def dedup_key(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def split_of(key: str) -> str:
    """``train``, ``val`` or ``test``, stably from the paragraph's key."""
    bucket = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % 1000
    return "test" if bucket < TEST_BUCKETS else "val" if bucket < TEST_BUCKETS + VAL_BUCKETS else "train"


@dataclass(frozen=True)
class EnglishSource:
    """Some Debian packages and how their English text is read."""

    name: str
    packages: tuple[str, ...]
    #: Paths (``re.fullmatch``) of the members to read.
    members: str
    #: ``"man"``, ``"info"``, ``"page"`` or ``"catalogue"``.
    kind: str
    #: Paths left out (``re.search``): indexes, change logs.
    exclude: str = r"$^"
    #: At most this many characters of training text (None: all).
    cap: int | None = None
    notes: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        for package in self.packages:
            check_allowed(package)


def _translator_sources() -> tuple[EnglishSource, ...]:
    """The English sides of the translator's documentation and UI sources."""
    from rnnserve_plugins.gru_translator.corpus.sources import CATALOGUES, DOCUMENTS

    names = {"doc-libreoffice-help": "libreoffice-help", "doc-gimp-help": "gimp-help", "doc-gnome-help": "gnome-help",
             "doc-kde-handbooks": "kde-handbooks", "doc-debian-edu": "debian-edu"}
    docs = tuple(EnglishSource(names[d.name], d.english, d.pages, "page") for d in DOCUMENTS if d.name in names)
    ui_packages = tuple(dict.fromkeys(p for c in CATALOGUES for p in c.packages))
    # The German catalogues the translator reads (their msgids are the English side).
    return (*docs, EnglishSource("ui-messages", ui_packages, r"(.*/)?de/LC_MESSAGES/[^/]+\.mo", "catalogue"))


#: GNU manuals in Debian main, as Info files.
GNU_INFO = ("coreutils", "grep", "sed", "findutils", "diffutils", "gzip", "wget", "texinfo", "gettext", "bash-doc",
            "autoconf-doc", "automake", "libtool-doc", "gnu-standards", "units", "sharutils", "screen", "time",
            "indent", "nano", "gnupg", "emacs-common", "guile-3.0-doc")


#: Sphinx's generated pages: indexes, search, highlighted module sources.
SPHINX_EXCLUDE = r"/(genindex|py-modindex|search)[^/]*\.html$|/_modules/|/_sources/"


def sources() -> tuple[EnglishSource, ...]:
    """Every source of the corpus, in priority order (a paragraph seen twice stays with the first)."""
    return (
        EnglishSource("man", ("manpages", "manpages-dev"), r"usr/share/man/man\d\w*/[^/]+", "man"),
        EnglishSource("python-docs", ("python3.11-doc",), r"usr/share/doc/python3\.11/html/.+\.html", "page",
                      exclude=SPHINX_EXCLUDE + r"|/(copyright|license)\.html$|/whatsnew/changelog"),
        EnglishSource("debian-reference", ("debian-reference-en",), r"usr/share/debian-reference/.+\.en\.html", "page"),
        EnglishSource("gnu-info", GNU_INFO, r"usr/share/info/[^/]+\.info(-\d+)?(\.gz)?", "info"),
        *_translator_sources(),
        EnglishSource("postgresql-docs", ("postgresql-doc-15",), r"usr/share/doc/postgresql-doc-15/html/.+\.html",
                      "page"),
        EnglishSource("django-docs", ("python-django-doc",), r"usr/share/doc/python-django-doc/html/.+\.html", "page",
                      exclude=SPHINX_EXCLUDE),
        EnglishSource("python-project-docs", ("sphinx-doc", "python-flask-doc", "python-requests-doc"),
                      r"usr/share/doc/[\w-]+/html/.+\.html", "page", exclude=SPHINX_EXCLUDE),
        EnglishSource("rust-docs", ("rust-doc",), r"usr/share/doc/rust-doc/html/(book|nomicon|reference|"
                      r"rust-by-example|rustc|cargo|edition-guide|embedded-book|rustdoc)/.+\.html", "page",
                      exclude=r"/print\.html$"),
        EnglishSource("git-docs", ("git-doc",), r"usr/share/doc/git-doc/.+\.html", "page"),
        EnglishSource("apache-docs", ("apache2-doc",), r"usr/share/doc/apache2-doc/manual/en/.+\.html", "page"),
        EnglishSource("kicad-docs", ("kicad-doc-en",), r"usr/share/doc/kicad/help/en/.+\.html", "page"),
    )


# ---------------------------------------------------------------- building

@dataclass
class SourceStats:
    documents: int = 0
    paragraphs_read: int = 0
    not_prose: int = 0
    out_of_charset: int = 0
    duplicates: int = 0
    capped: int = 0
    chars: dict = field(default_factory=lambda: dict.fromkeys(SPLITS, 0))
    paragraphs: dict = field(default_factory=lambda: dict.fromkeys(SPLITS, 0))


@dataclass
class Coverage:
    """Characters of the prose paragraphs in :data:`CHARSET` before and after :func:`normalise`."""

    raw_total: int = 0
    raw_in_charset: int = 0
    outside: Counter = field(default_factory=Counter)

    def add(self, raw: str) -> None:
        self.raw_total += len(raw)
        inside = sum(ch in CHARSET for ch in raw)
        self.raw_in_charset += inside
        if inside != len(raw):
            self.outside.update(ch for ch in raw if ch not in CHARSET and not ch.isspace())


def read_documents(source: EnglishSource, debs: list[DebPackage], groff: Callable[[], Groff]) -> Iterator[Document]:
    members = re.compile(source.members)
    exclude = re.compile(source.exclude)

    def wanted(path: str) -> bool:
        return members.fullmatch(path) is not None and exclude.search(path) is None

    for deb in debs:
        if source.kind == "man":
            yield from man_documents(list(deb.members(wanted)), groff())
            continue
        reader = {"info": info_documents, "page": page_documents, "catalogue": catalogue_documents}[source.kind]
        for path, content in deb.members(wanted):
            for doc_id, paragraphs in reader(path, content):
                yield f"{deb.name}:{doc_id}", paragraphs


def prepare(out: Path, cache: Path | None = None, only: Iterable[str] | None = None,
            log: Callable[[str], None] = print) -> dict:
    """Fetch, read, clean, deduplicate and split every source into ``out``; returns the manifest."""
    started = time.monotonic()
    out.mkdir(parents=True, exist_ok=True)
    cache = cache or out.parent / "cache"
    chosen = [s for s in sources() if only is None or s.name in set(only)]
    seen: set[str] = set()
    coverage = Coverage()
    splits: dict[str, list[tuple[str, str, list[str]]]] = {s: [] for s in SPLITS}  # (source, doc id, paragraphs)
    manifest_sources = {}
    with tempfile.TemporaryDirectory(prefix="groff-") as tmp:
        groff_holder: list[Groff] = []
        packages_used: dict[str, dict] = {}

        def groff() -> Groff:
            if not groff_holder:
                deb = fetch(GROFF_PACKAGE, cache)
                packages_used[GROFF_PACKAGE] = {**deb.describe(), "role": "renderer (man pages), not text"}
                groff_holder.append(Groff(deb, Path(tmp)))
            return groff_holder[0]

        for source in chosen:
            t0 = time.monotonic()
            debs = [fetch(package, cache) for package in source.packages]
            stats = SourceStats()
            for doc_id, raw_paragraphs in read_documents(source, debs, groff):
                stats.documents += 1
                kept = _kept_paragraphs(raw_paragraphs, source, stats, coverage, seen)
                for split, paragraphs in kept.items():
                    if paragraphs:
                        splits[split].append((source.name, doc_id, paragraphs))
            manifest_sources[source.name] = {
                "kind": source.kind, "members": source.members,
                "packages": [deb.describe() for deb in debs], **vars(stats),
                "seconds": round(time.monotonic() - t0, 1)}
            log(f"[english] {source.name}: {stats.documents:,} documents, "
                + ", ".join(f"{s} {stats.chars[s]:,}" for s in SPLITS) + f" chars ({time.monotonic() - t0:.0f} s)")
    files = _write_splits(out, splits, list(manifest_sources))
    manifest = _manifest(manifest_sources, packages_used.get(GROFF_PACKAGE), coverage, files,
                         round(time.monotonic() - started, 1))
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def _kept_paragraphs(raw_paragraphs: list[str], source: EnglishSource, stats: SourceStats, coverage: Coverage,
                     seen: set[str]) -> dict[str, list[str]]:
    """A document's paragraphs that pass, normalised, by split: prose, in :data:`CHARSET`, not seen
    before (``seen`` grows), and within the source's cap on training characters; ``stats`` and
    ``coverage`` count what happened to each."""
    kept: dict[str, list[str]] = {s: [] for s in SPLITS}
    for raw in raw_paragraphs:
        stats.paragraphs_read += 1
        text = normalise(raw)
        if not is_prose(text):
            stats.not_prose += 1
            continue
        coverage.add(re.sub(r"\s+", " ", raw).strip())
        if not set(text) <= CHARSET:
            stats.out_of_charset += 1
            continue
        key = dedup_key(text)
        if key in seen:
            stats.duplicates += 1
            continue
        seen.add(key)
        split = split_of(key)
        if split == "train" and source.cap is not None and stats.chars["train"] >= source.cap:
            stats.capped += 1
            continue
        kept[split].append(text)
        stats.chars[split] += len(text) + 1
        stats.paragraphs[split] += 1
    return kept


def _write_splits(out: Path, splits: dict[str, list[tuple[str, str, list[str]]]], names: list[str]) -> dict:
    """Write each split's documents (``(source, doc id, paragraphs)``) in a fixed pseudo-random order,
    and each source's test documents alone; returns the files' manifest entries."""
    files = {}
    for split, documents in splits.items():
        documents.sort(key=lambda d: hashlib.sha256(f"{d[0]}:{d[1]}".encode()).digest())
        files.update(_write(out / f"{split}.txt", [d[2] for d in documents]))
        if split == "test":
            for name in names:
                files.update(_write(out / f"test.{name}.txt", [d[2] for d in documents if d[0] == name]))
    return files


def _manifest(manifest_sources: dict[str, dict], renderer: dict | None, coverage: Coverage, files: dict,
              wall_time_s: float) -> dict:
    """``manifest.json``: the sources, the renderer, the mix, the character coverage and the files."""
    total = {s: sum(v["chars"][s] for v in manifest_sources.values()) for s in SPLITS}
    return {
        "sources": manifest_sources,
        "renderer": renderer,
        "reserved_packages_refused": list(RESERVED),
        "chars": total,
        "mix": {name: round(v["chars"]["train"] / max(1, total["train"]), 4) for name, v in manifest_sources.items()},
        "charset": "printable ASCII (0x20-0x7E); paragraphs end with \\n, documents with an empty line",
        "coverage": {"prose_chars": coverage.raw_total,
                     "in_charset_before_normalising": round(coverage.raw_in_charset / max(1, coverage.raw_total), 6),
                     "paragraphs_dropped_outside_charset": sum(v["out_of_charset"] for v in manifest_sources.values()),
                     "most_common_outside": "".join(ch for ch, _ in coverage.outside.most_common(40))},
        "split": f"sha256(paragraph key) % 1000: < {TEST_BUCKETS} test, < {TEST_BUCKETS + VAL_BUCKETS} val, "
                 "the rest train; duplicates (lower-case letters and digits) dropped across all sources",
        "layout": "one paragraph per line; documents separated by an empty line (training starts each with <bos>)",
        "files": files,
        "wall_time_s": wall_time_s,
    }


def _write(path: Path, documents: list[list[str]]) -> dict:
    text = DOCUMENT_SEPARATOR.join("".join(p + "\n" for p in paragraphs) for paragraphs in documents)
    path.write_text(text, encoding="utf-8")
    return {path.name: {"sha256": sha256_file(path), "chars": len(text), "documents": len(documents)}}

