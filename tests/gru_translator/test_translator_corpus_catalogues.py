"""Message catalogues: a .mo (and a .po) built here with polib, read into cleaned pairs."""

from __future__ import annotations

import polib

from rnnserve_plugins.gru_translator.corpus.catalogues import catalogue_pairs, clean_message, is_catalogue


def build_catalogue() -> polib.POFile:
    po = polib.POFile()
    po.metadata = {"Content-Type": "text/plain; charset=UTF-8", "Plural-Forms": "nplurals=2; plural=(n != 1);"}
    entries = [
        polib.POEntry(msgid="_Save the file", msgstr="Datei _speichern"),
        polib.POEntry(msgid="Sa&ve All", msgstr="&Alle speichern"),
        polib.POEntry(msgid="~Insert Object", msgstr="Objekt ~einfügen"),
        polib.POEntry(msgid="Open", msgstr="Öffnen", msgctxt="verb"),
        polib.POEntry(msgid="Open", msgstr="Offen", msgctxt="adjective"),
        polib.POEntry(msgid="%d file was deleted from %s", msgid_plural="%d files were deleted from %s",
                      msgstr_plural={0: "%d Datei wurde aus %s gelöscht", 1: "%d Dateien wurden aus %s gelöscht"}),
        polib.POEntry(msgid="Copy %(name)s to {0}?", msgstr="%(name)s nach {0} kopieren?"),
        polib.POEntry(msgid="<b>Warning:</b> the disk is &lt;10% full", msgstr="<b>Warnung:</b> Platte &lt;10% voll"),
        polib.POEntry(msgid="Delete everything", msgstr="Alles löschen", flags=["fuzzy"]),
        polib.POEntry(msgid="Not translated yet", msgstr=""),
        polib.POEntry(msgid="translator-credits", msgstr="Erika Mustermann"),
        polib.POEntry(msgid="Line one\nline two", msgstr="Zeile eins\nZeile zwei"),
        polib.POEntry(msgid="Old text", msgstr="Alter Text", obsolete=True),
    ]
    for entry in entries:
        po.append(entry)
    return po


EXPECTED = [
    ("Save the file", "Datei speichern"),
    ("Save All", "Alle speichern"),
    ("Insert Object", "Objekt einfügen"),
    ("Open", "Öffnen"),
    ("Open", "Offen"),  # contexts tell entries apart but are not part of the text
    ("%d file was deleted from %s", "%d Datei wurde aus %s gelöscht"),
    ("%d files were deleted from %s", "%d Dateien wurden aus %s gelöscht"),
    ("Copy %(name)s to {0}?", "%(name)s nach {0} kopieren?"),
    ("Warning: the disk is <10% full", "Warnung: Platte <10% voll"),
    ("Line one line two", "Zeile eins Zeile zwei"),
]


def test_mo_catalogue_gives_cleaned_pairs_with_plurals_and_contexts(tmp_path):
    build_catalogue().save_as_mofile(str(tmp_path / "app.mo"))
    pairs = list(catalogue_pairs((tmp_path / "app.mo").read_bytes(), "app.mo"))
    assert sorted(pairs) == sorted(EXPECTED)


def test_po_catalogue_skips_fuzzy_obsolete_untranslated_and_credits():
    pairs = list(catalogue_pairs(str(build_catalogue()), "app.po"))
    assert sorted(pairs) == sorted(EXPECTED)
    assert ("Delete everything", "Alles löschen") not in pairs


def test_accelerators_go_and_placeholders_stay():
    assert clean_message("_File") == "File" and clean_message("&File") == "File" and clean_message("~File") == "File"
    assert clean_message("R&&D budget") == "R&D budget"
    assert clean_message("Tom & Jerry") == "Tom & Jerry"
    assert clean_message("Open ~/Documents/file_name") == "Open ~/Documents/file_name"
    assert clean_message("%s_%d items in %(user_name)s, {file_name}, $(INSTDIR)") == \
        "%s_%d items in %(user_name)s, {file_name}, $(INSTDIR)"
    assert clean_message("Welcome to %PRODUCTNAME ~Writer") == "Welcome to %PRODUCTNAME Writer"


def test_catalogue_paths():
    assert is_catalogue("usr/share/locale/de/LC_MESSAGES/gedit.mo")
    assert is_catalogue("usr/lib/libreoffice/program/resource/de/LC_MESSAGES/sw.mo")
    assert not is_catalogue("usr/share/locale/de_CH/LC_MESSAGES/gedit.mo")
    assert not is_catalogue("usr/share/locale/fr/LC_MESSAGES/gedit.mo")
