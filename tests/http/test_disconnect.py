"""A client that goes away mid-stream stops the model work, as a cancelled gRPC stream does.

Checked on the server's own counters (the scheduler's batch and step counts), not on timing.
"""

from __future__ import annotations

import http.client
import json

import openai

from rnnserve.testing.server import ServerThread
from rnnserve.testing.waiting import wait_until

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
