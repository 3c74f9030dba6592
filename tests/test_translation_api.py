"""Translation service with the toy translator: options, n-best, attention, cross-call batching."""

from __future__ import annotations

import unicodedata
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from rnnserve.testing.server import ServerThread
from rnnserve_client import Client, errors


def test_translate_returns_one_result_per_text_with_n_best(client: Client) -> None:
    results = client.translate("toy-tr", ["hello world", "good day"], n_best=2, return_attention=True)
    assert [r.hypotheses[0].text for r in results] == ["HELLO WORLD", "GOOD DAY"]
    assert [h.text for h in results[0].hypotheses] == ["HELLO WORLD", "HELLO WORLD !"]
    assert results[0].hypotheses[0].score == 0.0 and results[0].hypotheses[1].score == -1.0
    attention = results[0].hypotheses[1].attention
    assert attention == [[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]


def test_translate_validates_options(client: Client) -> None:
    with pytest.raises(errors.InvalidArgument, match="n_best"):
        client.translate("toy-tr", ["a"], beam_size=2, n_best=3)
    with pytest.raises(errors.InvalidArgument, match="max_beam_size"):
        client.translate("toy-tr", ["a"], beam_size=1000)
    with pytest.raises(errors.InvalidArgument, match="max_texts_per_call"):
        client.translate("toy-tr", ["a"] * 1000)
    with pytest.raises(errors.InvalidArgument, match="max_text_chars"):
        client.translate("toy-tr", ["a" * 100_000])
    with pytest.raises(errors.InvalidArgument, match="at least one"):
        client.translate("toy-tr", [])
    # One character that NFKC (what SentencePiece reads) turns into 18 counts as 18: 200 of them
    # pass a character count against max_text_chars = 2000 but are 3,600 after normalisation.
    assert len(unicodedata.normalize("NFKC", "\ufdfa")) == 18
    with pytest.raises(errors.InvalidArgument, match=r"text \(after NFKC normalisation\).*max_text_chars"):
        client.translate("toy-tr", ["\ufdfa" * 200])


def test_merged_batches_stay_within_max_translation_beams() -> None:
    """Concurrent calls with equal options share a backend call only while texts x beam_size
    stays within what one request may ask (max_translation_beams): two calls at the limit no
    longer make one call twice as long, which the watchdog times as one step."""
    from rnnserve.backends import TranslateOptions
    from rnnserve.workers import TranslationScheduler, _TranslationJob
    from tests.support.toy_plugin import ToyTranslator

    scheduler = TranslationScheduler("tr", ToyTranslator(), max_batch_texts=128, max_queue=16, max_beams=16)
    options = TranslateOptions(beam_size=4)
    for texts in (["a"] * 3, ["b"], ["c"] * 2, ["d"]):
        scheduler._jobs.append(_TranslationJob(texts, options, Future()))
    first = scheduler._take()
    assert [len(j.texts) for j in first] == [3, 1]  # 4 texts x beam 4 = 16; "c" would make 24
    assert [len(j.texts) for j in scheduler._take()] == [2, 1]


def test_concurrent_calls_with_equal_options_share_a_batch(server: ServerThread, client: Client) -> None:
    translator = server.app.registry.find("toy-tr").backend
    translator.batches.clear()
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: client.translate("toy-tr", [f"text {i}"])[0], range(8)))
    assert [r.hypotheses[0].text for r in results] == [f"TEXT {i}" for i in range(8)]
    assert sum(translator.batches) == 8 and max(translator.batches) > 1
