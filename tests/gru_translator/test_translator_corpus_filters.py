"""Pair filters: markup, placeholders, folding, length ratio, language check, and their order in build_splits."""

from __future__ import annotations

from rnnserve_plugins.gru_translator.corpus.filters import (
    fold,
    keep,
    language,
    placeholders,
    right_languages,
    same_placeholders,
    strip_markup,
)
from rnnserve_plugins.gru_translator.data import FILTERS, build_splits


def test_markup_is_stripped_and_references_resolved():
    assert strip_markup("<p>Press <b>Enter</b> &amp; wait &lt;5 s</p>") == " Press  Enter  & wait <5 s "
    assert strip_markup("a < b and c > d") == "a < b and c > d"  # not tags


def test_placeholders_are_found_and_compared():
    assert placeholders("%1$s of %2$d, %(name)s, {0}, {name}, $(INSTDIR), %-5.2f, %lu, %PRODUCTNAME, 100%%") == {
        "%1$s": 1, "%2$d": 1, "%(name)s": 1, "{0}": 1, "{name}": 1, "$(INSTDIR)": 1, "%-5.2f": 1, "%lu": 1,
        "%PRODUCTNAME": 1}
    assert not placeholders("50% of the 100 % done")
    assert same_placeholders(("Copy %1$s to %2$s", "%2$s: %1$s kopieren"))  # reordered positions are fine
    assert not same_placeholders(("Copy %s to %s", "%s kopieren"))


def test_fold_ignores_case_spacing_and_punctuation():
    assert fold("Save the file!") == fold("save  the FILE") == "savethefile"
    assert fold("Größe") != fold("Grosse")


def test_length_ratio_and_word_limit():
    assert keep(("Open the file.", "Öffnen Sie die Datei."))
    assert not keep(("Yes.", "Ja, das ist eine sehr lange deutsche Antwort."))
    assert keep(("Set", "Festlegen"))  # short strings get slack
    assert not keep(("Set", "Einen neuen Wert festlegen"))
    assert not keep((" ".join(["word"] * 61), " ".join(["Wort"] * 61)))


def test_language_check_on_both_sides():
    assert language("Click here to save your changes.") == "en"
    assert language("Klicken Sie hier, um Ihre Änderungen zu speichern.") == "de"
    assert right_languages(("The file could not be opened.", "Die Datei konnte nicht geöffnet werden."))
    assert not right_languages(("The file could not be opened.", "The file could not be opened, sorry."))
    assert not right_languages(("Die Datei konnte nicht geöffnet werden.", "The file could not be opened."))  # swapped


def test_build_splits_counts_each_filter():
    good = [(f"The {n} files were saved in the folder.", f"Die {n} Dateien wurden im Ordner gespeichert.")
            for n in range(50)]
    noisy = [
        good[0],  # exact duplicate
        ("THE 1 FILES WERE SAVED IN THE FOLDER!", "die 1 dateien wurden im ordner gespeichert"),  # normalised
        ("Settings", "Settings"),  # untranslated
        ("Yes.", "Ja, das ist eine sehr lange deutsche Antwort."),  # ratio
        ("Delete %s now", "Jetzt löschen"),  # placeholder lost
        ("The document was printed.", "The document has been printed."),  # German side is English
        ("Open", "Öffnen"),  # too short for a language check: kept
    ]
    splits, counts = build_splits([], [], [("ui-test", "ui", good + noisy)])
    assert {stage: counts[f"ui-test_{stage}"] for stage in ("raw", *FILTERS)} == {
        "raw": 57, "duplicates": 1, "near_duplicates": 1, "untranslated": 1, "length_filtered": 1,
        "placeholder_mismatch": 1, "language_filtered": 1}
    kept = splits["train"] + splits["dev.ui"] + splits["test.ui"]
    assert len(kept) == 51 and ("Open", "Öffnen") in kept
