"""Overload: more concurrent streams than the caps. Excess calls are refused at once with
RESOURCE_EXHAUSTED and a ``retry-after-ms`` hint (the global in-flight cap and a model's
bounded queue alike); admitted calls complete correctly; health keeps answering SERVING.
"""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from grpc import aio
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from rnnserve.host.plugins import PluginHost
from rnnserve.ops.config import Limits, ModelSpec, ServerConfig
from rnnserve.testing.server import running_server
from rnnserve_client import Client, errors
from rnnserve_client.v1 import generation_pb2, generation_pb2_grpc
from tests.reliability.support import SERVING, health, wait_for
from tests.support.toy_plugin import TEXT

STREAMS = 40
BATCH = 2
TOKENS = 40


async def _stream(stub: generation_pb2_grpc.GenerationStub, i: int) -> tuple[str, float, str, dict[str, str]]:
    """(outcome, seconds to the outcome, text or error message, trailing metadata) of one greedy stream."""
    start = time.perf_counter()
    call = stub.GenerateStream(generation_pb2.GenerateRequest(model="slow", prompt="the", temperature=0,
                                                              max_new_tokens=TOKENS), timeout=60)
    text, finish = "", 0
    try:
        async for chunk in call:
            text += chunk.text
            finish = chunk.finish_reason or finish
    except grpc.RpcError:
        pass
    code = await call.code()
    if code != grpc.StatusCode.OK:
        text = await call.details()
    trailing = dict(await call.trailing_metadata() or ())
    outcome = code.name if code != grpc.StatusCode.OK else f"OK:{finish}"
    return outcome, time.perf_counter() - start, text, trailing


@pytest.mark.parametrize(("cap", "max_in_flight", "max_queue"), [("max_in_flight", 8, 16), ("max_queue", 512, 3)])
def test_more_streams_than_the_caps(toy_host: PluginHost, cap: str, max_in_flight: int, max_queue: int) -> None:
    """40 concurrent streams; a batch of 2, and either the global cap (8) or the model's queue (3) binds."""
    config = ServerConfig(models=(ModelSpec("slow", "toy-lm", options={"step_delay": 0.02}, max_batch_size=BATCH),),
                          limits=Limits(max_in_flight=max_in_flight, max_queue=max_queue, retry_after_ms=250))
    with running_server(config, toy_host) as srv:

        async def main() -> tuple[list[tuple[str, float, str, dict[str, str]]], int, int]:
            async with aio.insecure_channel(srv.target) as channel:
                stub = generation_pb2_grpc.GenerationStub(channel)
                await channel.channel_ready()
                task = asyncio.gather(*(_stream(stub, i) for i in range(STREAMS)))
                stats = srv.app.registry.find("slow").stats
                assert await asyncio.to_thread(wait_for, lambda: stats.active_sequences == BATCH, 10, 0.005)
                # under load, health and reflection (both exempt from admission) still answer
                status = await asyncio.to_thread(health, srv.target)
                reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
                listing = [r async for r in reflection.ServerReflectionInfo(
                    iter([reflection_pb2.ServerReflectionRequest(list_services="")]))]
                return await task, status, len(listing[0].list_services_response.service)

        results, status, services = asyncio.run(main())
        assert status == SERVING and services >= 5

        admitted = [r for r in results if r[0].startswith("OK")]
        refused = [r for r in results if r[0] == "RESOURCE_EXHAUSTED"]
        assert len(admitted) + len(refused) == STREAMS, [r[0] for r in results]
        # admitted calls complete, and correctly
        assert len(admitted) >= min(max_in_flight, max_queue)
        for outcome, _, text, trailing in admitted:
            assert outcome == "OK:1" and text == TEXT[3:3 + TOKENS]  # FINISH_REASON_LENGTH, greedy recitation
            assert trailing.get("x-request-id")
        # every excess call was refused at once, with the retry hint
        assert len(refused) >= STREAMS - max_in_flight - BATCH
        for _, seconds, _, trailing in refused:
            assert seconds < 1.0
            assert trailing.get("retry-after-ms") == "250" and trailing.get("x-request-id")
        assert health(srv.target) == SERVING
        stats = srv.app.registry.find("slow").stats
        refused_by = {"max_in_flight": srv.app.drain.refused_total, "max_queue": stats.rejected_total}
        assert refused_by[cap] == len(refused) and sum(refused_by.values()) == len(refused)
        assert all(f"{cap}=" in details for _, _, details, _ in refused)  # the message names the limit
        assert wait_for(lambda: srv.app.drain.in_flight == 0 and stats.active_sequences == 0)


def test_client_sees_the_retry_hint(toy_host: PluginHost) -> None:
    config = ServerConfig(models=(ModelSpec("slow", "toy-lm", options={"step_delay": 0.02}),),
                          limits=Limits(max_in_flight=1, retry_after_ms=1234))
    with running_server(config, toy_host) as srv, Client(srv.target, timeout=30) as client:
        stream = client.generate_stream("slow", "", max_new_tokens=100)
        next(stream)
        start = time.perf_counter()
        try:
            client.list_models()
            raise AssertionError("not refused")
        except errors.ResourceExhausted as exc:
            assert exc.retry_after == 1.234 and "max_in_flight=1" in exc.details
        assert time.perf_counter() - start < 1.0
        assert health(srv.target) == SERVING
        stream.cancel()
        assert wait_for(lambda: srv.app.drain.in_flight == 0)
        assert client.list_models()  # admitted again once below the cap
