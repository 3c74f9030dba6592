"""Document translation (split, one batch, rejoined with the text's own whitespace) and
protected spans (masked before decoding, restored after), down to a tiny model."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import sentencepiece as spm
from hypothesis import given
from hypothesis import strategies as st

from rnnserve.backends import TranslateOptions
from rnnserve_plugins.gru_translator.backend import GruTranslator
from rnnserve_plugins.gru_translator.document import split_document
from rnnserve_plugins.gru_translator.protect import (
    MASK_TOKENS,
    find_spans,
    has_masks,
    mask,
    mask_pair,
    mask_pairs,
    unmask,
)
from rnnserve_plugins.gru_translator.subwords import BOS_ID, EOS_ID, PAD_ID, UNK_ID, SubwordVocab
from tests.gru_translator.conftest import TOY, tiny_model

# -- documents -----------------------------------------------------------------------------


def test_a_document_is_cut_into_sentences_and_keeps_its_whitespace() -> None:
    text = "  Hello world. This is e.g. a test!  Next line?\n\n  Second paragraph: Yes. Dr. Who came.\r\nEnd  "
    document = split_document(text)
    assert document.sentences == ("Hello world.", "This is e.g. a test!", "Next line?", "Second paragraph: Yes.",
                                  "Dr. Who came.", "End")
    assert document.separators == ("  ", " ", "  ", "\n\n  ", " ", "\r\n", "  ")
    assert document.join([s.upper() for s in document.sentences]) == text.replace("e.g.", "E.G.").upper()


@pytest.mark.parametrize("text", ["", "   ", "\n\n", "One", "Wait... what? No."])
def test_edge_cases_rejoin_exactly(text: str) -> None:
    document = split_document(text)
    assert document.join(list(document.sentences)) == text
    assert all(s.strip() == s and s for s in document.sentences)


@given(st.text(alphabet=st.sampled_from("ab .!?:\nXZ3\t\r\"("), max_size=60))
def test_any_text_rejoins_exactly(text: str) -> None:
    document = split_document(text)
    assert document.join(list(document.sentences)) == text


# -- protected spans -------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "spans"), [
    ("Open /etc/hosts or ~/notes.txt now.", ["/etc/hosts", "~/notes.txt"]),
    ("See https://example.org/a?b=1, or www.debian.org.", ["https://example.org/a?b=1", "www.debian.org"]),
    ("Write to help@example.com.", ["help@example.com"]),
    ("Saved %d of %(total)s files in {0} ({name}) as {:.2f}.", ["%d", "%(total)s", "{0}", "{name}", "{:.2f}"]),
    ("Press <b>OK</b> or <br/> <a href=\"x\">here</a>", ["<b>", "</b>", "<br/>", "<a href=\"x\">", "</a>"]),
    ("Version 3.14 has 1,000 files, 50% at 10:30.", ["3.14", "1,000", "50%", "10:30"]),
    ("Set $HOME and ${PATH}.", ["$HOME", "${PATH}"]),
    ("Click here to save your changes.", []),
])
def test_spans_of_each_kind_are_found(text: str, spans: list[str]) -> None:
    assert find_spans(text) == spans
    masked = mask(text)
    assert list(masked.spans) == spans
    assert unmask(masked.text, masked.spans) == text


def test_unmask_never_loses_a_span_and_drops_unknown_masks() -> None:
    assert unmask("Seite ⟦1⟧ von ⟦0⟧", ("3", "10")) == "Seite 10 von 3"
    assert unmask("Seite von", ("3", "10")) == "Seite von 3 10"
    assert unmask("Seite ⟦7⟧ ⟦0⟧ ⟦0⟧", ("3",)) == "Seite 3 3"


def test_a_mask_token_in_the_text_is_itself_protected() -> None:
    masked = mask("literal ⟦0⟧ and 7")
    assert masked.spans == ("⟦0⟧", "7") and unmask(masked.text, masked.spans) == "literal ⟦0⟧ and 7"


def test_training_pairs_are_masked_alike_only_when_their_spans_agree() -> None:
    assert mask_pair("Delete %s files from %s?", "%s Dateien aus %s löschen?") == \
        ("Delete ⟦0⟧ files from ⟦1⟧?", "⟦0⟧ Dateien aus ⟦1⟧ löschen?")
    assert mask_pair("Page 3 of 10", "Seite 10 zu 3") == ("Page ⟦0⟧ of ⟦1⟧", "Seite ⟦1⟧ zu ⟦0⟧")
    assert mask_pair("Page 3 of 10", "Seite drei von 10") is None
    assert mask_pair("No spans here.", "Keine hier.") is None


# -- through a tiny model --------------------------------------------------------------------


@pytest.fixture(scope="module")
def masked_vocab() -> SubwordVocab:
    """A toy SentencePiece model with the mask tokens as user-defined symbols."""
    proto = io.BytesIO()
    lines = (TOY / "toy.en").read_text().splitlines() + (TOY / "toy.de").read_text().splitlines()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_writer=proto, vocab_size=76,
                                   user_defined_symbols=list(MASK_TOKENS), character_coverage=1.0,
                                   pad_id=PAD_ID, unk_id=UNK_ID, bos_id=BOS_ID, eos_id=EOS_ID,
                                   normalization_rule_name="identity", minloglevel=2)
    return SubwordVocab(proto.getvalue())


@pytest.fixture(scope="module")
def translator(masked_vocab: SubwordVocab) -> GruTranslator:
    return GruTranslator(tiny_model(seed=3, vocab_size=masked_vocab.size, std=0.3), masked_vocab)


def test_a_checkpoint_whose_vocabulary_has_the_masks_protects_spans(translator: GruTranslator,
                                                                      toy_vocab: SubwordVocab) -> None:
    assert translator.protects_spans
    assert not GruTranslator(tiny_model(vocab_size=toy_vocab.size), toy_vocab).protects_spans


@pytest.mark.parametrize("beam_size", [1, 3])
def test_protected_spans_come_through_unchanged(translator: GruTranslator, beam_size: int) -> None:
    texts = ["Open /etc/hosts and see https://example.org/x.", "Saved %d of %(total)s files in {0}.",
             "The dog sees 3 cats at 10:30 <b>now</b>."]
    options = TranslateOptions(beam_size=beam_size, n_best=beam_size, max_length=40)
    for text, result in zip(texts, translator.translate(texts, options), strict=True):
        assert "⟦" in "".join(result.source_tokens), "the source was decoded masked"
        for hypothesis in result.hypotheses:
            for span in find_spans(text):
                assert span in hypothesis.text, (span, hypothesis.text)
            assert "⟦" not in hypothesis.text


def test_a_document_is_translated_as_its_sentences_and_rejoined(translator: GruTranslator) -> None:
    sentences = ["The dog sees the cat.", "The cat sleeps.", "A bird sings."]
    document = f"  {sentences[0]} {sentences[1]}\n\n{sentences[2]}\n"
    options = TranslateOptions(beam_size=2, n_best=2, max_length=30, return_attention=True)
    alone = translator.translate(sentences, options)
    (whole,) = translator.translate([document], options)
    for k in range(2):
        parts = [result.hypotheses[k] for result in alone]
        hypothesis = whole.hypotheses[k]
        assert hypothesis.text == f"  {parts[0].text.strip()} {parts[1].text.strip()}\n\n{parts[2].text.strip()}\n"
        assert hypothesis.log_probability == pytest.approx(sum(p.log_probability for p in parts))
        assert hypothesis.tokens == [t for p in parts for t in p.tokens]
        assert len(hypothesis.attention) == len(hypothesis.tokens)
        assert all(len(row) == len(whole.source_tokens) and sum(row) == pytest.approx(1.0, abs=1e-4)
                   for row in hypothesis.attention)
    assert whole.source_tokens == [t for result in alone for t in result.source_tokens]


def test_checkpoint_dir_of_the_shipped_model_loads_without_masks() -> None:
    """The shipped checkpoint predates the masks: it translates unmasked (nothing breaks)."""
    from rnnserve_plugins.gru_translator.plugin import SHIPPED_DIR

    if not Path(SHIPPED_DIR, "sentencepiece.model").exists():
        pytest.skip(f"no shipped checkpoint at {SHIPPED_DIR}")
    translator = GruTranslator.load(SHIPPED_DIR)
    (result,) = translator.translate(["Page 3 of 10."], TranslateOptions(beam_size=1, n_best=1, max_length=20))
    assert result.hypotheses[0].text.strip()


def test_a_corpus_is_masked_pair_by_pair(masked_vocab: SubwordVocab, toy_vocab: SubwordVocab) -> None:
    english, german = mask_pairs(["Page 3 of 10", "Three cats", "Open {0}"], ["Seite 3 von 10", "Drei Katzen", "x"])
    assert english == ["Page ⟦0⟧ of ⟦1⟧", "Three cats", "Open {0}"]
    assert german == ["Seite ⟦0⟧ von ⟦1⟧", "Drei Katzen", "x"]
    assert has_masks(masked_vocab.pieces(range(masked_vocab.size)))
    assert not has_masks(toy_vocab.pieces(range(toy_vocab.size)))


def test_the_joint_subword_model_holds_the_masks_as_single_pieces(tmp_path: Path) -> None:
    from rnnserve_plugins.gru_translator.subwords import train_joint

    english = [*(TOY / "toy.en").read_text().splitlines(), "Page 3 of 10.", "Open {0} now."]
    german = [*(TOY / "toy.de").read_text().splitlines(), "Seite 3 von 10.", "Jetzt {0} öffnen."]
    vocab = train_joint(english, german, tmp_path / "joint.model", vocab_size=80)
    assert has_masks(vocab.pieces(range(vocab.size)))
    assert "⟦1⟧" in vocab.pieces(vocab.encode("Seite ⟦0⟧ von ⟦1⟧."))
