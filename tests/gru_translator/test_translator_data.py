"""Corpus building: Ding parsing and cleaning, Bible alignment, dedup, filtering, split, manifest."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

from rnnserve_plugins.gru_translator.data import (
    PHRASES,
    SPLITS,
    bucket,
    build_splits,
    clean_bible,
    clean_ding,
    parse_ding,
    parse_ding_phrases,
    phrase_split,
    prepare,
    read_bible,
    read_parallel,
    split_name,
)

DING = [
    "# Version :: devel",
    "Aal {m} [zool.] | Aale {pl} :: eel | eels",
    "Folge {f} | Das ist die Folge schlechter Planung. | Er kam (zu spät) an. :: consequence | "
    "That is the consequence of poor planning. | He arrived (too late).",
    "Er war ruhig.; Er blieb ruhig. :: He was calm.; He stayed calm.",
    "Sie ist ja noch ein Kind.; Sie ist jung. :: She is still only/but a child.",
    "etw. abgucken | abguckend :: to copy sth. from sb. | copying",
    "Wie geht’s „dir“? | zwei :: How are “you” doing? | two | three",
    "die breite Masse | im kleinen Rahmen {adv} :: the crowd | in a small setting",
    "jdm. etw. spendieren :: to buy sb. sth.",
]


def test_ding_keeps_example_sentences_without_annotations():
    assert list(parse_ding(DING)) == [
        ("That is the consequence of poor planning.", "Das ist die Folge schlechter Planung."),
        ("He was calm.", "Er war ruhig."),  # as many alternatives on both sides: zipped
        ("He stayed calm.", "Er blieb ruhig."),
        ("She is still only a child.", "Sie ist ja noch ein Kind."),  # otherwise first with first
    ]  # "He arrived." is too short, "to copy sth. ..." no sentence, unequal sub-entry counts skipped


def test_ding_phrases_are_multi_word_entries_without_placeholders():
    assert list(parse_ding_phrases(DING)) == [
        ("the crowd", "die breite Masse"),
        ("in a small setting", "im kleinen Rahmen"),
    ]  # single words, sentences and "to buy sb. sth." are not phrases for training


def test_phrases_train_only_and_never_repeat_a_sentence_pair():
    sentences = {"train": [("He was calm.", "Er war ruhig.")], "dev": [], "test": []}
    phrases = [(f"big house {i}", f"großes Haus {i}") for i in range(300)] + [("He was calm.", "Er war ruhig.")]
    kept, counts = phrase_split(phrases, sentences)
    assert counts == {"ding_phrases_raw": 301, f"{PHRASES}_pairs": len(kept)}
    assert ("He was calm.", "Er war ruhig.") not in kept
    assert all(split_name(en) == "train" for en, _ in kept) and 250 < len(kept) < 300


def test_cleaning():
    assert clean_ding("Er kam (zu spät) {vi} [ugs.]  an .") == "Er kam an."
    assert clean_ding("Der Wettbewerb ist schärfer / härter geworden.") == "Der Wettbewerb ist schärfer geworden."
    assert clean_ding("Wie geht’s „dir“?") == "Wie geht's \"dir\"?"
    assert clean_bible("As an offering of first -[fruits] you shall offer [even] God`s gift.") == \
        "As an offering of first fruits you shall offer even God's gift."


def make_bible(path: Path) -> Path:
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE bible (id INTEGER, bbName TEXT, bNumber INTEGER, cNumber INTEGER, "
                       "vNumber INTEGER, vText TEXT)")
    rows = [("4", 1, 1, 1, "In the beginning God created the heavens and the earth."),
            ("e", 1, 1, 1, "Im Anfang schuf Gott die Himmel und die Erde."),
            ("4", 1, 1, 2, "God`s Spirit was hovering over the [surface of the] waters."),
            ("e", 1, 1, 2, "Und der Geist Gottes schwebte über den Wassern."),
            ("4", 1, 1, 3, "Only English here."),
            ("1", 1, 1, 3, "Ein anderer Text."),
            ("4", 1, 1, 4, "In the beginning God created the heavens and the earth."),
            ("e", 1, 1, 4, "Im Anfang schuf Gott die Himmel und die Erde.")]
    connection.executemany("INSERT INTO bible VALUES (0, ?, ?, ?, ?, ?)", rows)
    connection.commit()
    connection.close()
    return path


def test_bible_verses_are_aligned_by_reference(tmp_path):
    pairs = list(read_bible(make_bible(tmp_path / "bible.db")))
    assert pairs[:2] == [("In the beginning God created the heavens and the earth.",
                          "Im Anfang schuf Gott die Himmel und die Erde."),
                         ("God's Spirit was hovering over the surface of the waters.",
                          "Und der Geist Gottes schwebte über den Wassern.")]
    assert len(pairs) == 3  # verse 3 has no Elberfelder text


def test_split_is_stable_deduplicated_and_filtered():
    assert bucket("He was calm.") == int(hashlib.sha1(b"He was calm.").hexdigest(), 16) % 100
    ding = [(f"Sentence number {i} is here.", f"Satz Nummer {i} ist hier.") for i in range(400)]
    bible = [*ding[:3], ("Short one here.", "Ein viel zu langer deutscher Satz, der gar nicht passt, gar nicht.")]
    splits, counts = build_splits(ding, bible)
    assert counts["bible_duplicates"] == 3 and counts["bible_length_filtered"] == 1
    assert set(splits) == set(SPLITS)
    assert sum(len(splits[s]) for s in ("train", "dev", "test")) == 400
    assert splits["test"] == splits["test.ding"] + splits["test.bible"]
    for name in ("train", "dev", "test"):
        assert all(split_name(en) == name for en, _ in splits[name])
    assert 0 < len(splits["test"]) < 30 and 0 < len(splits["dev"]) < 30


def test_prepare_writes_parallel_files_and_a_manifest(tmp_path):
    ding_file = tmp_path / "de-en"
    ding_file.write_text("\n".join(DING) + "\n")
    manifest = prepare(tmp_path / "out", ding_file, make_bible(tmp_path / "bible.db"))
    out = tmp_path / "out"
    assert json.loads((out / "manifest.json").read_text()) == manifest
    for name, info in manifest["files"].items():
        assert info["sha256"] == hashlib.sha256((out / name).read_bytes()).hexdigest()
    en, de = read_parallel(out, "train")
    total = sum(len(read_parallel(out, s)[0]) for s in ("train", "dev", "test"))
    assert total == 6 and len(en) == len(de)  # 4 Ding sentences + 2 distinct Bible verses
    phrases_en, _ = read_parallel(out, PHRASES)
    assert set(phrases_en) <= {"the crowd", "in a small setting"} and manifest["counts"]["ding_phrases_raw"] == 2
    assert manifest["source"]["ding"]["dictionary_sha256"] == hashlib.sha256(ding_file.read_bytes()).hexdigest()
