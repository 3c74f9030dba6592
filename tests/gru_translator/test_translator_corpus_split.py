"""Sources and split: the reserved-package deny-list, per-domain held-out sets, the cap, combined files."""

from __future__ import annotations

import pytest

from rnnserve_plugins import debian_packages as debian
from rnnserve_plugins.debian_packages import RESERVED, ReservedSourceError, check_allowed, fetch
from rnnserve_plugins.gru_translator.corpus.filters import fold
from rnnserve_plugins.gru_translator.corpus.sources import DOMAINS, SOURCES, CatalogueSource, DocumentSource
from rnnserve_plugins.gru_translator.data import SPLITS, build_splits, prepare, read_parallel, split_name


@pytest.mark.parametrize("package", ["wesnoth-1.16-data", "wesnoth", "debian-faq", "debian-faq-de",
                                     "maint-guide-de", "developers-reference", "Developers-Reference-fr"])
def test_reserved_packages_are_refused(package, tmp_path, monkeypatch):
    with pytest.raises(ReservedSourceError):
        check_allowed(package)
    monkeypatch.setattr(debian.subprocess, "run", lambda *a, **k: pytest.fail("a reserved package was fetched"))
    with pytest.raises(ReservedSourceError):
        fetch(package, tmp_path)
    with pytest.raises(ReservedSourceError):
        CatalogueSource("ui-games", ("gimp-data", package))
    with pytest.raises(ReservedSourceError):
        DocumentSource("doc-faq", ("debian-reference-en",), (package,), r"(.+)\.en\.html", r"\1.de.html")


def test_registry_holds_no_reserved_package_and_allowed_names_pass():
    assert RESERVED == ("wesnoth*", "debian-faq*", "maint-guide*", "developers-reference*")
    packages = [package for source in SOURCES for package in source.packages]
    assert all(check_allowed(package) == package for package in packages)
    assert {source.domain for source in SOURCES} == {"doc", "ui"}
    assert len({source.name for source in SOURCES}) == len(SOURCES)
    assert check_allowed("debian-reference-de") == "debian-reference-de"


def sentences(prefix: str, count: int) -> list[tuple[str, str]]:
    return [(f"{prefix} number {i} is here and now.", f"{prefix} Nummer {i} ist hier und jetzt.") for i in range(count)]


def test_split_is_by_folded_english_so_one_sentence_never_crosses_splits():
    assert split_name("Save the file.") == split_name("save the FILE") == split_name("Save the file!")
    names = [split_name(f"Sentence {i}") for i in range(10000)]
    assert 250 < names.count("test") < 350 and 250 < names.count("dev") < 350  # 3% each


def test_per_domain_held_out_sets_cap_and_combined_files(monkeypatch):
    from rnnserve_plugins.gru_translator import data

    monkeypatch.setattr(data, "MAX_HELD_OUT", 5)
    doc = sentences("Help", 600)
    ui = sentences("Menu", 600)
    ding = sentences("Ding", 300)
    shared = [("Help number 7 is here and now.", "Eine andere Übersetzung, hier und jetzt.")]  # same English as doc
    splits, counts = build_splits(ding, [], [("doc-a", "doc", doc), ("ui-a", "ui", ui + shared)], cap=400)
    assert set(splits) == set(SPLITS)
    for domain, pairs in (("doc", doc), ("ui", ui), ("ding", ding)):
        expected = {split: sum(split_name(en) == split for en, _ in pairs) for split in ("dev", "test")}
        assert all(count >= 5 for count in expected.values())
        assert len(splits[f"dev.{domain}"]) == len(splits[f"test.{domain}"]) == 5  # MAX_HELD_OUT
        assert all(split_name(en) == "test" for en, _ in splits[f"test.{domain}"])
        assert all(split_name(en) == "dev" for en, _ in splits[f"dev.{domain}"])
    assert splits["dev.bible"] == splits["test.bible"] == []
    held_out = {fold(en) for name in SPLITS if name.startswith(("dev", "test")) for en, _ in splits[name]}
    assert not held_out & {fold(en) for en, _ in splits["train"]}  # surplus held-out pairs are not trained on
    assert counts["doc-a_train"] == counts["ui-a_train"] == 400 and counts["doc-a_capped"] > 0
    assert counts["doc-a_test"] == counts["ding_dev"] == 5
    assert counts["doc-a_held_out_surplus"] == sum(split_name(en) != "train" for en, _ in doc) - 10
    assert counts["ding_train"] == sum(split_name(en) == "train" for en, _ in ding) < 400
    assert splits["test"] == [p for d in DOMAINS for p in splits[f"test.{d}"]]
    assert splits["dev"][:3] == [splits["dev.doc"][0], splits["dev.ui"][0], splits["dev.ding"][0]]  # interleaved
    again, _ = build_splits(ding, [], [("doc-a", "doc", doc), ("ui-a", "ui", ui + shared)], cap=400)
    assert again == splits  # stable


def test_prepare_writes_domain_files(tmp_path):
    ding_file = tmp_path / "de-en"
    ding_file.write_text("".join(f"Das ist Satz Nummer {i} hier. :: This is sentence number {i} here.\n"
                                 for i in range(400)))
    from tests.gru_translator.test_translator_data import make_bible

    manifest = prepare(tmp_path / "out", ding_file, make_bible(tmp_path / "bible.db"))
    for name in SPLITS:
        en, de = read_parallel(tmp_path / "out", name)
        assert len(en) == len(de) == manifest["counts"][f"{name}_pairs"]
    assert manifest["counts"]["test.ding_pairs"] > 0 and manifest["mix"]["ding"]["train"] > 300
    assert manifest["domains"] == {"doc": [], "ui": [], "ding": ["ding"], "bible": ["bible"]}
