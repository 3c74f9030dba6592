"""A client that goes away mid-stream stops the model work, as a cancelled gRPC stream does.

Checked on the server's own counters (the scheduler's batch and step counts), not on timing.
"""

from __future__ import annotations

import http.client
import json
import logging
import threading

import openai
import pytest
from websockets.sync.client import connect

from rnnserve.host.plugins import PluginHost
from rnnserve.ops.config import ModelSpec, ServerConfig
from rnnserve.testing.server import ServerThread
from rnnserve.testing.waiting import wait_until
from tests.http.conftest import Reply, request, sse_data

#: The toy model recites 136 characters, then ends; a stream cut after two chunks must stop well before.
FULL_RECITATION_STEPS = 136


def _cut_after_two_chunks(server: ServerThread, path: str, body: dict[str, object]) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.app.http.port, timeout=30)  # type: ignore[union-attr]
    connection.request("POST", path, json.dumps(body), {"content-type": "application/json"})
    reply = connection.getresponse()
    assert reply.status == 200
    seen = 0
    while seen < 2:
        if reply.readline().startswith(b"data: "):
            seen += 1
    connection.sock.close()  # type: ignore[union-attr]  # the client goes away without a word
    connection.close()


def test_closing_an_openai_stream_stops_the_generation(http_server: ServerThread) -> None:
    stats = http_server.app.registry.find("toy-slow").stats
    before = stats.steps_total
    client = openai.OpenAI(base_url=http_server.http_url + "/v1", api_key="unused", max_retries=0)
    stream = client.completions.create(model="toy-slow", prompt="", max_tokens=2000, temperature=0, stream=True)
    next(iter(stream))
    stream.close()
    wait_until(lambda: stats.active_sequences == 0 and stats.queue_depth == 0, 10,
               "the abandoned sequence to leave the batch")
    assert stats.steps_total - before < FULL_RECITATION_STEPS - 30
    wait_until(lambda: http_server.app.drain.in_flight == 0, 10, "the HTTP request to end")


def test_disconnecting_from_a_raw_sse_stream_stops_every_prompt(http_server: ServerThread) -> None:
    stats = http_server.app.registry.find("toy-slow").stats
    before = stats.steps_total
    _cut_after_two_chunks(http_server, "/v1/completions", {
        "model": "toy-slow", "prompt": ["", "the"], "n": 2, "max_tokens": 2000, "temperature": 0, "stream": True})
    wait_until(lambda: stats.active_sequences == 0 and stats.queue_depth == 0, 10,
               "the four abandoned sequences to leave the batch")
    assert stats.steps_total - before < FULL_RECITATION_STEPS - 30


def test_disconnecting_from_the_json_generate_stream_stops_it(http_server: ServerThread) -> None:
    stats = http_server.app.registry.find("toy-slow").stats
    before = stats.steps_total
    _cut_after_two_chunks(http_server, "/api/v1/generate/stream",
                          {"model": "toy-slow", "prompt": "", "max_new_tokens": 2000, "temperature": 0})
    wait_until(lambda: stats.active_sequences == 0, 10, "the abandoned sequence to leave the batch")
    assert stats.steps_total - before < FULL_RECITATION_STEPS - 30


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/completions", {"model": "toy-slow", "prompt": "", "max_tokens": 2000, "temperature": 0}),
    ("/api/v1/generate", {"model": "toy-slow", "prompt": "", "max_new_tokens": 2000, "temperature": 0}),
])
def test_disconnecting_before_a_unary_answer_stops_the_work(http_server: ServerThread, path: str,
                                                            body: dict[str, object]) -> None:
    stats = http_server.app.registry.find("toy-slow").stats
    before = stats.steps_total
    connection = http.client.HTTPConnection("127.0.0.1", http_server.app.http.port, timeout=30)  # type: ignore[union-attr]
    connection.request("POST", path, json.dumps(body), {"content-type": "application/json"})
    wait_until(lambda: stats.active_sequences == 1, 10, "the request to join the batch")
    connection.sock.close()  # type: ignore[union-attr]
    connection.close()
    wait_until(lambda: stats.active_sequences == 0, 10, "the abandoned sequence to leave the batch")
    assert stats.steps_total - before < FULL_RECITATION_STEPS - 30
    wait_until(lambda: http_server.app.drain.in_flight == 0, 10, "the HTTP request to end")


def test_a_websocket_that_goes_away_releases_its_session_quietly(http_server: ServerThread,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    assistant = http_server.app.services[2]
    url = http_server.http_url.replace("http://", "ws://") + "/api/v1/session"
    with caplog.at_level(logging.WARNING), connect(url, open_timeout=10) as socket:
        socket.send(json.dumps({"open": {"model": "toy-assist", "text": "th"}}))
        socket.recv(10)
        socket.send(json.dumps({"append": {"text": "e"}}))
        socket.socket.close()  # no closing handshake
    wait_until(lambda: assistant.open_sessions == 0, 10, "the session to be released")  # type: ignore[attr-defined]
    wait_until(lambda: http_server.app.drain.in_flight == 0, 10, "the WebSocket to leave the in-flight count")
    ours = [r for r in caplog.records if r.name.startswith(("rnnserve", "uvicorn"))]
    assert not [r for r in ours if r.levelno >= logging.WARNING]


def test_stopping_the_server_drains_http_too(toy_host: PluginHost) -> None:
    config = ServerConfig(models=(ModelSpec("slow", "toy-lm", options={"step_delay": 0.01}),), default_models=False)
    server = ServerThread(config, toy_host, http=True)
    closer = threading.Thread(target=server.close, kwargs={"grace": 10})
    try:
        server.app.registry.wait_loaded(30)
        url = server.http_url
        results: list[Reply] = []
        stream = threading.Thread(target=lambda: results.append(request(url + "/v1/completions", {
            "model": "slow", "prompt": "", "max_tokens": 60, "temperature": 0, "stream": True})))
        stream.start()
        wait_until(lambda: server.app.drain.in_flight == 1, 10, "the stream to start")
        closer.start()  # SIGTERM's path: drain, wait for calls in flight, stop
        wait_until(lambda: server.app.drain.draining, 10, "the drain to begin")
        assert request(url + "/v1/completions", {"model": "slow", "prompt": ""}).status == 503
        stream.join(30)
        closer.join(30)
        assert results[0].status == 200 and sse_data(results[0].body)[-1] == "[DONE]"  # the stream finished
        assert len("".join(json.loads(e)["choices"][0]["text"] for e in sse_data(results[0].body)[:-1])) == 60
    finally:
        if not closer.is_alive() and closer.ident is None:
            server.close()
