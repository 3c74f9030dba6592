"""Cancel storm: a few hundred streams (generation and assistant sessions) cancelled at
random points. Afterwards no batch slot, queue entry, session or in-flight count is leaked,
and the server serves normally.
"""

from __future__ import annotations

import asyncio
import random

import grpc
from grpc import aio

from rnnserve.host.plugins import PluginHost
from rnnserve.ops.config import Limits, ModelSpec, ServerConfig
from rnnserve.testing.server import running_server
from rnnserve_client import Client
from rnnserve_client.v1 import assistant_pb2, assistant_pb2_grpc, generation_pb2, generation_pb2_grpc
from tests.reliability.support import SERVING, health, wait_for

GENERATION_STREAMS = 240
SESSIONS = 60


async def _generation(stub: generation_pb2_grpc.GenerationStub, rng: random.Random) -> str:
    call = stub.GenerateStream(generation_pb2.GenerateRequest(
        model="lm", prompt="the", max_new_tokens=rng.randint(5, 300), n=rng.choice([1, 1, 2, 3])), timeout=60)
    cancel_after = rng.choice([0, 0, 1, 2, 5, 20, 10_000])  # chunks read before cancelling (0: at once)
    if rng.random() < 0.3:
        await asyncio.sleep(rng.random() * 0.05)  # sometimes while still queued / being admitted
        call.cancel()
        return "cancelled-early"
    read = 0
    try:
        async for _ in call:
            read += 1
            if read >= cancel_after:
                call.cancel()
                return "cancelled"
    except grpc.RpcError:
        pass
    return (await call.code()).name


async def _session(stub: assistant_pb2_grpc.AssistantStub, rng: random.Random) -> str:
    requests: asyncio.Queue[assistant_pb2.SessionRequest | None] = asyncio.Queue()

    async def messages():  # type: ignore[no-untyped-def]
        while (message := await requests.get()) is not None:
            yield message

    call = stub.Session(messages(), timeout=60)
    await requests.put(assistant_pb2.SessionRequest(open=assistant_pb2.SessionOpen(model="assist", text="Eli")))
    events = rng.randint(0, 6)
    try:
        async for _ in call:
            if events == 0:
                call.cancel()
                return "cancelled"
            events -= 1
            await requests.put(assistant_pb2.SessionRequest(append=assistant_pb2.AppendText(text="z")))
    except grpc.RpcError:
        pass
    return (await call.code()).name


def test_cancel_storm_leaks_nothing(toy_host: PluginHost) -> None:
    models = (ModelSpec("lm", "toy-lm", options={"step_delay": 0.002}), ModelSpec("assist", "toy-assistant"))
    config = ServerConfig(models=models, limits=Limits(max_batch_size=32, max_queue=512, max_in_flight=1000))
    with running_server(config, toy_host) as srv:
        rng = random.Random(7)

        async def storm() -> list[str]:
            async with aio.insecure_channel(srv.target) as channel:
                generation = generation_pb2_grpc.GenerationStub(channel)
                assistant = assistant_pb2_grpc.AssistantStub(channel)
                calls = [_generation(generation, rng) for _ in range(GENERATION_STREAMS)]
                calls += [_session(assistant, rng) for _ in range(SESSIONS)]
                rng.shuffle(calls)
                return await asyncio.gather(*calls)

        outcomes = asyncio.run(storm())
        assert set(outcomes) <= {"cancelled", "cancelled-early", "OK", "CANCELLED"}, set(outcomes)
        assert outcomes.count("cancelled") + outcomes.count("cancelled-early") > 200

        app = srv.app
        stats = app.registry.find("lm").stats
        assistant_service = app.services[2]
        assert wait_for(lambda: stats.active_sequences == 0 and stats.queue_depth == 0, 15), stats
        assert wait_for(lambda: assistant_service.open_sessions == 0, 15)  # type: ignore[attr-defined]
        assert wait_for(lambda: app.drain.in_flight == 0, 15), app.drain.in_flight
        assert all(len(e.guard) == 0 for e in app.registry.entries())  # no hang-watch registration left behind
        assert health(srv.target) == SERVING
        with Client(srv.target, timeout=30) as client:
            result = client.generate("lm", "the qu", temperature=0, max_new_tokens=9, n=2)
            assert [c.text for c in result.completions] == ["ick brown"] * 2
            assert client.suggest("assist", "Eli")
