"""Property-based fuzzing (Hypothesis) of request messages through a real server.

Whatever the fields hold, the server answers with one of the statuses a client can act on
(never INTERNAL, UNKNOWN or a deadline, which would mean a crash or a hang) and stays
healthy. Bounded: 60 examples per RPC, no per-example deadline.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnnserve.host.plugins import PluginHost
from rnnserve.ops.config import Limits, ModelSpec, ServerConfig
from rnnserve.testing.server import ServerThread, running_server
from rnnserve_client.v1 import assistant_pb2, generation_pb2, models_pb2, translation_pb2
from tests.reliability.support import METHODS, SERVING, health, raw_call, wait_for

ALLOWED = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
           grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.RESOURCE_EXHAUSTED}
FUZZ = settings(max_examples=60, deadline=None, database=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

MODELS = st.sampled_from(["toy", "small", "tr", "assist", "broken", "nope", ""]) | st.text(max_size=20)
TEXT = st.text(max_size=60) | st.sampled_from(["the quick", "x" * 9000, "\x00\ud7ff\U0010ffff"])
FLOATS = st.floats(allow_nan=True, allow_infinity=True, width=32)
U32 = st.integers(0, 2**32 - 1)
SMALL = st.integers(0, 40) | U32
ENUMS = st.integers(0, 5) | st.integers(-(2**31), 2**31 - 1)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


def build(cls: type, **fields: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A message of ``cls`` whose fields are drawn from ``fields`` (None: left unset)."""
    return st.fixed_dictionaries({name: maybe(s) for name, s in fields.items()}).map(
        lambda d: cls(**{k: v for k, v in d.items() if v is not None}))


GENERATE = build(generation_pb2.GenerateRequest, model=MODELS, prompt=TEXT, max_new_tokens=st.integers(0, 40) | U32,
                 temperature=FLOATS, top_k=U32, top_p=FLOATS, repetition_penalty=FLOATS, n=st.integers(0, 20) | U32,
                 stop=st.lists(st.text(max_size=70), max_size=10), seed=st.integers(0, 2**64 - 1),
                 logprobs=st.booleans())
SCORE = build(generation_pb2.ScoreRequest, model=MODELS, text=TEXT, context=TEXT)
TRANSLATE = build(translation_pb2.TranslateRequest, model=MODELS, texts=st.lists(TEXT, max_size=70),
                  beam_size=SMALL, n_best=SMALL, length_penalty=FLOATS, max_length_ratio=FLOATS,
                  max_length=SMALL, return_attention=st.booleans())
OPTIONS = build(assistant_pb2.SuggestOptions, kinds=st.lists(ENUMS, max_size=8), max_suggestions=SMALL,
                max_phrase_chars=SMALL)
SUGGEST = build(assistant_pb2.SuggestRequest, model=MODELS, text=TEXT, options=OPTIONS)
SESSION_EVENT = st.one_of(
    build(assistant_pb2.SessionOpen, model=MODELS, options=OPTIONS, text=TEXT).map(
        lambda m: assistant_pb2.SessionRequest(open=m)),
    TEXT.map(lambda t: assistant_pb2.SessionRequest(append=assistant_pb2.AppendText(text=t))),
    U32.map(lambda n: assistant_pb2.SessionRequest(delete=assistant_pb2.DeleteText(chars=n))),
    st.just(assistant_pb2.SessionRequest(reset=assistant_pb2.ResetSession())),
    st.just(assistant_pb2.SessionRequest()),
)
GOOD_OPEN = assistant_pb2.SessionRequest(open=assistant_pb2.SessionOpen(model="assist"))
SESSION = st.lists(SESSION_EVENT, max_size=6) | st.lists(SESSION_EVENT, max_size=5).map(lambda e: [GOOD_OPEN, *e])
LIST = build(models_pb2.ListModelsRequest, kind=ENUMS)
GET = build(models_pb2.GetModelRequest, name=MODELS)


@pytest.fixture(scope="module")
def fuzz_server(toy_host: PluginHost) -> Iterator[ServerThread]:
    models = (ModelSpec("small", "toy-lm", max_batch_size=2), ModelSpec("tr", "toy-translator"),
              ModelSpec("assist", "toy-assistant"), ModelSpec("broken", "toy-broken"))
    with running_server(ServerConfig(models=models, limits=Limits(max_queue=64)), toy_host) as srv:
        yield srv


@pytest.fixture(scope="module")
def channel(fuzz_server: ServerThread) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(fuzz_server.target) as ch:
        yield ch


def check(channel: grpc.Channel, method: str, payload: bytes | list[bytes]) -> None:
    outcome = raw_call(channel, method, payload, timeout=20)
    assert outcome.code in ALLOWED, (method, outcome.code, outcome.details)
    assert "Traceback" not in outcome.details


@FUZZ
@given(request=GENERATE, stream=st.booleans())
def test_fuzz_generate(channel: grpc.Channel, request: generation_pb2.GenerateRequest, stream: bool) -> None:
    method = "/rnnserve.v1.Generation/GenerateStream" if stream else "/rnnserve.v1.Generation/Generate"
    check(channel, method, request.SerializeToString())


@FUZZ
@given(request=SCORE)
def test_fuzz_score(channel: grpc.Channel, request: generation_pb2.ScoreRequest) -> None:
    check(channel, "/rnnserve.v1.Generation/Score", request.SerializeToString())


@FUZZ
@given(request=TRANSLATE)
def test_fuzz_translate(channel: grpc.Channel, request: translation_pb2.TranslateRequest) -> None:
    check(channel, "/rnnserve.v1.Translation/Translate", request.SerializeToString())


@FUZZ
@given(request=SUGGEST)
def test_fuzz_suggest(channel: grpc.Channel, request: assistant_pb2.SuggestRequest) -> None:
    check(channel, "/rnnserve.v1.Assistant/Suggest", request.SerializeToString())


@FUZZ
@given(events=SESSION)
def test_fuzz_session(channel: grpc.Channel, events: list[assistant_pb2.SessionRequest]) -> None:
    check(channel, "/rnnserve.v1.Assistant/Session", [e.SerializeToString() for e in events])


@FUZZ
@given(list_request=LIST, get_request=GET)
def test_fuzz_models(channel: grpc.Channel, list_request: models_pb2.ListModelsRequest,
                     get_request: models_pb2.GetModelRequest) -> None:
    check(channel, "/rnnserve.v1.Models/ListModels", list_request.SerializeToString())
    check(channel, "/rnnserve.v1.Models/GetModel", get_request.SerializeToString())


@FUZZ
@given(method=st.sampled_from(sorted(METHODS)), data=st.binary(max_size=200))
def test_fuzz_raw_bytes(channel: grpc.Channel, method: str, data: bytes) -> None:
    check(channel, method, [data] if METHODS[method][0] else data)


def test_server_is_healthy_after_fuzzing(fuzz_server: ServerThread) -> None:
    assert health(fuzz_server.target) == SERVING
    assert wait_for(lambda: fuzz_server.app.drain.in_flight == 0)
    assert wait_for(lambda: fuzz_server.app.services[2].open_sessions == 0)  # type: ignore[attr-defined]
    for name in ("toy", "small"):
        stats = fuzz_server.app.registry.find(name).stats
        assert wait_for(lambda s=stats: s.active_sequences == 0 and s.queue_depth == 0)
