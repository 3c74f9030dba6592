"""Model-directory manifests: sha256 of every file, checked before a backend reads any.

``manifest.json`` in a model directory::

    {"format": "rnnserve-manifest/1", "files": {"config.json": "<sha256 hex>", "model.safetensors": "..."}}

The registry verifies every listed file before the model's factory runs; a mismatch, a
missing file or a malformed manifest makes the model FAILED with the reason. A directory
without a manifest still loads (with a warning) unless ``require_manifest`` is set.
``rnnserve manifest DIR`` writes one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from pathlib import Path, PurePosixPath

log = logging.getLogger("rnnserve.manifest")

MANIFEST_FILE = "manifest.json"
FORMAT = "rnnserve-manifest/1"
_HEX = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1 << 20


class ManifestError(Exception):
    """A model directory does not match its manifest (the message says which file and how)."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _files(directory: Path) -> list[str]:
    """Regular files under ``directory`` (relative POSIX names), hidden ones and the manifest excluded."""
    names = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            path = Path(root) / name
            rel = path.relative_to(directory).as_posix()
            if name.startswith(".") or rel == MANIFEST_FILE or not path.is_file():
                continue
            names.append(rel)
    return sorted(names)


def write_manifest(directory: str | Path) -> Path:
    """Hash every file in ``directory`` into ``directory/manifest.json``; returns its path."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ManifestError(f"{directory} is not a directory")
    files = {name: sha256_file(directory / name) for name in _files(directory)}
    if not files:
        raise ManifestError(f"{directory} holds no files to list")
    path = directory / MANIFEST_FILE
    path.write_text(json.dumps({"format": FORMAT, "files": files}, indent=2, sort_keys=True) + "\n")
    return path


def _safe_name(name: object) -> str:
    if not isinstance(name, str) or not name:
        raise ManifestError(f"{MANIFEST_FILE} lists an invalid file name {name!r}")
    pure = PurePosixPath(name)
    if pure.is_absolute() or ".." in pure.parts or "\\" in name or ":" in name:
        raise ManifestError(f"{MANIFEST_FILE} lists {name!r}, which is not a plain path inside the model directory")
    return name


def read_manifest(directory: Path) -> dict[str, str] | None:
    """The manifest's ``files`` map, or None if the directory has none; ManifestError if malformed."""
    path = directory / MANIFEST_FILE
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{MANIFEST_FILE} is not readable JSON ({type(exc).__name__})") from exc
    files = raw.get("files") if isinstance(raw, dict) else None
    if not isinstance(files, dict) or not files:
        raise ManifestError(f'{MANIFEST_FILE} has no "files" map of file name -> sha256')
    checked = {}
    for name, digest in files.items():
        if not isinstance(digest, str) or not _HEX.fullmatch(digest.lower()):
            raise ManifestError(f"{MANIFEST_FILE}: the sha256 of {name!r} is not 64 hex digits")
        checked[_safe_name(name)] = digest.lower()
    return checked


def verify_manifest(directory: str | Path) -> bool:
    """Check every file the manifest lists; True if verified, False if there is no manifest.

    Raises ManifestError naming the first file that is missing or whose sha256 differs.
    """
    directory = Path(directory)
    files = read_manifest(directory)
    if files is None:
        return False
    root = directory.resolve()
    for name, expected in sorted(files.items()):
        path = directory / name
        if not path.resolve().is_relative_to(root):
            raise ManifestError(f"manifest check failed: {name} points outside the model directory")
        if not path.is_file():
            raise ManifestError(f"manifest check failed: {name} is missing")
        if sha256_file(path) != expected:
            raise ManifestError(f"manifest check failed: {name} does not match its sha256 in {MANIFEST_FILE}")
    return True
