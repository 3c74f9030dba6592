"""Debian packages as corpus sources: cached ``apt-get download``, member reading, licence.

Shared by every corpus command that reads Debian packages (``rnnserve data en-de``,
``rnnserve data english``), so that they fetch alike and refuse the same reserved packages.

Packages are fetched with ``apt-get download NAME`` into a cache directory (nothing is
installed) and read straight from their data archive (``dpkg-deb --fsys-tarfile``), so no
extracted package tree is left on disk. Every name goes through :func:`check_allowed`
first: the packages in :data:`RESERVED` are kept for outside evaluation and are refused.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
import shutil
import subprocess
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

#: Reserved for outside evaluation (shared/DATA.md): never read, not even for dev or test.
RESERVED = ("wesnoth*", "debian-faq*", "maint-guide*", "developers-reference*")


class DataError(RuntimeError):
    """The corpus could not be obtained or read."""


class ReservedSourceError(DataError):
    """A package reserved for outside evaluation was asked for."""


def check_allowed(package: str) -> str:
    """``package`` unchanged, or :class:`ReservedSourceError` if it matches :data:`RESERVED`."""
    for pattern in RESERVED:
        if fnmatch.fnmatchcase(package.lower(), pattern):
            raise ReservedSourceError(f"{package} is reserved for outside evaluation ({pattern} in RESERVED) and "
                                      "must not be used for training, dev or test data")
    return package


@dataclass(frozen=True)
class DebPackage:
    """A downloaded ``.deb``: its name, version, file and sha256."""

    name: str
    version: str
    path: Path
    sha256: str

    def members(self, wanted: Callable[[str], bool]) -> Iterator[tuple[str, bytes]]:
        """(path without the leading ``./``, content) of every regular file whose path ``wanted`` accepts."""
        process = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(self.path)], stdout=subprocess.PIPE,
                                   stderr=subprocess.DEVNULL)
        assert process.stdout is not None
        with process, tarfile.open(fileobj=process.stdout, mode="r|") as archive:
            for member in archive:
                name = member.name.removeprefix("./")
                if member.isfile() and wanted(name):
                    file = archive.extractfile(member)
                    assert file is not None
                    yield name, file.read()
            process.stdout.close()
            if process.wait() != 0:
                raise DataError(f"dpkg-deb --fsys-tarfile {self.path} failed (exit {process.returncode})")

    def licence(self) -> str:
        """The licence names of ``usr/share/doc/<name>/copyright`` (``License:`` fields, in order), or a note."""
        path = f"usr/share/doc/{self.name}/copyright"
        texts = [content.decode("utf-8", "replace") for _, content in self.members(lambda name: name == path)]
        if not texts:
            return "no copyright file in the package (its doc directory links to another package's)"
        names = dict.fromkeys(m.strip() for m in re.findall(r"^License:[ \t]*(\S.*)$", texts[0], re.MULTILINE))
        return " | ".join(names) if names else "see " + path + " (not machine-readable)"

    def describe(self) -> dict[str, str]:
        return {"package": self.name, "version": self.version, "file": self.path.name, "sha256": self.sha256,
                "licence": self.licence()}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _version(deb: Path) -> str:
    run = subprocess.run(["dpkg-deb", "--field", str(deb), "Version"], capture_output=True, text=True, check=True)
    return run.stdout.strip()


def fetch(package: str, cache: Path) -> DebPackage:
    """The ``.deb`` of ``package`` in ``cache``, downloaded with ``apt-get download`` unless already there.

    A cached file is used when it is the candidate version ``apt-cache policy`` names (or
    when apt knows no candidate, e.g. offline); otherwise the candidate is downloaded.
    """
    check_allowed(package)
    if shutil.which("dpkg-deb") is None:
        raise DataError("dpkg-deb not found: this corpus command reads Debian packages (run it on Debian/Ubuntu)")
    cache.mkdir(parents=True, exist_ok=True)
    candidate = _candidate(package)
    quoted = candidate.replace(":", "%3a") if candidate else "*"
    cached = sorted(cache.glob(f"{package}_{quoted}_*.deb"))
    if not cached:
        if shutil.which("apt-get") is None:
            raise DataError(f"apt-get not found and {package} is not in {cache}: put its .deb there")
        run = subprocess.run(["apt-get", "download", package], cwd=cache, capture_output=True, text=True)
        cached = sorted(cache.glob(f"{package}_{quoted}_*.deb"))
        if run.returncode != 0 or not cached:
            raise DataError(f"apt-get download {package} failed (exit {run.returncode}): {run.stderr.strip()[-500:]}")
    deb = cached[-1]
    return DebPackage(package, _version(deb), deb, sha256_file(deb))


def _candidate(package: str) -> str:
    """The version apt would download now, or "" when apt does not know the package (e.g. no lists)."""
    if shutil.which("apt-cache") is None:
        return ""
    run = subprocess.run(["apt-cache", "policy", package], capture_output=True, text=True)
    found = re.search(r"Candidate:\s*(\S+)", run.stdout)
    return "" if found is None or found.group(1) == "(none)" else found.group(1)
