"""Vocabulary-size measurement: pieces per sentence and unknown pieces per domain for candidate sizes."""

from __future__ import annotations

from rnnserve_plugins.gru_translator.corpus.sources import DOMAINS
from rnnserve_plugins.gru_translator.subwords import measure_vocab_sizes
from tests.gru_translator.conftest import TOY


def write_split(data, name, en, de):
    (data / f"{name}.en").write_text("".join(line + "\n" for line in en))
    (data / f"{name}.de").write_text("".join(line + "\n" for line in de))


def test_smaller_vocabularies_cut_sentences_into_more_pieces(tmp_path):
    en, de = (TOY / "toy.en").read_text().splitlines(), (TOY / "toy.de").read_text().splitlines()
    write_split(tmp_path, "train", en[:260], de[:260])
    for domain in DOMAINS:
        write_split(tmp_path, f"dev.{domain}", en[260:280], de[260:280])
    write_split(tmp_path, "dev.ui", ["The child sees the zebra ☃."], ["Das Kind sieht das Zebra ☃."])
    small, large = measure_vocab_sizes(tmp_path, [55, 78])
    assert (small["vocab_size"], large["vocab_size"]) == (55, 78) and small["train_seconds"] >= 0
    for domain in DOMAINS:
        for lang in ("en", "de"):
            assert small[f"{domain}_{lang}_pieces_per_sentence"] > large[f"{domain}_{lang}_pieces_per_sentence"]
    assert small["ding_en_unk_per_10k_pieces"] == 0
    assert small["ui_en_unk_per_10k_pieces"] > 0  # the snowman and the z never occur in training
