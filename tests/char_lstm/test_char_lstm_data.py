"""Corpus preparation: the R lazy-load reader, cleaning, the split, the manifest (no network needed)."""

from __future__ import annotations

import hashlib
import json
import zlib
from pathlib import Path

import numpy as np
import pytest
import rdata

from rnnserve_plugins.char_lstm.data import NOVELS, RDATA_DIR, DataError, clean, download_package, prepare, split_novels


def write_lazy_load(root: Path, objects: dict[str, list[str]]) -> None:
    """An R lazy-load database like janeaustenr's: Rdata.rdb slices + a gzipped Rdata.rdx index."""
    data = root / RDATA_DIR
    data.mkdir(parents=True)
    rdb, index = b"", {}
    for name, lines in objects.items():
        rdata.write_rds(data / "one.rds", np.array(lines), compression=None)
        raw = (data / "one.rds").read_bytes()
        blob = len(raw).to_bytes(4, "big") + zlib.compress(raw)
        index[name] = np.array([len(rdb), len(blob)], dtype=np.int32)
        rdb += blob
    (data / "one.rds").unlink()
    (data / "Rdata.rdb").write_bytes(rdb)
    rdata.write_rds(data / "Rdata.rdx", {"variables": index}, compression="gzip")


def novel(name: str, paragraphs: int = 40) -> list[str]:
    lines = [name.upper(), ""]
    for i in range(paragraphs):
        lines += [f"{name} paragraph {i}, whose  text", "  runs over two lines.", ""]
    return lines


def test_prepare_from_an_extracted_package(tmp_path):
    write_lazy_load(tmp_path / "pkg", {name: novel(name) for name in NOVELS})
    manifest = prepare(tmp_path / "out", from_dir=tmp_path / "pkg")
    train, val, test = ((tmp_path / "out" / f"{s}.txt").read_text() for s in ("train", "val", "test"))
    assert "persuasion" not in train + val and test.startswith("PERSUASION\npersuasion paragraph 0,")
    assert "emma paragraph 0, whose text runs over two lines.\n" in train
    assert "emma paragraph 39, whose text runs over two lines.\n" in val
    for name, info in manifest["files"].items():
        assert info["sha256"] == hashlib.sha256((tmp_path / "out" / name).read_bytes()).hexdigest()
    assert json.loads((tmp_path / "out" / "manifest.json").read_text()) == manifest


def test_missing_novel_is_an_error(tmp_path):
    write_lazy_load(tmp_path / "pkg", {"emma": novel("emma")})
    with pytest.raises(DataError, match="missing"):
        prepare(tmp_path / "out", from_dir=tmp_path / "pkg")


def test_without_apt_get_the_error_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(DataError, match=r"apt-get/dpkg not found.*--from-dir"):
        download_package(tmp_path)


def test_clean_joins_lines_into_paragraphs():
    lines = ["CHAPTER I", "", "", "It is a  truth", "universally\tacknowledged.  ", "", "  Next one. "]
    assert clean(lines) == ["CHAPTER I", "It is a truth universally acknowledged.", "Next one."]


def test_split_keeps_persuasion_for_test_and_the_end_of_each_novel_for_validation():
    novels = {name: [line for i in range(40) for line in (f"{name} paragraph {i}.", "")] for name in NOVELS}
    split = split_novels(novels)
    assert "persuasion" not in split["train"] and "persuasion" not in split["val"]
    assert split["test"].count("persuasion paragraph") == 40
    for name in NOVELS[:-1]:  # 5% of 40 paragraphs: the last 2
        assert f"{name} paragraph 37." in split["train"] and f"{name} paragraph 38." in split["val"]
        assert f"{name} paragraph 39." in split["val"] and f"{name} paragraph 38." not in split["train"]
    assert all(text.endswith("\n") for text in split.values())
