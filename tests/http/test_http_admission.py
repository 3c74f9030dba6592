"""HTTP shares gRPC's admission: bearer token (401), draining (503), the in-flight cap (429), request ids,
metrics; and bad input is a clear 4xx, never a traceback in the reply or the log."""

from __future__ import annotations

import http.client
import json
import logging
import urllib.request

import pytest

from rnnserve.host.plugins import PluginHost
from rnnserve.ops.config import Limits, ModelSpec, ServerConfig
from rnnserve.ops.logs import RequestIdFilter
from rnnserve.testing.server import ServerThread, running_server
from rnnserve.testing.waiting import wait_until
from rnnserve_client import Client, errors
from tests.http.conftest import request

BODY = {"model": "toy", "prompt": "the", "max_tokens": 3, "temperature": 0}


def test_bearer_token_is_required_except_on_public_paths(toy_host: PluginHost) -> None:
    config = ServerConfig(models=(ModelSpec("toy", "toy-lm"),), default_models=False, auth_token="s3cret")
    with running_server(config, toy_host, http=True) as srv:
        url = srv.http_url
        missing = request(url + "/v1/completions", BODY)
        assert missing.status == 401
        assert missing.json()["error"]["type"] == "authentication_error"
        assert request(url + "/v1/completions", BODY, headers={"authorization": "Bearer nope"}).status == 401
        assert request(url + "/api/v1/models").status == 401
        ok = request(url + "/v1/completions", BODY, headers={"authorization": "Bearer s3cret"})
        assert ok.status == 200 and ok.json()["choices"][0]["text"] == " qu"
        for public in ("/health", "/openapi.json", "/docs"):
            assert request(url + public).status == 200, public
        assert srv.app.drain.unauthenticated_total == 3  # one counter for both transports


def test_draining_refuses_new_requests_with_503(toy_host: PluginHost) -> None:
    config = ServerConfig(models=(ModelSpec("toy", "toy-lm"),), default_models=False)
    with running_server(config, toy_host, http=True) as srv:
        srv.app.drain.draining = True
        try:
            refused = request(srv.http_url + "/v1/completions", BODY)
            assert refused.status == 503 and "shutting down" in refused.json()["error"]["message"]
            assert request(srv.http_url + "/health").status == 503
        finally:
            srv.app.drain.draining = False


def test_in_flight_cap_is_shared_with_grpc_and_answers_429(toy_host: PluginHost) -> None:
    config = ServerConfig(models=(ModelSpec("slow", "toy-lm", options={"step_delay": 0.02}),), default_models=False,
                          limits=Limits(max_in_flight=1, retry_after_ms=1500))
    with running_server(config, toy_host, http=True) as srv:
        holder = http.client.HTTPConnection("127.0.0.1", srv.app.http.port, timeout=30)  # type: ignore[union-attr]
        holder.request("POST", "/v1/completions", json.dumps({**BODY, "model": "slow", "max_tokens": 2000,
                                                              "stream": True}), {"content-type": "application/json"})
        assert holder.getresponse().status == 200  # streaming: it holds the one slot
        try:
            refused = request(srv.http_url + "/v1/completions", {**BODY, "model": "slow"})
            with Client(srv.target, timeout=10) as client, pytest.raises(errors.ResourceExhausted):
                client.list_models()  # gRPC sees the same cap
        finally:
            holder.close()
        assert refused.status == 429
        assert refused.json()["error"]["code"] == "resource_exhausted"
        assert "max_in_flight=1" in refused.json()["error"]["message"]
        assert (refused.headers["retry-after-ms"], refused.headers["retry-after"]) == ("1500", "2")


def test_request_ids_are_echoed_or_made(base_url: str) -> None:
    assert request(base_url + "/v1/models", headers={"x-request-id": "abc-123"}).headers["x-request-id"] == "abc-123"
    made = request(base_url + "/v1/models", headers={"x-request-id": "bad id\u00e9"}).headers["x-request-id"]
    assert made and made != "bad id"
    completion = request(base_url + "/v1/completions", BODY, headers={"x-request-id": "req-7"})
    assert completion.json()["id"] == "cmpl-req-7"
    assert request(base_url + "/v1/completions", {"model": "nope"}).headers["x-request-id"]


@pytest.mark.parametrize(("raw", "status", "message"), [
    (b"{not json", 400, "not valid JSON"),
    (b"", 400, "body is empty"),
    (b'{"model": "\xff"}', 400, "not UTF-8"),
    (b"[1, 2]", 400, "must be a JSON object"),
    (b'{"model": "toy", "max_tokens": "ten"}', 400, "max_tokens: must be an integer"),
    (b'{"model": "toy", "max_tokens": 1e400}', 400, "max_tokens"),
    (b'{"model": "toy", "n": 0}', 400, "n: must be at least 1"),
    (b'{"model": "toy", "seed": 18446744073709551616}', 400, "out of range"),
    (b'{"model": "toy", "stop": [1]}', 400, "stop: must be a string or a list of strings"),
    (b'{"model": "toy", "bogus": 1}', 400, "bogus: unknown parameter"),
    (b'{"model": "toy", "stream": "yes"}', 400, "stream: must be true or false"),
    (b'{"model": "toy", "logprobs": 9}', 400, "logprobs: must be in [0, 5]"),
    (b'{"prompt": "x"}', 400, "model: is required"),
    (b"[" * 100_000, 400, "nests too deeply"),
])
def test_bad_completions_input_is_a_clear_400(base_url: str, caplog: pytest.LogCaptureFixture, raw: bytes,
                                              status: int, message: str) -> None:
    with caplog.at_level(logging.DEBUG):
        reply = request(base_url + "/v1/completions", raw=raw)
    assert reply.status == status, reply.body
    error = reply.json()["error"]
    assert message in error["message"] and error["type"] == "invalid_request_error"
    assert "Traceback" not in reply.body.decode() and "File \"" not in reply.body.decode()
    assert not [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]


def test_bad_json_api_input_and_routes(base_url: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        unknown_field = request(base_url + "/api/v1/score", {"model": "toy", "txt": "x"})
        wrong_type = request(base_url + "/api/v1/translate", {"model": "toy-tr", "texts": "not a list"})
        empty = request(base_url + "/api/v1/score", {"model": "toy", "text": ""})
        big = request(base_url + "/api/v1/score", raw=b'{"model": "toy", "text": "' + b"a" * 5_000_000 + b'"}')
        no_route = request(base_url + "/v2/nothing")
        wrong_method = request(base_url + "/v1/completions", method="GET")
        bad_kind = request(base_url + "/api/v1/models?kind=MODEL_KIND_BANANA")
    assert unknown_field.status == 400 and "txt" in unknown_field.json()["error"]["message"]
    assert wrong_type.status == 400 and "texts" in wrong_type.json()["error"]["message"]
    assert empty.status == 400 and "must not be empty" in empty.json()["error"]["message"]
    assert big.status == 400 and "max_message_bytes" in big.json()["error"]["message"]
    assert no_route.status == 404 and no_route.json()["error"]["code"] == "not_found"
    assert wrong_method.status == 405 and "error" in wrong_method.json()
    assert bad_kind.status == 400 and "MODEL_KIND_TRANSLATOR" in bad_kind.json()["error"]["message"]
    assert not [r for r in caplog.records if r.exc_info]


def test_a_backend_fault_is_500_naming_the_request_id_only(base_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.handler.addFilter(RequestIdFilter())
    with caplog.at_level(logging.INFO):
        reply = request(base_url + "/v1/completions", {"model": "toy-crash", "prompt": "the", "max_tokens": 50,
                                                       "temperature": 0}, headers={"x-request-id": "crash-1"})
    logged = [r for r in caplog.records if r.name == "rnnserve.errors"]
    assert logged and all(r.request_id == "crash-1" for r in logged)  # type: ignore[attr-defined]
    assert any(r.exc_info for r in logged)  # the traceback is in the log, not in the reply
    assert reply.status == 500, reply.body
    error = reply.json()["error"]
    assert error["type"] == "server_error" and "request id crash-1" in error["message"]
    assert "/secret/path" not in error["message"] and "Traceback" not in error["message"]


def test_http_calls_reach_the_latency_histogram(toy_host: PluginHost) -> None:
    config = ServerConfig(models=(ModelSpec("toy", "toy-lm"),), default_models=False, metrics_port=0)
    with running_server(config, toy_host, http=True) as srv:
        assert request(srv.http_url + "/v1/completions", BODY).status == 200
        assert request(srv.http_url + "/v1/completions", {"model": "nope"}).status == 404

        def observed() -> str:  # a request is observed when it ends: maybe just after its client read the answer
            with urllib.request.urlopen(f"http://127.0.0.1:{srv.app.metrics_port}/metrics", timeout=10) as reply:
                text = reply.read().decode()
            return text if all(f'count{{code="{code}",method="HTTP POST' in text for code in ("OK", "NOT_FOUND")) \
                else ""

        text = wait_until(observed, 10, "both requests observed")
    assert 'rnnserve_request_seconds_count{code="OK",method="HTTP POST /v1/completions"} 1.0' in text
    assert 'rnnserve_request_seconds_count{code="NOT_FOUND",method="HTTP POST /v1/completions"} 1.0' in text


def test_http_port_zero_is_off_and_a_busy_port_fails_clearly(http_server: ServerThread, toy_host: PluginHost) -> None:
    from rnnserve.edge.errors import ConfigurationError

    with running_server(ServerConfig(models=(), default_models=False), toy_host) as plain:
        assert plain.app.http is None
    busy = http_server.app.http.port  # type: ignore[union-attr]
    with pytest.raises(ConfigurationError, match=f"cannot listen for HTTP on 127.0.0.1:{busy}"):
        http_server.call(_create(busy, toy_host))


async def _create(port: int, host: PluginHost) -> None:
    from rnnserve.edge.app import create_server

    create_server("127.0.0.1:0", ServerConfig(models=(), default_models=False), host, http_port=port)
