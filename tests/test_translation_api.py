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
    with pytest.raises(errors.InvalidArgument, match=r"texts\[0\] \(after NFKC normalisation\).*max_text_chars"):
        client.translate("toy-tr", ["\ufdfa" * 200])


def test_merged_batches_stay_within_max_translation_beams() -> None:
    """Concurrent calls with equal options share a backend call only while sentences x beam_size
    stays within what one request may ask (max_translation_beams): two calls at the limit no
    longer make one call twice as long, which the watchdog times as one step. A document
    counts as its sentences."""
    from rnnserve.backends import TranslateOptions
    from rnnserve.runtime.translation_scheduler import TranslationScheduler, _TranslationJob
    from tests.support.toy_plugin import ToyTranslator

    scheduler = TranslationScheduler("tr", ToyTranslator(), max_batch_texts=128, max_queue=16, max_beams=16)
    options = TranslateOptions(beam_size=4)
    for texts in (["a"] * 3, ["b"], ["c"] * 2, ["d"]):
        scheduler._jobs.append(_TranslationJob(texts, options, len(texts), Future()))
    first = scheduler._take()
    assert [len(j.texts) for j in first] == [3, 1]  # 4 texts x beam 4 = 16; "c" would make 24
    assert [len(j.texts) for j in scheduler._take()] == [2, 1]
    scheduler._jobs.append(_TranslationJob(["One. Two. Three."], options, 3, Future()))
    scheduler._jobs.append(_TranslationJob(["e", "f"], options, 2, Future()))
    assert [j.units for j in scheduler._take()] == [3]  # 3 + 2 sentences x beam 4 = 20 > 16


def test_limits_count_the_sentences_a_translator_decodes() -> None:
    """A document is held to max_document_chars, each of its sentences to max_text_chars, and
    its sentences x beam_size to max_translation_beams."""
    from rnnserve.backends import TranslateOptions
    from rnnserve.edge.errors import LimitExceeded
    from rnnserve.edge.validation import translate_call
    from rnnserve.ops.config import Limits
    from rnnserve_client.v1 import translation_pb2

    limits = Limits(max_text_chars=20, max_document_chars=200, max_translation_beams=12)

    def split(text: str) -> list[str]:
        return [part.strip() + "." for part in text.split(".") if part.strip()]

    def call(text: str, beam: int = 2):
        request = translation_pb2.TranslateRequest(model="m", texts=[text], beam_size=beam)
        return translate_call(request, limits, TranslateOptions(), split)

    document = "A short one. Another one. And a third."  # 38 characters, three sentences of 20 or fewer
    assert call(document).sentences == [["A short one.", "Another one.", "And a third."]]
    assert call(document).units == 3
    over = "sentences of all texts x beam_size is 15, over the server limit max_translation_beams=12"
    with pytest.raises(LimitExceeded, match=over):
        call(document, beam=5)
    with pytest.raises(LimitExceeded, match=r"texts\[0\] sentence 1 .*max_text_chars"):
        call("Short. This sentence is far too long.")
    with pytest.raises(LimitExceeded, match=r"texts\[0\] .*max_document_chars"):
        call("Word. " * 40)


def test_concurrent_calls_with_equal_options_share_a_batch(server: ServerThread, client: Client) -> None:
    translator = server.app.registry.find("toy-tr").backend
    translator.batches.clear()
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: client.translate("toy-tr", [f"text {i}"])[0], range(8)))
    assert [r.hypotheses[0].text for r in results] == [f"TEXT {i}" for i in range(8)]
    assert sum(translator.batches) == 8 and max(translator.batches) > 1
