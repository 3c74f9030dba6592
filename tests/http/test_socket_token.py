"""A browser's WebSocket carries the bearer token as a subprotocol (``socket_token.py``), never in the URL."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from rnnserve.edge.http.socket_token import BEARER_PREFIX, SESSION_SUBPROTOCOL, take_socket_token
from rnnserve.host.plugins import PluginHost
from rnnserve.ops.config import ModelSpec, ServerConfig
from rnnserve.testing.server import ServerThread, running_server

TOKEN = "s3cret/tøken+="


def _carrier(token: str) -> str:
    return BEARER_PREFIX + base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")


@pytest.fixture(scope="module")
def guarded(toy_host: PluginHost) -> Iterator[ServerThread]:
    config = ServerConfig(models=(ModelSpec("a", "toy-assistant"),), default_models=False, auth_token=TOKEN)
    with running_server(config, toy_host, http=True) as srv:
        yield srv


def _connect(server: ServerThread, subprotocols: list[str], query: str = "") -> ClientConnection:
    url = server.http_url.replace("http://", "ws://") + "/api/v1/session" + query
    return connect(url, open_timeout=10, subprotocols=subprotocols)  # type: ignore[arg-type]


def test_the_token_in_a_subprotocol_opens_a_session(guarded: ServerThread) -> None:
    with _connect(guarded, [SESSION_SUBPROTOCOL, _carrier(TOKEN)]) as socket:
        assert socket.subprotocol == SESSION_SUBPROTOCOL  # accepted: the session protocol, never the token
        assert socket.response is not None
        assert socket.response.headers["sec-websocket-protocol"] == SESSION_SUBPROTOCOL
        socket.send(json.dumps({"open": {"model": "a", "text": "th"}}))
        assert [s["text"] for s in json.loads(socket.recv(10))["suggestions"]] == ["the", "then", "there"]


@pytest.mark.parametrize("offered", [
    [SESSION_SUBPROTOCOL],  # no token
    [SESSION_SUBPROTOCOL, _carrier("wrong")],
    [SESSION_SUBPROTOCOL, BEARER_PREFIX + "not*base64"],
    [SESSION_SUBPROTOCOL, BEARER_PREFIX + base64.urlsafe_b64encode(TOKEN.encode()).decode() + "x"],
])
def test_a_missing_or_wrong_token_is_401(guarded: ServerThread, offered: list[str]) -> None:
    with pytest.raises(InvalidStatus) as refused:
        _connect(guarded, offered)
    assert refused.value.response.status_code == 401


def test_a_token_in_the_query_string_is_not_accepted(guarded: ServerThread) -> None:
    for query in (f"?token={TOKEN}", f"?access_token={TOKEN}", f"?authorization=Bearer%20{TOKEN}"):
        with pytest.raises(InvalidStatus) as refused:
            _connect(guarded, [SESSION_SUBPROTOCOL], query)
        assert refused.value.response.status_code == 401


def test_the_token_is_taken_out_of_the_scope() -> None:
    offered = f"{SESSION_SUBPROTOCOL}, {_carrier(TOKEN)}".encode()
    scope = {"type": "websocket", "subprotocols": [SESSION_SUBPROTOCOL, _carrier(TOKEN)],
             "headers": [(b"host", b"x"), (b"sec-websocket-protocol", offered)]}
    rest, token = take_socket_token(scope)
    assert token == TOKEN
    assert rest["subprotocols"] == [SESSION_SUBPROTOCOL]
    assert rest["headers"] == [(b"host", b"x"), (b"sec-websocket-protocol", SESSION_SUBPROTOCOL.encode())]
    assert take_socket_token({"type": "http", "headers": []})[1] is None
