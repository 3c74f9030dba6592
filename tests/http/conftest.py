"""A real server with the toy models and the HTTP API on a free loopback port, and small HTTP helpers."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from rnnserve.host.plugins import PluginHost
from rnnserve.ops.config import Limits, ServerConfig
from rnnserve.testing.server import ServerThread, running_server
from tests.conftest import TOY_MODELS


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def request(url: str, body: Any = None, *, method: str | None = None, headers: dict[str, str] | None = None,
            raw: bytes | None = None) -> Reply:
    """One HTTP request; the reply whatever its status."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, method=method, headers={
        "content-type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as reply:
            return Reply(reply.status, {k.lower(): v for k, v in reply.headers.items()}, reply.read())
    except urllib.error.HTTPError as exc:
        return Reply(exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read())


def sse_data(body: bytes) -> list[str]:
    """The ``data:`` payloads of a server-sent event stream, in order."""
    return [line[len("data: "):] for line in body.decode().split("\n\n") if line.startswith("data: ")]


@pytest.fixture(scope="module")
def http_server(toy_host: PluginHost) -> Iterator[ServerThread]:
    """The toy models (``conftest.TOY_MODELS`` and ``toy``) over gRPC and HTTP."""
    config = ServerConfig(models=TOY_MODELS, limits=Limits(max_queue=64))
    with running_server(config, toy_host, http=True) as srv:
        yield srv


@pytest.fixture
def base_url(http_server: ServerThread) -> str:
    return http_server.http_url
