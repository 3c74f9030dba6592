"""The joint SentencePiece vocabulary: special ids, plain-text round trip, deterministic training."""

from __future__ import annotations

import pytest

from rnnserve_plugins.gru_translator.subwords import BOS_ID, EOS_ID, PAD_ID, UNK_ID, SubwordVocab, train_sentencepiece
from tests.gru_translator.conftest import TOY


def test_toy_model_round_trips_plain_text(toy_vocab):
    assert toy_vocab.size == 56
    for line in (TOY / "toy.de").read_text().splitlines()[:20]:
        ids = toy_vocab.encode(line)
        assert min(ids) > EOS_ID
        assert toy_vocab.decode(ids) == line
        assert "".join(toy_vocab.pieces(ids)).replace("▁", " ").strip() == line
    assert toy_vocab.decode([BOS_ID, *toy_vocab.encode("Der Hund."), EOS_ID, PAD_ID]) == "Der Hund."
    assert toy_vocab.pieces([PAD_ID, UNK_ID, BOS_ID, EOS_ID]) == ["<pad>", "<unk>", "<s>", "</s>"]


def test_training_is_deterministic_and_fixes_the_special_ids(tmp_path):
    texts = (TOY / "toy.en").read_text().splitlines() + (TOY / "toy.de").read_text().splitlines()
    first = train_sentencepiece(texts, tmp_path / "a.model", vocab_size=56, normalization="identity")
    second = train_sentencepiece(texts, tmp_path / "b.model", vocab_size=56, normalization="identity")
    assert (tmp_path / "a.model").read_bytes() == (tmp_path / "b.model").read_bytes()
    assert first.model_proto == (TOY / "toy.model").read_bytes()
    assert SubwordVocab.load(tmp_path / "a.model").encode("Die Katze.") == second.encode("Die Katze.")


def test_models_with_other_special_ids_are_refused(tmp_path):
    import sentencepiece as spm

    spm.SentencePieceTrainer.train(sentence_iterator=iter(["a b c d e f g"] * 20), model_prefix=str(tmp_path / "x"),
                                   vocab_size=12, minloglevel=2)  # defaults: unk 0, bos 1, eos 2, no pad
    with pytest.raises(ValueError, match="special ids"):
        SubwordVocab.load(tmp_path / "x.model")
