"""The context-free baselines of ``benchmarks.assistant``: which words they offer for a prefix, in order, and
the keystroke savings they give under the benchmark's acceptance rule."""

from __future__ import annotations

from pathlib import Path

from benchmarks.assistant import UnigramCompleter, WordfreqCompleter, simulate

WORDS = Path(__file__).resolve().parents[1] / "data" / "assistant_baselines" / "words_by_frequency.txt"


def fixture_completer() -> WordfreqCompleter:
    return WordfreqCompleter(WORDS.read_text().split())  # 99 common English words, most frequent first


def test_wordfreq_offers_the_most_frequent_extensions_in_order():
    completer = fixture_completer()
    assert completer.complete("", 3) == ["the", "of", "and"]
    assert completer.complete("th", 4) == ["the", "that", "they", "this"]
    assert completer.complete("the", 5) == ["they", "there", "their", "then", "them"]  # not "the" itself
    assert completer.complete("wh", 3) == ["what", "when", "which"]
    assert completer.complete("xyz", 3) == []


def test_wordfreq_matches_case_insensitively_and_keeps_the_typed_case():
    completer = fixture_completer()
    assert completer.complete("Th", 3) == ["The", "That", "They"]
    assert completer.complete("WH", 2) == ["WHat", "WHen"]  # the typed part as typed, the rest as listed
    assert completer.complete("i", 3) == ["in", "is", "it"]  # "I" is listed lower case


def test_the_real_wordfreq_list_is_the_default():
    completer = WordfreqCompleter()  # PyPI wordfreq's bundled English list: no network
    assert completer.complete("", 3) == ["the", "to", "and"]
    assert completer.complete("Pyt", 1) == ["Python"]
    assert all(w.isalpha() or "'" in w for w in completer.complete("", 50))  # word characters only ("00" is listed)


def test_keystroke_savings_of_the_baselines():
    text = "they were there with them, and the other people were there too."
    wordfreq = simulate(text, 3, lambda: fixture_completer().start(3))
    unigram = simulate(text, 3, lambda: UnigramCompleter("zebra zebu").start(3))  # knows no word of the text
    assert unigram == 0.0
    # Most words of the text are among the fixture's 100 and are accepted after a letter or two.
    assert 0.2 < wordfreq < 0.6  # 0.27
    assert simulate(text, 1, lambda: fixture_completer().start(1)) <= wordfreq
