"""Reading a Debian package: a tiny .deb built here (dpkg-deb) with a catalogue and a copyright file."""

from __future__ import annotations

import shutil
import subprocess

import polib
import pytest

from rnnserve_plugins import debian_packages as debian
from rnnserve_plugins.debian_packages import fetch
from rnnserve_plugins.gru_translator.corpus.sources import CatalogueSource

pytestmark = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")

COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/

Files: *
Copyright: 2024 Someone
License: GPL-2+

Files: po/*
Copyright: 2024 Translators
License: LGPL-2.1+
"""


def build_deb(tmp_path, name="tiny-l10n", version="1:1.0-1"):
    root = tmp_path / "root"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(f"Package: {name}\nVersion: {version}\nArchitecture: all\n"
                                             "Maintainer: Test <test@example.org>\nDescription: test\n")
    catalogue = polib.POFile()
    catalogue.metadata = {"Content-Type": "text/plain; charset=UTF-8"}
    catalogue.append(polib.POEntry(msgid="_Save the file", msgstr="Datei _speichern"))
    catalogue.append(polib.POEntry(msgid="Print the page", msgstr="Seite drucken"))
    for lang in ("de", "de_AT", "fr"):
        (root / "usr/share/locale" / lang / "LC_MESSAGES").mkdir(parents=True)
        catalogue.save_as_mofile(str(root / "usr/share/locale" / lang / "LC_MESSAGES/tiny.mo"))
    (root / "usr/share/doc" / name).mkdir(parents=True)
    (root / "usr/share/doc" / name / "copyright").write_text(COPYRIGHT)
    cache = tmp_path / "cache"
    cache.mkdir()
    deb = cache / f"{name}_{version.replace(':', '%3a')}_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(root), str(deb)], check=True,
                   capture_output=True)
    return cache, deb


def test_a_cached_deb_is_read_without_downloading(tmp_path, monkeypatch):
    cache, deb = build_deb(tmp_path)
    monkeypatch.setattr(debian, "_candidate", lambda package: "1:1.0-1")
    monkeypatch.setattr(debian.subprocess, "run", _no_apt(debian.subprocess.run))
    package = fetch("tiny-l10n", cache)
    assert (package.name, package.version, package.path) == ("tiny-l10n", "1:1.0-1", deb)
    assert package.licence() == "GPL-2+ | LGPL-2.1+"
    assert package.describe()["sha256"] == debian.sha256_file(deb)
    pairs = list(CatalogueSource("ui-tiny", ("tiny-l10n",)).pairs([package]))
    assert sorted(pairs) == [("Print the page", "Seite drucken"), ("Save the file", "Datei speichern")]  # de only


def _no_apt(run):
    def guarded(command, *args, **kwargs):
        assert command[0] != "apt-get", "a cached package was downloaded again"
        return run(command, *args, **kwargs)
    return guarded
