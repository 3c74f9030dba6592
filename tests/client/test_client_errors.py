"""gRPC statuses become typed exceptions, on unary calls and in the middle of streams."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from rnnserve_client import AsyncClient, Client, errors
from rnnserve_client.v1 import generation_pb2
from tests.client.fake_rnnserve import FakeServer

CODES = [
    (grpc.StatusCode.INVALID_ARGUMENT, errors.InvalidArgument),
    (grpc.StatusCode.NOT_FOUND, errors.NotFound),
    (grpc.StatusCode.RESOURCE_EXHAUSTED, errors.ResourceExhausted),
    (grpc.StatusCode.UNAVAILABLE, errors.Unavailable),
    (grpc.StatusCode.DEADLINE_EXCEEDED, errors.DeadlineExceeded),
    (grpc.StatusCode.CANCELLED, errors.Cancelled),
    (grpc.StatusCode.UNAUTHENTICATED, errors.Unauthenticated),
    (grpc.StatusCode.PERMISSION_DENIED, errors.PermissionDenied),
    (grpc.StatusCode.FAILED_PRECONDITION, errors.FailedPrecondition),
    (grpc.StatusCode.INTERNAL, errors.Internal),
    (grpc.StatusCode.UNIMPLEMENTED, errors.Unimplemented),
    (grpc.StatusCode.UNKNOWN, errors.Unknown),
    (grpc.StatusCode.DATA_LOSS, errors.DataLoss),
]


def abort_with(code: grpc.StatusCode, details: str, retry_after_ms: str | None = None):
    def handler(request, context):
        if retry_after_ms is not None:
            context.set_trailing_metadata((("retry-after-ms", retry_after_ms),))
        context.abort(code, details)

    return handler


@pytest.mark.parametrize(("code", "cls"), CODES, ids=[c.name for c, _ in CODES])
def test_unary_status_becomes_typed_error(fake: FakeServer, code: grpc.StatusCode, cls: type) -> None:
    fake.on("GetModel", abort_with(code, "no language-model model named 'x'"))
    with Client(fake.target) as client, pytest.raises(cls) as caught:
        client.get_model("x")
    assert isinstance(caught.value, errors.RnnserveError)
    assert caught.value.code is code
    assert caught.value.details == "no language-model model named 'x'"
    assert caught.value.retry_after is None
    assert isinstance(caught.value.__cause__, grpc.RpcError)
    assert code.name in str(caught.value)


def test_retry_after_hint_is_kept(fake: FakeServer) -> None:
    fake.on("Generate", abort_with(grpc.StatusCode.RESOURCE_EXHAUSTED, "queue full", retry_after_ms="1500"))
    with Client(fake.target) as client, pytest.raises(errors.ResourceExhausted) as caught:
        client.generate("lm", "hi")
    assert caught.value.retry_after == 1.5


def test_malformed_retry_after_is_ignored(fake: FakeServer) -> None:
    fake.on("Generate", abort_with(grpc.StatusCode.RESOURCE_EXHAUSTED, "queue full", retry_after_ms="soon"))
    with Client(fake.target) as client, pytest.raises(errors.ResourceExhausted) as caught:
        client.generate("lm", "hi")
    assert caught.value.retry_after is None


def _two_chunks_then_internal(request, context):
    yield generation_pb2.GenerateStreamResponse(index=0, text="Hel", seed=7)
    yield generation_pb2.GenerateStreamResponse(index=0, text="lo", seed=7)
    context.set_trailing_metadata((("retry-after-ms", "250"),))
    context.abort(grpc.StatusCode.INTERNAL, "internal error (request id abc)")


def test_error_mid_stream_is_typed(fake: FakeServer) -> None:
    fake.on("GenerateStream", _two_chunks_then_internal)
    received = []
    with Client(fake.target) as client, pytest.raises(errors.Internal) as caught:
        for chunk in client.generate_stream("lm", "x"):
            received.append(chunk.text)
    assert received == ["Hel", "lo"]
    assert caught.value.details == "internal error (request id abc)"
    assert caught.value.retry_after == 0.25


def test_async_unary_and_mid_stream_errors(fake: FakeServer) -> None:
    fake.on("Score", abort_with(grpc.StatusCode.INVALID_ARGUMENT, "text is empty"))
    fake.on("GenerateStream", _two_chunks_then_internal)

    async def main() -> list[str]:
        received = []
        async with AsyncClient(fake.target) as client:
            with pytest.raises(errors.InvalidArgument) as caught:
                await client.score("lm", "")
            assert caught.value.code is grpc.StatusCode.INVALID_ARGUMENT
            assert caught.value.details == "text is empty"
            with pytest.raises(errors.Internal) as caught:
                async for chunk in client.generate_stream("lm", "x"):
                    received.append(chunk.text)
            assert caught.value.retry_after == 0.25
        return received

    assert asyncio.run(main()) == ["Hel", "lo"]


def test_unreachable_server_is_unavailable(make_fake) -> None:
    server = make_fake()
    target = server.target
    server.stop()
    with Client(target, timeout=5) as client, pytest.raises(errors.Unavailable):
        client.list_models()


def test_rpc_error_without_status_maps_to_unknown() -> None:
    error = errors.from_rpc_error(grpc.RpcError("connection reset"))
    assert type(error) is errors.Unknown
    assert error.code is grpc.StatusCode.UNKNOWN
    assert error.details == "connection reset"
