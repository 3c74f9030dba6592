"""Documentation pages: HTML blocks, page alignment and sentence alignment on two committed pages."""

from __future__ import annotations

from pathlib import Path

from rnnserve_plugins.gru_translator.corpus.documents import Block, align_blocks, html_blocks
from rnnserve_plugins.gru_translator.corpus.sentences import align_sentences, split_sentences

PAGES = Path(__file__).parents[1] / "data" / "translator_corpus"


def page(lang: str) -> list[Block]:
    return html_blocks((PAGES / f"{lang}.html").read_text(encoding="utf-8"))


def test_blocks_leave_out_head_scripts_furniture_code_and_hidden_text():
    blocks = page("en")
    assert [b.key for b in blocks] == [("h1", "hd_1"), ("p", "par_1"), ("p", "par_2"), ("p", "par_3"),
                                       ("td", "td_1"), ("td", "td_2"), ("li", ""), ("li", "")]
    texts = [b.text for b in blocks]
    assert texts[1] == "Click File - Save to save your changes. The document keeps its format."
    assert texts[2] == "Choose a folder and enter a file name. Then press Enter."  # <br> is a space
    assert texts[3] == "Use Ctrl+S as a shortcut."  # the hidden macOS variant is left out
    assert not any("convert-to" in t or "not text" in t or "Help" in t for t in texts)


def test_pages_with_the_same_structure_align_block_by_block():
    pairs = align_blocks(page("en"), page("de"))
    assert len(pairs) == 8
    assert pairs[0] == ("Saving Documents", "Dokumente speichern")
    assert pairs[5] == ("Saves the current document under a new name.",
                        "Speichert das aktuelle Dokument unter einem neuen Namen.")
    assert pairs[7] == ("Use the ODF format!", "Das ODF-Format verwenden!")


def test_pages_that_differ_align_around_unique_ids():
    english, german = page("en"), page("de")
    german = [german[1], german[0], *german[3:]]  # h1 and par_1 swapped, par_2 missing
    pairs = align_blocks(english, german)
    assert pairs[0] == ("Saving Documents", "Dokumente speichern")  # an anchor
    assert all(not en.startswith(("Click", "Choose")) for en, _ in pairs)  # out of order, or missing
    assert pairs[1:] == list(zip([b.text for b in english[3:]], [b.text for b in german[2:]], strict=True))
    assert len(pairs) == 6  # h1, par_3, td_1, td_2 anchored; the two <li> after the last anchor match in keys
    shorter = align_blocks(english, german[:-1])  # [li, li] against [li]: too unlike to pair by tags
    assert shorter == pairs[:4]

def test_pages_without_ids_align_along_common_tag_runs():
    english = [Block(b.tag, "", b.text) for b in page("en")]
    german = [Block(b.tag, "", b.text) for b in page("de")]
    inserted = [german[0], Block("p", "", "Ein nur deutscher Absatz."), *german[1:]]
    assert align_blocks(english, inserted) == list(zip([b.text for b in english], [b.text for b in german],
                                                       strict=True))  # the inserted paragraph costs only itself


def test_paragraphs_are_split_into_sentences_when_both_sides_agree():
    pairs = [pair for blocks in align_blocks(page("en"), page("de")) for pair in align_sentences(blocks)]
    assert ("The document keeps its format.", "Das Dokument behält sein Format.") in pairs
    assert ("Then press Enter.", "Drücken Sie dann die Eingabetaste.") in pairs
    assert align_sentences(("One sentence. And another.", "Ein Satz und noch einer.")) == \
        [("One sentence. And another.", "Ein Satz und noch einer.")]  # unequal counts: the paragraph as it is
    shifted = ("Select the lower layer and make sure that a layer above it is visible. Done.",
               "Sonst zählt nur die aktive Ebene. Wählen Sie die untere Ebene und achten Sie auf die obere.")
    assert align_sentences(shifted) == [shifted]  # as many sentences, but split at different places


def test_sentence_splitter_keeps_abbreviations_and_ordinals():
    assert split_sentences("Use e.g. Writer. Then save it! Done? Yes.") == \
        ["Use e.g. Writer.", "Then save it!", "Done?", "Yes."]
    assert split_sentences("Wählen Sie z. B. Datei. Das geht ab dem 3. Oktober.", "de") == \
        ["Wählen Sie z. B. Datei.", "Das geht ab dem 3. Oktober."]
    assert split_sentences("Replace it by green 8. The old color is gone.", "en") == \
        ["Replace it by green 8.", "The old color is gone."]  # an ordinal is German only
    assert split_sentences("Absatztextbereich: Das Objekt wird positioniert.", "de") == \
        ["Absatztextbereich: Das Objekt wird positioniert."]  # a colon does not end a sentence
    assert split_sentences("Version 2.4.1 is out. file.txt is saved.") == ["Version 2.4.1 is out. file.txt is saved."]
