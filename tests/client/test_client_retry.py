"""Unary calls are retried on UNAVAILABLE by the channel's retry policy; streams never are.

Deadlines: the client default applies to every call, a per-call ``timeout`` overrides it,
and an expired deadline raises ``DeadlineExceeded`` (also mid-stream).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import grpc
import pytest

from rnnserve_client import AsyncClient, Client, errors
from rnnserve_client._channel import MAX_ATTEMPTS, unary_methods
from rnnserve_client.v1 import (
    assistant_pb2,
    generation_pb2,
    models_pb2,
    translation_pb2,
)
from tests.client.fake_rnnserve import FakeServer, chunks, fail_first, wait_until_cancelled

UNAVAILABLE = grpc.StatusCode.UNAVAILABLE

# Each unary method: (fake method, its successful response, the client call).
UNARY: dict[str, tuple[Any, Callable[[Client], Any]]] = {
    "ListModels": (models_pb2.ListModelsResponse(), lambda c: c.list_models()),
    "GetModel": (models_pb2.Model(name="lm"), lambda c: c.get_model("lm")),
    "Generate": (
        generation_pb2.GenerateResponse(completions=[generation_pb2.Completion(text="ok")]),
        lambda c: c.generate("lm", "hi"),
    ),
    "Score": (generation_pb2.ScoreResponse(), lambda c: c.score("lm", "hi")),
    "Translate": (translation_pb2.TranslateResponse(), lambda c: c.translate("mt", "hi")),
    "Suggest": (assistant_pb2.SuggestResponse(), lambda c: c.suggest("as", "hi")),
}


def test_every_unary_method_and_no_stream_has_the_retry_policy() -> None:
    names = {entry["method"] for entry in unary_methods()}
    assert names == set(UNARY)


@pytest.mark.parametrize("method", sorted(UNARY))
def test_unary_call_is_retried_on_unavailable(fake: FakeServer, method: str) -> None:
    response, call = UNARY[method]
    fake.on(method, fail_first(2, UNAVAILABLE, lambda request, context: response))
    with Client(fake.target, timeout=10) as client:
        call(client)
    assert len(fake.calls[method]) == 3


def test_unary_retries_give_up_after_max_attempts(fake: FakeServer) -> None:
    fake.on("GetModel", fail_first(100, UNAVAILABLE, lambda request, context: models_pb2.Model()))
    with Client(fake.target, timeout=10) as client, pytest.raises(errors.Unavailable) as caught:
        client.get_model("lm")
    assert caught.value.details == f"attempt {MAX_ATTEMPTS} failed"
    assert len(fake.calls["GetModel"]) == MAX_ATTEMPTS == 4


def test_other_codes_are_not_retried(fake: FakeServer) -> None:
    fake.on("Generate", fail_first(1, grpc.StatusCode.RESOURCE_EXHAUSTED, lambda r, c: None))
    with Client(fake.target) as client, pytest.raises(errors.ResourceExhausted):
        client.generate("lm", "hi")
    assert len(fake.calls["Generate"]) == 1


def test_generate_stream_is_not_retried(fake: FakeServer) -> None:
    fake.on("GenerateStream", fail_first(2, UNAVAILABLE, chunks(generation_pb2.GenerateStreamResponse(text="x"))))
    with Client(fake.target, timeout=10) as client, pytest.raises(errors.Unavailable):
        list(client.generate_stream("lm", "hi"))
    assert len(fake.calls["GenerateStream"]) == 1


def test_session_is_not_retried(fake: FakeServer) -> None:
    def refuse(requests, context):
        next(requests)
        context.abort(UNAVAILABLE, "model is loading")

    fake.on("Session", refuse)
    with Client(fake.target, timeout=10) as client, pytest.raises(errors.Unavailable), client.session("as"):
        pytest.fail("the session must not open")
    assert len(fake.calls["Session"]) == 1


def test_async_unary_retried_and_stream_not(fake: FakeServer) -> None:
    fake.on("Generate", fail_first(2, UNAVAILABLE, lambda r, c: generation_pb2.GenerateResponse()))
    fake.on("GenerateStream", fail_first(2, UNAVAILABLE, chunks(generation_pb2.GenerateStreamResponse())))

    async def main() -> None:
        async with AsyncClient(fake.target, timeout=10) as client:
            await client.generate("lm", "hi")
            with pytest.raises(errors.Unavailable):
                async for _ in client.generate_stream("lm", "hi"):
                    pass

    asyncio.run(main())
    assert len(fake.calls["Generate"]) == 3
    assert len(fake.calls["GenerateStream"]) == 1


def _hang(request, context) -> models_pb2.Model:
    wait_until_cancelled(context)
    return models_pb2.Model()


def test_client_default_timeout_raises_deadline_exceeded(fake: FakeServer) -> None:
    fake.on("GetModel", _hang)
    with Client(fake.target, timeout=0.2) as client, pytest.raises(errors.DeadlineExceeded) as caught:
        client.get_model("lm")
    assert caught.value.code is grpc.StatusCode.DEADLINE_EXCEEDED


def test_call_timeout_overrides_client_default(fake: FakeServer) -> None:
    fake.on("GetModel", _hang)
    with Client(fake.target, timeout=30) as client, pytest.raises(errors.DeadlineExceeded):
        client.get_model("lm", timeout=0.2)

    def slow(request, context) -> models_pb2.Model:
        wait_until_cancelled(context, limit=0.4)
        return models_pb2.Model(name="slow")

    fake.on("GetModel", slow)
    with Client(fake.target, timeout=0.1) as client:
        assert client.get_model("lm", timeout=5).name == "slow"


def test_deadline_mid_stream(fake: FakeServer) -> None:
    def one_chunk_then_hang(request, context):
        yield generation_pb2.GenerateStreamResponse(text="a")
        wait_until_cancelled(context)

    fake.on("GenerateStream", one_chunk_then_hang)
    received = []
    with Client(fake.target) as client, pytest.raises(errors.DeadlineExceeded):
        for chunk in client.generate_stream("lm", "hi", timeout=0.3):
            received.append(chunk.text)
    assert received == ["a"]


def test_async_timeout(fake: FakeServer) -> None:
    fake.on("GetModel", _hang)

    async def main() -> None:
        async with AsyncClient(fake.target, timeout=30) as client:
            with pytest.raises(errors.DeadlineExceeded):
                await client.get_model("lm", timeout=0.2)

    asyncio.run(main())
