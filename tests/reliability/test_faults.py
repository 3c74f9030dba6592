"""Faults the server survives: hung backends (the step watchdog), backends that raise
(INTERNAL with the request id; details only in the log), and request ids end to end.
"""

from __future__ import annotations

import io
import json
import logging
import re
import threading
import time
from collections.abc import Iterator

import grpc
import pytest

from rnnserve.host.plugins import PluginHost
from rnnserve.ops.config import Limits, ModelSpec, ServerConfig
from rnnserve.ops.logs import JsonFormatter, RequestIdFilter, make_handler, request_id_from, request_id_var
from rnnserve.testing.server import ServerThread, running_server
from rnnserve_client import Client, errors
from rnnserve_client.v1 import (
    assistant_pb2,
    assistant_pb2_grpc,
    generation_pb2,
    generation_pb2_grpc,
    translation_pb2,
    translation_pb2_grpc,
)
from tests.reliability.support import NOT_SERVING, SERVING, health, wait_for

STEP_TIMEOUT = 0.5
HANG = 2.5


@pytest.fixture(scope="module")
def hang_server(toy_host: PluginHost) -> Iterator[ServerThread]:
    models = (
        ModelSpec("lm-hang", "toy-lm", options={"hang_after": 3, "hang_seconds": HANG, "step_delay": 0.01}),
        ModelSpec("tr-hang", "toy-translator", options={"delay": HANG}),
        ModelSpec("assist-hang", "toy-assistant", options={"delay": HANG}),
        ModelSpec("assist", "toy-assistant"),
        ModelSpec("crash", "toy-lm", options={"fail_after": 2}),
    )
    config = ServerConfig(models=models, limits=Limits(step_timeout_s=STEP_TIMEOUT))
    with running_server(config, toy_host) as srv:
        yield srv


def test_hung_backends_fail_their_calls_and_are_marked_failed(hang_server: ServerThread) -> None:
    target = hang_server.target
    outcomes: dict[str, tuple[grpc.StatusCode, str, float]] = {}
    # plain stubs: the Python client would retry UNAVAILABLE (and then see FAILED_PRECONDITION)
    channel = grpc.insecure_channel(target)
    generation = generation_pb2_grpc.GenerationStub(channel)
    translation = translation_pb2_grpc.TranslationStub(channel)
    assistant = assistant_pb2_grpc.AssistantStub(channel)
    # greedy: a sampled end of text within the three steps before the hang would end a call OK
    calls = {
        "generate": lambda: generation.Generate(
            generation_pb2.GenerateRequest(model="lm-hang", prompt="the", max_new_tokens=50, temperature=0),
            timeout=20),
        "stream": lambda: list(generation.GenerateStream(
            generation_pb2.GenerateRequest(model="lm-hang", max_new_tokens=50, temperature=0), timeout=20)),
        "translate": lambda: translation.Translate(
            translation_pb2.TranslateRequest(model="tr-hang", texts=["good day"]), timeout=20),
        "suggest": lambda: assistant.Suggest(assistant_pb2.SuggestRequest(model="assist-hang", text="Eli"), timeout=20),
    }

    def attempt(label: str) -> None:
        start = time.perf_counter()
        try:
            calls[label]()
            outcomes[label] = (grpc.StatusCode.OK, "", time.perf_counter() - start)
        except grpc.RpcError as exc:
            outcomes[label] = (exc.code(), exc.details(), time.perf_counter() - start)

    threads = [threading.Thread(target=attempt, args=(label,)) for label in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    channel.close()
    assert set(outcomes) == set(calls)
    for label, (code, details, seconds) in outcomes.items():
        assert code == grpc.StatusCode.UNAVAILABLE, (label, code, details)  # failed by the watchdog ...
        assert "step_timeout_s" in details and "FAILED" in details
        assert seconds < HANG, (label, seconds)  # ... before the hung call itself would have returned

    with Client(target, timeout=30) as client:
        models = {m.name: m for m in client.list_models()}
        for name in ("lm-hang", "tr-hang", "assist-hang"):
            assert models[name].state == "failed"
            assert models[name].reason.startswith("step exceeded step_timeout_s=0.5")
        # new calls to a hung model: FAILED_PRECONDITION with the reason
        with pytest.raises(errors.FailedPrecondition, match="step exceeded step_timeout_s"):
            client.generate("lm-hang", "x", max_new_tokens=2)
        # the other models keep serving
        assert models["assist"].state == "ready" and client.suggest("assist", "Eli")
        assert health(target) == SERVING
        assert health(target, "rnnserve.v1.Assistant") == SERVING  # "assist" is still READY
        assert wait_for(lambda: health(target, "rnnserve.v1.Translation") == NOT_SERVING)  # its only model hung
    assert wait_for(lambda: hang_server.app.drain.in_flight == 0)


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.addFilter(RequestIdFilter())
        self.setFormatter(logging.Formatter("%(request_id)s %(levelname)s %(name)s: %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def test_a_raising_backend_fails_only_its_calls_with_internal_and_the_request_id(hang_server: ServerThread) -> None:
    handler = _Lines()
    logger = logging.getLogger("rnnserve")
    logger.addHandler(handler)
    try:
        with grpc.insecure_channel(hang_server.target) as channel:
            stub = generation_pb2_grpc.GenerationStub(channel)
            request = generation_pb2.GenerateRequest(model="crash", prompt="the", max_new_tokens=50)
            with pytest.raises(grpc.RpcError) as info:
                stub.Generate(request, timeout=10, metadata=(("x-request-id", "req-crash-42"),))
    finally:
        logger.removeHandler(handler)
    call = info.value
    assert call.code() == grpc.StatusCode.INTERNAL
    assert "req-crash-42" in call.details() and "server log" in call.details()
    assert "exploded" not in call.details() and "/secret" not in call.details()  # no detail, no path
    assert dict(call.trailing_metadata())["x-request-id"] == "req-crash-42"
    # the server log has the traceback under the same id
    internal = [line for line in handler.lines if "internal error" in line]
    assert internal and internal[0].startswith("req-crash-42 ERROR")
    # other models are unaffected
    with Client(hang_server.target, timeout=10) as client:
        assert client.suggest("assist", "Eli")


def test_request_ids_are_returned_and_generated(hang_server: ServerThread) -> None:
    with grpc.insecure_channel(hang_server.target) as channel:
        stub = generation_pb2_grpc.GenerationStub(channel)
        request = generation_pb2.GenerateRequest(model="assist")  # wrong kind: NOT_FOUND
        for sent, expect in (("abc-123", "abc-123"), ("bad id with spaces", None), ("x" * 65, None), (None, None)):
            metadata = (("x-request-id", sent),) if sent else None
            with pytest.raises(grpc.RpcError) as info:
                stub.Generate(request, timeout=5, metadata=metadata)
            rid = dict(info.value.trailing_metadata())["x-request-id"]
            if expect:
                assert rid == expect
            else:
                assert re.fullmatch(r"[0-9a-f]{16}", rid)
        # successful streams carry it too
        call = stub.GenerateStream(generation_pb2.GenerateRequest(model="toy", max_new_tokens=3), timeout=5,
                                   metadata=(("x-request-id", "s-1"),))
        assert len(list(call)) >= 1 and call.code() == grpc.StatusCode.OK
        assert dict(call.trailing_metadata())["x-request-id"] == "s-1"


def test_request_id_validation() -> None:
    assert request_id_from("Req_1.2:3-4") == "Req_1.2:3-4"
    assert request_id_from(b"abc") == "abc"
    assert request_id_from("bad\nid") != "bad\nid"
    assert len(request_id_from(None)) == 16


def test_json_log_lines_carry_the_request_id() -> None:
    stream = io.StringIO()
    handler = make_handler("json", stream)
    logger = logging.getLogger("rnnserve.test-json")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        token = request_id_var.set("rid-json")
        try:
            logger.warning("hello %s", "world")
            try:
                raise ValueError("boom")
            except ValueError:
                logger.exception("failed")
        finally:
            request_id_var.reset(token)
        logger.warning("outside")
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines[0]["message"] == "hello world" and lines[0]["request_id"] == "rid-json"
    assert lines[0]["level"] == "WARNING" and lines[0]["logger"] == "rnnserve.test-json"
    assert "ValueError: boom" in lines[1]["exc"]
    assert lines[2]["request_id"] is None
    assert isinstance(JsonFormatter(), logging.Formatter)


def test_a_model_whose_thread_dies_is_marked_failed_and_answers_at_once(toy_host: PluginHost) -> None:
    """The registry's part of a model thread's death (the thread's own part is in
    tests/test_step_programs.py): the model turns FAILED with the cause, its calls are
    answered FAILED_PRECONDITION at once, and the other models serve on."""
    config = ServerConfig(models=(ModelSpec("doomed", "toy-lm"), ModelSpec("fine", "toy-lm")))
    with running_server(config, toy_host) as srv, Client(srv.target, timeout=10) as client:
        entry = srv.app.registry.find("doomed")
        assert entry.worker is not None and entry.worker.on_crash is not None
        entry.worker.on_crash(RuntimeError("scheduler bug"))  # what its thread calls as it dies
        assert entry.state == "failed" and "scheduler bug" in entry.reason
        started = time.monotonic()
        with pytest.raises(errors.FailedPrecondition, match="scheduler bug"):
            client.generate("doomed", "the", max_new_tokens=3)
        assert time.monotonic() - started < 2
        assert client.generate("fine", "the", max_new_tokens=3, temperature=0).text
