"""Corpus preparation: cleaning and the train/val/test split (the download itself needs apt-get)."""

from __future__ import annotations

from rnnserve_plugins.char_lstm.data import NOVELS, clean, split_novels


def test_clean_joins_lines_into_paragraphs():
    lines = ["CHAPTER I", "", "", "It is a  truth", "universally\tacknowledged.  ", "", "  Next one. "]
    assert clean(lines) == ["CHAPTER I", "It is a truth universally acknowledged.", "Next one."]


def test_split_keeps_persuasion_for_test_and_the_end_of_each_novel_for_validation():
    novels = {name: [f"{name} paragraph {i}." for i in range(40)] for name in NOVELS}
    novels = {name: [line for p in paragraphs for line in (p, "")] for name, paragraphs in novels.items()}
    split = split_novels(novels)
    assert "persuasion" not in split["train"] and "persuasion" not in split["val"]
    assert split["test"].count("persuasion paragraph") == 40
    for name in NOVELS[:-1]:
        assert f"{name} paragraph 37." in split["train"] and f"{name} paragraph 38." in split["val"]
        assert f"{name} paragraph 39." in split["val"] and f"{name} paragraph 38." not in split["train"]
    assert all(text.endswith("\n") for text in split.values())
