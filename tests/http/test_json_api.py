"""``/api/v1``: every RPC as JSON (protobuf's JSON mapping), answering as the gRPC servicers do."""

from __future__ import annotations

import json

import pytest
from websockets.exceptions import ConnectionClosedError
from websockets.sync.client import connect

from rnnserve.testing.server import ServerThread
from rnnserve.testing.waiting import wait_until
from rnnserve_client import Client
from tests.http.conftest import request, sse_data


def test_generate_and_its_stream(http_server: ServerThread, base_url: str) -> None:
    body = {"model": "toy", "prompt": "the qu", "max_new_tokens": 9, "temperature": 0, "seed": 5, "logprobs": True}
    reply = request(base_url + "/api/v1/generate", body).json()
    completion = reply["completions"][0]
    assert completion["text"] == "ick brown"
    assert completion["finish_reason"] == "FINISH_REASON_LENGTH" and completion["seed"] == 5
    assert reply["prompt_tokens"] == 6 and len(completion["logprobs"]) == 9
    events = sse_data(request(base_url + "/api/v1/generate/stream", body).body)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert "".join(c["text"] for c in chunks) == completion["text"]
    assert chunks[-1]["finish_reason"] == "FINISH_REASON_LENGTH"
    with Client(http_server.target) as client:  # the same servicer as gRPC
        assert client.generate("toy", "the qu", max_new_tokens=9, temperature=0).text == completion["text"]


def test_score_matches_grpc(http_server: ServerThread, base_url: str) -> None:
    reply = request(base_url + "/api/v1/score", {"model": "toy", "text": "the quick", "context": ""}).json()
    with Client(http_server.target) as client:
        expected = client.score("toy", "the quick")
    assert [t["token"] for t in reply["logprobs"]] == list("the quick")
    assert reply["bits_per_char"] == pytest.approx(expected.bits_per_char)


def test_translate_with_n_best_and_attention(base_url: str) -> None:
    reply = request(base_url + "/api/v1/translate", {"model": "toy-tr", "texts": ["hello world"], "beam_size": 2,
                                                     "n_best": 2, "return_attention": True})
    assert reply.status == 200, reply.body
    hypotheses = reply.json()["translations"][0]["hypotheses"]
    assert len(hypotheses) == 2 and hypotheses[0]["text"] == "HELLO WORLD"
    attention = hypotheses[0]["attention"]
    assert attention["source_tokens"] == ["hello", "world"]
    assert len(attention["weights"]) == len(attention["source_tokens"]) * len(attention["target_tokens"])


def test_suggest_with_enum_names(base_url: str) -> None:
    reply = request(base_url + "/api/v1/suggest", {"model": "toy-assist", "text": "Hello Eli", "options": {
        "kinds": ["SUGGESTION_KIND_WORD", "SUGGESTION_KIND_PHRASE"], "max_suggestions": 2}}).json()
    assert [(s["kind"], s["text"]) for s in reply["suggestions"]] == [
        ("SUGGESTION_KIND_WORD", "Elizabeth"), ("SUGGESTION_KIND_WORD", "Elinor"),
        ("SUGGESTION_KIND_PHRASE", " and so on")]
    assert reply["suggestions"][0]["insert_text"] == "zabeth"


def test_models_list_filter_and_get(base_url: str) -> None:
    listing = request(base_url + "/api/v1/models").json()["models"]
    states = {m["name"]: m["state"] for m in listing}
    assert states["toy"] == "MODEL_STATE_READY" and states["toy-broken"] == "MODEL_STATE_FAILED"
    translators = request(base_url + "/api/v1/models?kind=MODEL_KIND_TRANSLATOR").json()["models"]
    assert [m["name"] for m in translators] == ["toy-tr"]
    toy = request(base_url + "/api/v1/models/toy").json()
    assert toy["card"]["description"] == "reciting toy model" and "steps_total" in toy["stats"]
    missing = request(base_url + "/api/v1/models/nope")
    assert missing.status == 404 and "toy-tr" in missing.json()["error"]["message"]


def _ws_url(server: ServerThread) -> str:
    return server.http_url.replace("http://", "ws://") + "/api/v1/session"


def test_session_over_a_websocket_carries_the_grpc_events(http_server: ServerThread) -> None:
    with connect(_ws_url(http_server), open_timeout=10, additional_headers={"x-request-id": "ws-1"}) as socket:
        assert socket.response is not None and socket.response.headers["x-request-id"] == "ws-1"
        socket.send(json.dumps({"open": {"model": "toy-assist", "text": "th"}}))
        opened = json.loads(socket.recv(10))
        assert [s["text"] for s in opened["suggestions"]] == ["the", "then", "there"]
        assert opened["event_index"] == 0 and opened["document_chars"] == 2 and opened["session_id"]
        socket.send(json.dumps({"append": {"text": "er"}}))
        assert [s["text"] for s in json.loads(socket.recv(10))["suggestions"]] == ["there"]
        socket.send(json.dumps({"delete": {"chars": 2}}))
        assert len(json.loads(socket.recv(10))["suggestions"]) == 3
        socket.send(json.dumps({"reset": {}}))
        reset = json.loads(socket.recv(10))
        assert reset["event_index"] == 3 and reset["document_chars"] == 0
    assistant = http_server.app.services[2]
    wait_until(lambda: assistant.open_sessions == 0, 10, "the closed socket's session to be released")  # type: ignore[attr-defined]
    with Client(http_server.target) as client, client.session("toy-assist", text="th") as session:  # same events
        assert [s.text for s in session.suggestions] == [s["text"] for s in opened["suggestions"]]


@pytest.mark.parametrize(("first", "close_code", "message"), [
    ({"open": {"model": "nope"}}, 4404, "no assistant named 'nope'"),
    ({"append": {"text": "x"}}, 4400, "must be 'open'"),
    ({"open": {"model": "toy-assist", "bogus": 1}}, 4400, "bogus"),
    ("not json", 4400, "not valid JSON"),
])
def test_session_errors_end_with_an_error_frame_and_close_code(http_server: ServerThread, first: object,
                                                               close_code: int, message: str) -> None:
    with connect(_ws_url(http_server), open_timeout=10) as socket:
        socket.send(first if isinstance(first, str) else json.dumps(first))
        error = json.loads(socket.recv(10))["error"]
        assert message in error["message"]
        with pytest.raises(ConnectionClosedError) as closed:
            socket.recv(10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == close_code


def test_session_socket_needs_the_token(toy_host) -> None:  # type: ignore[no-untyped-def]
    from websockets.exceptions import InvalidStatus

    from rnnserve.ops.config import ModelSpec, ServerConfig
    from rnnserve.testing.server import running_server

    config = ServerConfig(models=(ModelSpec("a", "toy-assistant"),), default_models=False, auth_token="tok")
    with running_server(config, toy_host, http=True) as srv:
        with pytest.raises(InvalidStatus) as refused:
            connect(_ws_url(srv), open_timeout=10)
        assert refused.value.response.status_code == 401
        with connect(_ws_url(srv), open_timeout=10, additional_headers={"authorization": "Bearer tok"}) as socket:
            socket.send(json.dumps({"open": {"model": "a", "text": "th"}}))
            assert json.loads(socket.recv(10))["suggestions"]
