"""Vocabulary: special ids, the unknown-character policy, serialisation."""

from __future__ import annotations

import torch

from rnnserve_plugins.char_lstm.vocab import CharVocab


def test_specials_and_roundtrip():
    vocab = CharVocab.build("hello world")
    assert vocab.bos_id == 0 and vocab.unk_id == 1 and vocab.eos_id is None
    assert vocab.size == 2 + len(set("hello world"))
    ids, unknown = vocab.encode("hello world")
    assert unknown == [] and vocab.decode(ids) == "hello world"
    assert min(ids) >= 2


def test_unknown_characters_map_to_unk_and_are_reported_once():
    vocab = CharVocab.build("abc ")
    ids, unknown = vocab.encode("a☃b☃ Zc")
    assert ids == [vocab.encode("a")[0][0], 1, vocab.encode("b")[0][0], 1, vocab.encode(" ")[0][0], 1,
                   vocab.encode("c")[0][0]]
    assert unknown == ["☃", "Z"]
    assert vocab.decode([vocab.bos_id, *ids]) == "ab c"  # specials decode to ""
    assert vocab.decode([999, -1]) == ""


def test_encode_tensor_matches_encode():
    vocab = CharVocab.build("The quick brown fox.\n")
    text = "The brown £ fox jumps.\n"
    assert vocab.encode_tensor(text).tolist() == vocab.encode(text)[0]
    assert vocab.encode_tensor("").dtype == torch.int64


def test_min_count_and_serialisation(tmp_path):
    vocab = CharVocab.build("aaab", min_count=2)
    assert vocab.chars == ["a"]
    vocab.save(tmp_path / "vocab.json")
    loaded = CharVocab.load(tmp_path / "vocab.json")
    assert loaded.chars == vocab.chars and loaded.size == vocab.size
