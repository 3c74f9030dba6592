"""Table-driven bad-input battery over every RPC: each case gets the right status code, and
the server is healthy (and idle) afterwards.

Requests are sent as bytes through generic ``unary_unary``/``unary_stream``/``stream_stream``
callables, so the battery also carries messages no client library would build: invalid
UTF-8 in string fields, garbage, unknown enum values, NaN and infinities, uint32/uint64
maxima, and messages over the size limit.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from rnnserve.host.plugins import PluginHost
from rnnserve.ops.config import Limits, ModelSpec, ServerConfig
from rnnserve.testing.server import ServerThread, running_server
from rnnserve_client.v1 import assistant_pb2, generation_pb2, models_pb2, translation_pb2
from tests.reliability.support import SERVING, health, raw_call, wait_for

OK = grpc.StatusCode.OK
INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
FAILED = grpc.StatusCode.FAILED_PRECONDITION
EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED
U32 = 2**32 - 1
U64 = 2**64 - 1
NAN, INF = math.nan, math.inf
MAX_MESSAGE = 256 * 1024

GEN = "/rnnserve.v1.Generation/Generate"
STREAM = "/rnnserve.v1.Generation/GenerateStream"
SCORE = "/rnnserve.v1.Generation/Score"
TRANSLATE = "/rnnserve.v1.Translation/Translate"
SUGGEST = "/rnnserve.v1.Assistant/Suggest"
SESSION = "/rnnserve.v1.Assistant/Session"
LIST = "/rnnserve.v1.Models/ListModels"
GET = "/rnnserve.v1.Models/GetModel"

BROKEN_MESSAGE = "cannot open '/srv/private/models/weights.bin' for reading"


def bad_utf8(message: Any, field_number: int) -> bytes:
    """``message`` serialized, plus string field ``field_number`` holding invalid UTF-8 bytes."""
    return message.SerializeToString() + bytes([field_number << 3 | 2, 3]) + b"\xff\xfe\xc3"


def gen(**fields: Any) -> bytes:
    fields.setdefault("model", "toy")
    return generation_pb2.GenerateRequest(**fields).SerializeToString()


def score(**fields: Any) -> bytes:
    fields.setdefault("model", "toy")
    return generation_pb2.ScoreRequest(**fields).SerializeToString()


def tr(**fields: Any) -> bytes:
    fields.setdefault("model", "tr")
    fields.setdefault("texts", ["good day"])
    return translation_pb2.TranslateRequest(**fields).SerializeToString()


def sg(options: dict[str, Any] | None = None, **fields: Any) -> bytes:
    fields.setdefault("model", "assist")
    return assistant_pb2.SuggestRequest(options=assistant_pb2.SuggestOptions(**(options or {})),
                                        **fields).SerializeToString()


def session_open(model: str = "assist", **options: Any) -> bytes:
    return assistant_pb2.SessionRequest(open=assistant_pb2.SessionOpen(
        model=model, options=assistant_pb2.SuggestOptions(**options))).SerializeToString()


def session(**event: Any) -> bytes:
    return assistant_pb2.SessionRequest(**event).SerializeToString()


APPEND_BAD_UTF8 = bytes([2 << 3 | 2, 5]) + bytes([1 << 3 | 2, 3]) + b"\xff\xfe\xc3"  # append{text=<bad>}
LONG_NAME = "m" * 300

# (id, method, payload, expected code, a substring of the message or None)
CASES: list[tuple[str, str, bytes | list[bytes], grpc.StatusCode, str | None]] = [
    # -- Generate -------------------------------------------------------------------------
    ("gen-ok", GEN, gen(prompt="the", max_new_tokens=5), OK, None),
    ("gen-empty-message", GEN, b"", INVALID, "model is required"),
    ("gen-garbage", GEN, b"\xff\xff\xff\xff", INVALID, "not a valid message"),
    ("gen-bad-utf8-prompt", GEN, bad_utf8(generation_pb2.GenerateRequest(model="toy"), 2), INVALID, "UTF-8"),
    ("gen-bad-utf8-model", GEN, bad_utf8(generation_pb2.GenerateRequest(), 1), INVALID, "UTF-8"),
    ("gen-huge-message", GEN, gen(prompt="x" * (MAX_MESSAGE + 10)), EXHAUSTED, None),
    ("gen-long-model-name", GEN, gen(model=LONG_NAME), INVALID, "at most 256"),
    ("gen-unknown-model", GEN, gen(model="nope"), NOT_FOUND, "toy"),
    ("gen-wrong-kind", GEN, gen(model="tr"), NOT_FOUND, None),
    ("gen-failed-model", GEN, gen(model="broken"), FAILED, "weights.bin"),
    ("gen-prompt-over-limit", GEN, gen(prompt="x" * 8193), INVALID, "max_prompt_chars"),
    ("gen-max-new-tokens-zero", GEN, gen(prompt="the", max_new_tokens=0, temperature=0), OK, None),
    ("gen-max-new-tokens-u32", GEN, gen(max_new_tokens=U32), INVALID, "max_new_tokens"),
    ("gen-n-zero", GEN, gen(n=0, max_new_tokens=3), OK, None),
    ("gen-n-over-limit", GEN, gen(n=17), INVALID, "max_n"),
    ("gen-n-u32", GEN, gen(n=U32), INVALID, "max_n"),
    ("gen-n-over-batch", GEN, gen(model="small-batch", n=3), INVALID, "max_batch_size"),
    ("gen-temperature-nan", GEN, gen(temperature=NAN), INVALID, "temperature"),
    ("gen-temperature-inf", GEN, gen(temperature=INF), INVALID, "temperature"),
    ("gen-temperature-neg-inf", GEN, gen(temperature=-INF), INVALID, "temperature"),
    ("gen-temperature-negative", GEN, gen(temperature=-1), INVALID, "temperature"),
    ("gen-temperature-huge", GEN, gen(temperature=1e30), INVALID, "temperature"),
    ("gen-temperature-zero", GEN, gen(temperature=0, max_new_tokens=3), OK, None),
    ("gen-top-p-zero", GEN, gen(top_p=0), INVALID, "top_p"),
    ("gen-top-p-nan", GEN, gen(top_p=NAN), INVALID, "top_p"),
    ("gen-top-p-inf", GEN, gen(top_p=INF), INVALID, "top_p"),
    ("gen-top-p-negative", GEN, gen(top_p=-0.5), INVALID, "top_p"),
    ("gen-penalty-zero", GEN, gen(repetition_penalty=0), INVALID, "repetition_penalty"),
    ("gen-penalty-nan", GEN, gen(repetition_penalty=NAN), INVALID, "repetition_penalty"),
    ("gen-penalty-neg-inf", GEN, gen(repetition_penalty=-INF), INVALID, "repetition_penalty"),
    ("gen-top-k-u32", GEN, gen(top_k=U32, max_new_tokens=3), OK, None),
    ("gen-seed-u64", GEN, gen(seed=U64), INVALID, "seed"),
    ("gen-seed-zero", GEN, gen(seed=0, max_new_tokens=3), OK, None),
    ("gen-stop-empty", GEN, gen(stop=[""]), INVALID, "stop"),
    ("gen-stop-too-many", GEN, gen(stop=["x"] * 9), INVALID, "max_stop_sequences"),
    ("gen-stop-too-long", GEN, gen(stop=["x" * 65]), INVALID, "max_stop_chars"),
    ("gen-stop-bad-utf8", GEN, bad_utf8(generation_pb2.GenerateRequest(model="toy"), 9), INVALID, "UTF-8"),
    # -- GenerateStream ---------------------------------------------------------------------
    ("stream-ok", STREAM, gen(prompt="the", max_new_tokens=5), OK, None),
    ("stream-empty-message", STREAM, b"", INVALID, "model is required"),
    ("stream-garbage", STREAM, b"\x08", INVALID, "not a valid message"),
    ("stream-bad-utf8-prompt", STREAM, bad_utf8(generation_pb2.GenerateRequest(model="toy"), 2), INVALID, None),
    ("stream-huge-message", STREAM, gen(prompt="x" * (MAX_MESSAGE + 10)), EXHAUSTED, None),
    ("stream-unknown-model", STREAM, gen(model="nope"), NOT_FOUND, None),
    ("stream-wrong-kind", STREAM, gen(model="assist"), NOT_FOUND, None),
    ("stream-failed-model", STREAM, gen(model="broken"), FAILED, None),
    ("stream-temperature-nan", STREAM, gen(temperature=NAN), INVALID, "temperature"),
    ("stream-max-new-tokens-u32", STREAM, gen(max_new_tokens=U32), INVALID, "max_new_tokens"),
    ("stream-n-u32", STREAM, gen(n=U32), INVALID, "max_n"),
    ("stream-top-p-inf", STREAM, gen(top_p=INF), INVALID, "top_p"),
    # -- Score --------------------------------------------------------------------------------
    ("score-ok", SCORE, score(text="the quick"), OK, None),
    ("score-empty-message", SCORE, b"", INVALID, "model is required"),
    ("score-empty-text", SCORE, score(text=""), INVALID, "must not be empty"),
    ("score-over-limit", SCORE, score(context="x" * 8000, text="y" * 193), INVALID, "max_prompt_chars"),
    ("score-bad-utf8-text", SCORE, bad_utf8(generation_pb2.ScoreRequest(model="toy"), 2), INVALID, None),
    ("score-bad-utf8-context", SCORE, bad_utf8(generation_pb2.ScoreRequest(model="toy", text="a"), 3),
     INVALID, None),
    ("score-unknown-model", SCORE, score(model="nope", text="a"), NOT_FOUND, None),
    ("score-wrong-kind", SCORE, score(model="assist", text="a"), NOT_FOUND, None),
    ("score-failed-model", SCORE, score(model="broken", text="a"), FAILED, None),
    ("score-unknown-characters", SCORE, score(text="ÆØÅ 😀"), OK, None),
    # -- Translate --------------------------------------------------------------------------
    ("tr-ok", TRANSLATE, tr(), OK, None),
    ("tr-empty-message", TRANSLATE, b"", INVALID, "model is required"),
    ("tr-no-texts", TRANSLATE, tr(texts=[]), INVALID, "at least one text"),
    ("tr-empty-text", TRANSLATE, tr(texts=[""]), INVALID, "texts[0] is empty"),
    ("tr-too-many-texts", TRANSLATE, tr(texts=["a"] * 65), INVALID, "max_texts_per_call"),
    ("tr-text-too-long", TRANSLATE, tr(texts=["a" * 2001]), INVALID, "max_text_chars"),
    ("tr-beam-u32", TRANSLATE, tr(beam_size=U32), INVALID, "max_beam_size"),
    ("tr-beam-over-limit", TRANSLATE, tr(beam_size=17), INVALID, "max_beam_size"),
    ("tr-n-best-over-beam", TRANSLATE, tr(beam_size=4, n_best=5), INVALID, "n_best"),
    ("tr-n-best-u32", TRANSLATE, tr(n_best=U32), INVALID, "n_best"),
    ("tr-texts-x-beams", TRANSLATE, tr(texts=["a"] * 64, beam_size=16), INVALID, "max_translation_beams"),
    ("tr-length-penalty-nan", TRANSLATE, tr(length_penalty=NAN), INVALID, "length_penalty"),
    ("tr-length-penalty-inf", TRANSLATE, tr(length_penalty=INF), INVALID, "length_penalty"),
    ("tr-length-penalty-negative", TRANSLATE, tr(length_penalty=-1), INVALID, "length_penalty"),
    ("tr-ratio-zero", TRANSLATE, tr(max_length_ratio=0), INVALID, "max_length_ratio"),
    ("tr-ratio-nan", TRANSLATE, tr(max_length_ratio=NAN), INVALID, "max_length_ratio"),
    ("tr-ratio-neg-inf", TRANSLATE, tr(max_length_ratio=-INF), INVALID, "max_length_ratio"),
    ("tr-max-length-u32", TRANSLATE, tr(max_length=U32), OK, None),
    ("tr-attention-ok", TRANSLATE, tr(return_attention=True, n_best=2), OK, None),
    ("tr-attention-too-large", TRANSLATE, tr(texts=["a " * 500] * 60, return_attention=True), INVALID,
     "max_message_bytes"),
    ("tr-zero-options", TRANSLATE, tr(beam_size=0, n_best=0, max_length=0), OK, None),
    ("tr-bad-utf8-text", TRANSLATE, bad_utf8(translation_pb2.TranslateRequest(model="tr"), 2), INVALID, None),
    ("tr-unknown-model", TRANSLATE, tr(model="nope"), NOT_FOUND, None),
    ("tr-wrong-kind", TRANSLATE, tr(model="toy"), NOT_FOUND, None),
    ("tr-huge-message", TRANSLATE, tr(texts=["x" * 1000] * 300), EXHAUSTED, None),
    # -- Suggest ----------------------------------------------------------------------------
    ("suggest-ok", SUGGEST, sg(text="Eli"), OK, None),
    ("suggest-empty-text", SUGGEST, sg(text=""), OK, None),
    ("suggest-empty-message", SUGGEST, b"", INVALID, "model is required"),
    ("suggest-text-over-limit", SUGGEST, sg(text="x" * 100_001), INVALID, "max_document_chars"),
    ("suggest-unknown-kind", SUGGEST, sg({"kinds": [99]}), INVALID, "SUGGESTION_KIND_WORD"),
    ("suggest-unspecified-kind", SUGGEST, sg({"kinds": [0]}), INVALID, "SUGGESTION_KIND_WORD"),
    ("suggest-too-many-kinds", SUGGEST, sg({"kinds": [1] * 1000}), INVALID, "kinds"),
    ("suggest-max-suggestions-u32", SUGGEST, sg({"max_suggestions": U32}), INVALID, "max_suggestions"),
    ("suggest-max-phrase-u32", SUGGEST, sg({"max_phrase_chars": U32}), INVALID, "max_phrase_chars"),
    ("suggest-zero-options", SUGGEST, sg({"max_suggestions": 0, "max_phrase_chars": 0}, text="th"), OK, None),
    ("suggest-bad-utf8", SUGGEST, bad_utf8(assistant_pb2.SuggestRequest(model="assist"), 2), INVALID, None),
    ("suggest-unknown-model", SUGGEST, sg(model="nope"), NOT_FOUND, None),
    ("suggest-wrong-kind", SUGGEST, sg(model="toy"), NOT_FOUND, None),
    # -- Session ----------------------------------------------------------------------------
    ("session-ok", SESSION, [session_open(), session(append=assistant_pb2.AppendText(text="Eli"))], OK, None),
    ("session-no-messages", SESSION, [], OK, None),
    ("session-first-not-open", SESSION, [session(append=assistant_pb2.AppendText(text="x"))], FAILED, "open"),
    ("session-empty-event", SESSION, [b""], INVALID, "SessionRequest.event is not set"),
    ("session-garbage", SESSION, [b"\xff\xff"], INVALID, "not a valid message"),
    ("session-unknown-model", SESSION, [session_open("nope")], NOT_FOUND, None),
    ("session-wrong-kind", SESSION, [session_open("toy")], NOT_FOUND, None),
    ("session-empty-model", SESSION, [session_open("")], INVALID, "model is required"),
    ("session-unknown-kind", SESSION, [session_open(kinds=[99])], INVALID, "SUGGESTION_KIND_WORD"),
    ("session-second-open", SESSION, [session_open(), session_open()], FAILED, "open"),
    ("session-unset-event", SESSION, [session_open(), b""], INVALID, "SessionRequest.event is not set"),
    ("session-append-over-limit", SESSION,
     [session_open(), session(append=assistant_pb2.AppendText(text="x" * 100_001))], INVALID, "max_document_chars"),
    ("session-delete-u32", SESSION, [session_open(), session(delete=assistant_pb2.DeleteText(chars=U32))], OK, None),
    ("session-bad-utf8-append", SESSION, [session_open(), APPEND_BAD_UTF8], INVALID, "UTF-8"),
    ("session-huge-message", SESSION, [session_open(), session(append=assistant_pb2.AppendText(
        text="x" * (MAX_MESSAGE + 10)))], EXHAUSTED, None),
    # -- Models -----------------------------------------------------------------------------
    ("list-ok", LIST, b"", OK, None),
    ("list-unknown-kind", LIST, models_pb2.ListModelsRequest(kind=99).SerializeToString(), INVALID, "kind"),
    ("list-garbage", LIST, b"\x0a\x0a", INVALID, "not a valid message"),
    ("get-ok", GET, models_pb2.GetModelRequest(name="toy").SerializeToString(), OK, None),
    ("get-empty-name", GET, b"", INVALID, "name is required"),
    ("get-unknown", GET, models_pb2.GetModelRequest(name="nope").SerializeToString(), NOT_FOUND, None),
    ("get-long-name", GET, models_pb2.GetModelRequest(name=LONG_NAME).SerializeToString(), INVALID, "at most 256"),
    ("get-bad-utf8", GET, bad_utf8(models_pb2.GetModelRequest(), 1), INVALID, "UTF-8"),
]


@pytest.fixture(scope="module")
def battery_server(toy_host: PluginHost) -> Iterator[ServerThread]:
    models = (
        ModelSpec("small-batch", "toy-lm", max_batch_size=2),
        ModelSpec("tr", "toy-translator"),
        ModelSpec("assist", "toy-assistant"),
        ModelSpec("broken", "toy-broken", options={"message": BROKEN_MESSAGE}),
    )
    limits = Limits(max_message_bytes=MAX_MESSAGE, max_queue=64)
    with running_server(ServerConfig(models=models, limits=limits), toy_host) as srv:
        yield srv


@pytest.fixture(scope="module")
def channel(battery_server: ServerThread) -> Iterator[grpc.Channel]:
    options = [("grpc.max_send_message_length", 8 * MAX_MESSAGE), ("grpc.max_receive_message_length", 8 * MAX_MESSAGE)]
    with grpc.insecure_channel(battery_server.target, options=options) as ch:
        yield ch


@pytest.mark.parametrize(("method", "payload", "expected", "fragment"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input(channel: grpc.Channel, method: str, payload: bytes | list[bytes], expected: grpc.StatusCode,
                   fragment: str | None) -> None:
    outcome = raw_call(channel, method, payload)
    assert outcome.code == expected, outcome.details
    if fragment is not None:
        assert fragment in outcome.details
    assert "Traceback" not in outcome.details and "/srv/" not in outcome.details
    if expected != EXHAUSTED:  # an over-size message is refused by gRPC itself, before any handler
        assert outcome.trailing.get("x-request-id"), outcome.trailing


def test_battery_covers_every_rpc() -> None:
    from tests.reliability.support import METHODS

    assert {c[1] for c in CASES} == set(METHODS)
    for method in METHODS:
        codes = {c[3] for c in CASES if c[1] == method}
        assert OK in codes and (codes - {OK}), method


def test_failed_reason_shows_no_server_path(channel: grpc.Channel) -> None:
    model = models_pb2.Model.FromString(channel.unary_unary(GET)(
        models_pb2.GetModelRequest(name="broken").SerializeToString(), timeout=5))
    assert model.state == models_pb2.MODEL_STATE_FAILED
    assert "'weights.bin'" in model.reason and "/srv" not in model.reason


def test_server_is_healthy_and_idle_after_the_battery(battery_server: ServerThread, channel: grpc.Channel) -> None:
    for method, payload, *_ in [c[1:] for c in CASES]:  # once more, back to back
        raw_call(channel, method, payload)
    assert health(battery_server.target) == SERVING
    assert wait_for(lambda: battery_server.app.drain.in_flight == 0)
    assert wait_for(lambda: battery_server.app.services[2].open_sessions == 0)  # type: ignore[attr-defined]
    stats = battery_server.app.registry.find("toy").stats
    assert wait_for(lambda: stats.active_sequences == 0 and stats.queue_depth == 0)
    response = generation_pb2.GenerateResponse.FromString(
        channel.unary_unary(GEN)(gen(prompt="the qu", temperature=0, max_new_tokens=9), timeout=10))
    assert response.completions[0].text == "ick brown"
