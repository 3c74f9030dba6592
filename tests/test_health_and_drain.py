"""Standard health and reflection; graceful drain on shutdown; overload refusal."""

from __future__ import annotations

import threading
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from rnnserve.ops.config import Limits, ModelSpec, ServerConfig
from rnnserve.testing.server import ServerThread, running_server
from rnnserve.testing.waiting import wait_for_health, wait_until
from rnnserve_client import Client, errors

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def _health(target: str, service: str = "") -> int:
    with grpc.insecure_channel(target) as channel:
        return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service),
                                                          timeout=5).status


def test_health_overall_and_per_service(server: ServerThread) -> None:
    assert _health(server.target) == SERVING
    for service in ("Generation", "Translation", "Assistant", "Models"):
        assert _health(server.target, f"rnnserve.v1.{service}") == SERVING


def test_health_of_a_service_without_models_is_not_serving(toy_host) -> None:  # type: ignore[no-untyped-def]
    with running_server(ServerConfig(default_models=False), toy_host) as srv:
        assert _health(srv.target, "rnnserve.v1.Generation") == NOT_SERVING
        assert _health(srv.target) == SERVING


def test_reflection_lists_the_four_services(server: ServerThread) -> None:
    with grpc.insecure_channel(server.target) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        responses = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        names = {s.name for s in next(responses).list_services_response.service}
    assert {"rnnserve.v1.Generation", "rnnserve.v1.Translation", "rnnserve.v1.Assistant",
            "rnnserve.v1.Models", "grpc.health.v1.Health"} <= names


def test_full_queue_is_resource_exhausted_and_health_still_answers(toy_host) -> None:  # type: ignore[no-untyped-def]
    config = ServerConfig(models=(ModelSpec("slow", "toy-lm", options={"step_delay": 0.05}),),
                          limits=Limits(max_batch_size=1, max_queue=1))
    with running_server(config, toy_host) as srv, Client(srv.target, timeout=30) as client:
        running = client.generate_stream("slow", "", max_new_tokens=500, temperature=0)  # ~7 s
        next(running)  # admitted: the batch (size 1) is full
        stats = srv.app.registry.find("slow").stats
        waiting = client.generate_stream("slow", "", max_new_tokens=20, temperature=0)
        wait_until(lambda: stats.queue_depth == 1, 10, "the second call to fill the queue (size 1)")
        start = time.perf_counter()
        with pytest.raises(errors.ResourceExhausted, match="max_queue"):
            client.generate("slow", "", max_new_tokens=5)
        assert time.perf_counter() - start < 1.0  # refused at once, not after waiting
        assert _health(srv.target) == SERVING
        running.cancel()
        assert "".join(c.text for c in waiting)  # the queued request is served once there is room
        assert srv.app.registry.find("slow").stats.rejected_total == 1


def test_stop_drains_in_flight_calls_and_refuses_new_ones(toy_host) -> None:  # type: ignore[no-untyped-def]
    config = ServerConfig(models=(ModelSpec("slow", "toy-lm", options={"step_delay": 0.01}),))
    srv = ServerThread(config, toy_host)
    srv.app.registry.wait_loaded(30)
    client = Client(srv.target, timeout=30)
    result: dict[str, object] = {}
    stats = srv.app.registry.find("slow").stats
    in_flight = threading.Thread(target=lambda: result.update(
        r=client.generate("slow", "", max_new_tokens=100, temperature=0)))
    in_flight.start()
    wait_until(lambda: stats.active_sequences == 1, 10, "the in-flight call to be generating")
    stopping = threading.Thread(target=lambda: srv.call(srv.app.stop(grace=10)))
    stopping.start()
    wait_for_health(srv.target, NOT_SERVING)  # the drain has begun
    assert srv.app.drain.draining
    with pytest.raises(errors.Unavailable):
        client.generate("slow", "", max_new_tokens=1)
    in_flight.join(10)
    stopping.join(15)
    assert result["r"].finish_reason in ("length", "end_of_text")  # finished, not cut off
    client.close()
    srv.close()


def test_draining_server_answers_health_not_serving(toy_host) -> None:  # type: ignore[no-untyped-def]
    config = ServerConfig(models=(ModelSpec("slow", "toy-lm", options={"step_delay": 0.01}),))
    srv = ServerThread(config, toy_host)
    srv.app.registry.wait_loaded(30)
    with Client(srv.target, timeout=30) as client:
        stream = client.generate_stream("slow", "", max_new_tokens=100, temperature=0)  # ~1 s
        next(stream)
        stopping = threading.Thread(target=lambda: srv.call(srv.app.stop(grace=10)))
        stopping.start()
        wait_for_health(srv.target, NOT_SERVING)  # a Watch sees the change (no sleep)
        assert _health(srv.target) == NOT_SERVING
        assert _health(srv.target, "rnnserve.v1.Generation") == NOT_SERVING
        rest = list(stream)
        assert rest[-1].finish_reason in ("length", "end_of_text")
        stopping.join(15)
    srv.close()
