"""Fixtures of the client tests: started :class:`fake_rnnserve.FakeServer` instances."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import grpc
import pytest

from tests.client.fake_rnnserve import FakeServer


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    server = FakeServer()
    yield server
    server.stop()


@pytest.fixture
def make_fake() -> Iterator[Callable[..., FakeServer]]:
    """A factory for more fakes (e.g. several backends, or TLS); all stopped afterwards."""
    servers: list[FakeServer] = []

    def make(credentials: grpc.ServerCredentials | None = None) -> FakeServer:
        servers.append(FakeServer(credentials))
        return servers[-1]

    yield make
    for server in servers:
        server.stop()
