"""The Jane Austen corpus: download, extraction from R's lazy-load database, cleaning, split.

The six novels come from the Debian package ``r-cran-janeaustenr`` (fetched with
``apt-get download``; no root needed), whose ``data/Rdata.rdx`` / ``Rdata.rdb`` pair is
R's lazy-load format: ``Rdata.rdx`` gunzips to an R-serialized list whose ``variables``
element maps each object name to an (offset, length) slice of ``Rdata.rdb``; each slice
is a 4-byte big-endian length followed by zlib-compressed R serialization. Each novel is
a character vector of the printed lines.

Cleaning: consecutive non-empty lines are joined with single spaces into paragraphs,
runs of whitespace collapse to one space, and each paragraph becomes one line of the
output (paragraphs are separated by ``"\\n"``). Everything else (``_italics_``
underscores, ``--`` dashes, chapter headings) is kept verbatim.

Split: ``persuasion`` is the test set and is never trained on; the last 5% (by
paragraphs) of each other novel is validation; the rest is training. Each output file
is the novels concatenated in a fixed order, each novel's text ending with ``"\\n"``;
``manifest.json`` records the source package and the sha256 and size of every output.

Documents: a split file may hold several documents, separated by an empty line (each
paragraph is one line, so two consecutive ``"\\n"``); the Austen files hold none, so each
is one document. :func:`encode_documents` reads a split as the model is trained and
evaluated on it: ``<bos>`` before every document, as a served request starts with
``<bos>``, so that the model learns how documents begin (``rnnserve data english`` writes
one document per page, man page or Info node).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import shutil
import subprocess
import tempfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from .vocab import CharVocab

NOVELS = ("emma", "mansfieldpark", "prideprejudice", "sensesensibility", "northangerabbey", "persuasion")
TEST_NOVEL = "persuasion"
VAL_FRACTION = 0.05
DEBIAN_PACKAGE = "r-cran-janeaustenr"
RDATA_DIR = "usr/lib/R/site-library/janeaustenr/data"
SPLITS = ("train", "val", "test")
#: What ``rnnserve data english`` writes between two documents, each ending with its last paragraph's ``"\\n"``.
DOCUMENT_SEPARATOR = "\n"


class DataError(RuntimeError):
    """The corpus could not be obtained or read."""


def download_package(workdir: Path) -> Path:
    """``apt-get download`` the Debian package into ``workdir`` and extract it; returns the root."""
    if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        raise DataError(
            f"apt-get/dpkg not found: this command needs a Debian-based system to fetch {DEBIAN_PACKAGE}. "
            f"Download {DEBIAN_PACKAGE}_*.deb elsewhere, extract it (dpkg -x or ar + tar) and pass the "
            "extracted directory with --from-dir.")
    run = subprocess.run(["apt-get", "download", DEBIAN_PACKAGE], cwd=workdir, capture_output=True, text=True)
    debs = sorted(workdir.glob(f"{DEBIAN_PACKAGE}_*.deb"))
    if run.returncode != 0 or not debs:
        raise DataError(f"apt-get download {DEBIAN_PACKAGE} failed (exit {run.returncode}): {run.stderr.strip()}")
    root = workdir / "extracted"
    subprocess.run(["dpkg", "-x", str(debs[-1]), str(root)], check=True)
    return root


def read_lazy_load(data_dir: Path) -> dict[str, list[str]]:
    """Read every character vector of an R lazy-load database (``Rdata.rdx`` + ``Rdata.rdb``)."""
    import warnings

    import rdata

    def parse(raw: bytes) -> object:
        with warnings.catch_warnings():  # rdata warns that a bare serialization has no file magic
            warnings.simplefilter("ignore")
            return rdata.conversion.convert(rdata.parser.parse_data(raw))

    try:
        index = parse(gzip.decompress((data_dir / "Rdata.rdx").read_bytes()))
        rdb = (data_dir / "Rdata.rdb").read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read the R data in {data_dir}: {exc}") from exc
    out: dict[str, list[str]] = {}
    for name, (offset, length) in index["variables"].items():
        blob = rdb[int(offset): int(offset) + int(length)]
        expected = int.from_bytes(blob[:4], "big")
        raw = zlib.decompress(blob[4:])
        if len(raw) != expected:
            raise DataError(f"{name}: slice inflates to {len(raw)} bytes, header says {expected}")
        out[str(name)] = [str(line) for line in parse(raw)]
    return out


def clean(lines: list[str]) -> list[str]:
    """Join printed lines into paragraphs (blank lines separate them), whitespace normalised."""
    paragraphs: list[str] = []
    current: list[str] = []
    for line in [*lines, ""]:
        line = re.sub(r"\s+", " ", line).strip()
        if line:
            current.append(line)
        elif current:
            paragraphs.append(" ".join(current))
            current = []
    return paragraphs


def split_novels(novels: dict[str, list[str]]) -> dict[str, str]:
    """Cleaned text of each split: test = Persuasion; val = last 5% of each other novel's paragraphs."""
    parts: dict[str, list[str]] = {split: [] for split in SPLITS}
    for name in NOVELS:
        paragraphs = clean(novels[name])
        if name == TEST_NOVEL:
            parts["test"].append("\n".join(paragraphs) + "\n")
            continue
        cut = len(paragraphs) - max(1, round(VAL_FRACTION * len(paragraphs)))
        parts["train"].append("\n".join(paragraphs[:cut]) + "\n")
        parts["val"].append("\n".join(paragraphs[cut:]) + "\n")
    return {split: "".join(texts) for split, texts in parts.items()}


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def prepare(out: Path, from_dir: Path | None = None) -> dict:
    """Fetch (unless ``from_dir`` holds an extracted package), clean and split into ``out``.

    Returns the manifest written to ``out/manifest.json``.
    """
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="austen-") as tmp:
        root = from_dir if from_dir is not None else download_package(Path(tmp))
        novels = read_lazy_load(root / RDATA_DIR)
        debs = sorted(Path(tmp).glob("*.deb"))
        source = {"debian_package": DEBIAN_PACKAGE,
                  "deb_file": debs[-1].name if debs else None,
                  "deb_sha256": sha256_file(debs[-1]) if debs else None}
    missing = [n for n in NOVELS if n not in novels]
    if missing:
        raise DataError(f"novels missing from the package data: {missing}")
    texts = split_novels(novels)
    files = {}
    for split, text in texts.items():
        path = out / f"{split}.txt"
        path.write_text(text, encoding="utf-8")
        files[path.name] = {"sha256": sha256_file(path), "chars": len(text), "bytes": path.stat().st_size}
    manifest = {
        "source": source,
        "novels": list(NOVELS),
        "cleaning": "lines joined into paragraphs (blank-line separated), whitespace runs collapsed to "
                    "one space, one paragraph per line",
        "split": f"test = {TEST_NOVEL} (never trained on); val = last {VAL_FRACTION:.0%} of the paragraphs "
                 "of each other novel; train = the rest",
        "files": files,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def read_split(data_dir: Path, split: str) -> str:
    """Text of one split (``train``, ``val`` or ``test``) of a prepared corpus directory."""
    path = data_dir / f"{split}.txt"
    if not path.exists():
        raise DataError(f"{path} not found; run `rnnserve data austen --out {data_dir}` first")
    return path.read_text(encoding="utf-8")


def encode_documents(vocab: CharVocab, text: str) -> torch.Tensor:
    """[N] int64 ids of a split's text with ``<bos>`` between its documents (separated by an empty line in the
    file; the separator's second ``"\\n"`` becomes the ``<bos>``): ``doc1 <bos> doc2 <bos> doc3``. The
    ``<bos>`` before the first document is the reader's, as for a served request (``make_streams`` and
    ``evaluate_loss`` put it there), so a text without empty lines encodes exactly as ``encode_tensor``."""
    import torch

    text = text.strip("\n") + "\n" if text.strip("\n") else ""
    marked = re.sub(r"\n\n+", "\n\0", text)
    ids = vocab.encode_tensor(marked)
    if ids.numel():
        codes = torch.frombuffer(bytearray(marked.encode("utf-32-le")), dtype=torch.int32)
        ids[codes == 0] = vocab.bos_id
    return ids
