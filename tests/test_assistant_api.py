"""Assistant service with the toy assistant: Suggest and the bidirectional Session stream."""

from __future__ import annotations

import pytest

from rnnserve.ops.config import Limits, ModelSpec, ServerConfig
from rnnserve.testing.server import running_server
from rnnserve_client import Client, errors


def test_suggest_returns_kinds_in_order(client: Client) -> None:
    suggestions = client.suggest("toy-assist", "Hello Eli", kinds=("word", "phrase"), max_suggestions=2)
    assert [(s.kind, s.text) for s in suggestions] == [
        ("word", "Elizabeth"), ("word", "Elinor"), ("phrase", " and so on")]
    assert suggestions[0].insert_text == "zabeth" and suggestions[0].replace_chars == 3


def test_suggest_validates(client: Client) -> None:
    with pytest.raises(errors.InvalidArgument, match="max_suggestions"):
        client.suggest("toy-assist", "x", max_suggestions=1000)
    with pytest.raises(errors.NotFound, match="toy-assist"):
        client.suggest("toy", "x")


def test_session_applies_edits_in_order(client: Client) -> None:
    with client.session("toy-assist", text="th") as session:
        assert [s.text for s in session.suggestions] == ["the", "then", "there"]
        assert [s.text for s in session.append("er")] == ["there"]
        assert [s.text for s in session.delete(2)] == ["the", "then", "there"]
        assert [s.text for s in session.reset()] == [w for w in ["elizabeth", "elinor", "emma"]]


def test_session_count_is_bounded(toy_host) -> None:  # type: ignore[no-untyped-def]
    config = ServerConfig(models=(ModelSpec("a", "toy-assistant"),), limits=Limits(max_sessions=1))
    with running_server(config, toy_host) as srv, Client(srv.target, timeout=10) as client:
        with client.session("a"), pytest.raises(errors.ResourceExhausted, match="max_sessions"), \
                client.session("a"):
            pass
        with client.session("a") as again:  # closing the first freed its slot
            assert again.append("e")


def test_a_session_stream_that_never_opens_is_ended_and_frees_its_slot(
        toy_host, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """A stream holds an admission slot from its start; one that sends nothing used to keep it
    for session_idle_timeout_s (600 s), so a few such streams filled max_in_flight."""
    import threading

    import grpc

    from rnnserve.edge.services import assistant as assistant_service
    from rnnserve_client.v1 import assistant_pb2_grpc

    monkeypatch.setattr(assistant_service, "OPEN_TIMEOUT_S", 0.5)
    config = ServerConfig(models=(ModelSpec("toy", "toy-lm"), ModelSpec("wa", "toy-assistant")),
                          limits=Limits(max_in_flight=2))
    silent = threading.Event()

    def nothing():  # type: ignore[no-untyped-def]
        silent.wait(10)
        yield from ()

    with running_server(config, toy_host) as srv, grpc.insecure_channel(srv.target) as channel:
        stub = assistant_pb2_grpc.AssistantStub(channel)
        calls = [stub.Session(nothing(), timeout=10) for _ in range(2)]  # both slots taken
        for call in calls:
            with pytest.raises(grpc.RpcError) as info:
                next(call)
            assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            assert "no 'open' within 0.5 s" in info.value.details()
        silent.set()
        with Client(srv.target, timeout=10) as client:  # the slots are free again
            assert client.suggest("wa", "Eli")
