"""Ray Serve: rnnserve's client talks to Ray's gRPC proxy and gets a plain server's results.

A local Ray (``num_cpus=2``, its servers on loopback, no dashboard) runs the ``rnnserve`` deployment with
two replicas. Ray Serve is a dev dependency, so this runs in CI; it is not skipped when
Ray is missing (the import fails the test).
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

from rnnserve.ops import ray_serve
from rnnserve.ops.config import Limits, ModelSpec, ServerConfig
from rnnserve.testing.server import running_server
from rnnserve_client import Client, errors
from tests.scaleout.conftest import make_tiny_model

TOKEN = "ray-test-token"
#: New characters of a "long" call: about 2.5 s on the tiny model (0.6 s for 4,096).
LONG = 16384
#: Ray Serve 2.60's own pydantic models warn on import (pydantic 2 deprecations), not ours.
pytestmark = pytest.mark.filterwarnings("ignore:Using extra keyword arguments on `Field`")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ray_rss_mib() -> float:
    """Resident memory of this machine's Ray processes (raylet, GCS, workers: ``ray::`` actors)."""
    total = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
            if not (b"ray::" in cmdline or b"raylet" in cmdline or b"gcs_server" in cmdline
                    or b"ray/_private" in cmdline or b"default_worker.py" in cmdline):
                continue
            for line in (proc / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def _results(client: Client) -> dict[str, object]:
    """What a plain server and the Ray proxy must agree on (greedy, so deterministic)."""
    generated = client.generate("tiny", "It is a", max_new_tokens=24, temperature=0)
    streamed = "".join(c.text for c in client.generate_stream("tiny", "It is a", max_new_tokens=24, temperature=0))
    score = client.score("tiny", "a truth universally acknowledged", context="It is ")
    suggestions = [(s.text, round(s.probability, 6)) for s in client.suggest("tiny-assist", "It is a tr")]
    with client.session("tiny-assist", text="It is a") as session:
        typed = [(s.text, round(s.probability, 6)) for s in session.append(" tr")]
    return {"text": generated.text, "finish": generated.finish_reason, "stream": streamed,
            "bits_per_char": round(score.bits_per_char, 6), "nats": round(score.total_logprob, 5),
            "suggest": suggestions, "session": typed}


@pytest.mark.timeout(240)
def test_ray_serve_proxy_matches_a_plain_server(tmp_path: Path) -> None:
    model = make_tiny_model(tmp_path / "tiny")
    config = ServerConfig(default_models=False, auth_token=TOKEN, limits=Limits(max_new_tokens=LONG),
                          models=(ModelSpec("tiny", "char-lstm", path=str(model)),
                                  ModelSpec("tiny-assist", "writing-assistant",
                                            options={"language_model": "tiny"})))
    with running_server(config) as plain, Client(plain.target, timeout=30, token=TOKEN) as client:
        expected = _results(client)

    options = ray_serve.RayServeOptions(replicas=2, replica_cpus=0.5, max_ongoing_requests=2,
                                        max_queued_requests=1, grpc_port=_free_port(), http_port=_free_port())
    started = time.perf_counter()
    try:
        seconds = ray_serve.start(config, options, num_cpus=2)
        rss = _ray_rss_mib()
        print(f"\nRay Serve: 2 replicas RUNNING {seconds:.1f} s after start; Ray processes' RSS {rss:.0f} MiB")
        import ray

        # A local Ray's own servers (GCS, raylet, workers) listen on the loopback address only.
        assert {node["NodeManagerAddress"] for node in ray.nodes()} == {"127.0.0.1"}
        assert ray.get_runtime_context().gcs_address.startswith("127.0.0.1:")
        target = f"127.0.0.1:{options.grpc_port}"
        with Client(target, timeout=60, token=TOKEN) as client:
            assert [m.name for m in client.list_models()] == ["tiny", "tiny-assist"]
            assert _results(client) == expected

            # rnnserve's own statuses pass through the proxy with their details.
            with pytest.raises(errors.NotFound, match="models of kind language-model: tiny"):
                client.generate("nope", "x")
            with pytest.raises(errors.InvalidArgument, match="max_stop_sequences"):
                client.generate("tiny", "x", stop=[str(i) for i in range(20)])

            # max_queued_requests: beyond 2 replicas x 2 ongoing + 1 queued, RESOURCE_EXHAUSTED at once.
            # The calls start 0.1 s apart (each ~3 s long): Serve's router assigns a call once it
            # knows a replica has room, and a burst arriving in the same milliseconds queues (and
            # is refused) before the first ones are assigned.
            outcomes: list[str] = []
            lock = threading.Lock()

            def long_call() -> None:
                try:
                    client.generate("tiny", "It", max_new_tokens=LONG, temperature=1.0, seed=1)
                    outcome = "ok"
                except errors.ResourceExhausted:
                    outcome = "exhausted"
                except errors.RnnserveError as exc:
                    outcome = f"other: {exc}"
                with lock:
                    outcomes.append(outcome)

            threads = [threading.Thread(target=long_call) for _ in range(10)]
            for t in threads:
                t.start()
                time.sleep(0.1)
            for t in threads:
                t.join(120)
            print(f"10 concurrent long calls: {outcomes.count('ok')} ok, {outcomes.count('exhausted')} "
                  "RESOURCE_EXHAUSTED")
            assert len(outcomes) == 10
            # Capacity 5 (2 x 2 running + 1 queued): 5 / 5 in every run here; one either way is allowed.
            assert outcomes.count("ok") >= 4 and outcomes.count("exhausted") >= 3
            assert set(outcomes) <= {"ok", "exhausted"}

        # The server's bearer-token auth guards the proxy too (the token is forwarded).
        with Client(target, timeout=30) as anonymous, pytest.raises(errors.Unauthenticated):
            anonymous.list_models()
    finally:
        ray_serve.shutdown()
    elapsed = time.perf_counter() - started
    print(f"Ray Serve part of the test: {elapsed:.1f} s")
    assert elapsed < 150


def test_scaling_flags_map_to_deployment_options() -> None:
    fixed = ray_serve.RayServeOptions(replicas=3, max_queued_requests=7).deployment_options()
    assert fixed["num_replicas"] == 3 and "autoscaling_config" not in fixed
    assert fixed["max_queued_requests"] == 7
    auto = ray_serve.RayServeOptions(replicas=1, max_replicas=4, target_ongoing_requests=2).deployment_options()
    assert "num_replicas" not in auto
    assert auto["autoscaling_config"] == {"min_replicas": 1, "initial_replicas": 1, "max_replicas": 4,
                                          "target_ongoing_requests": 2}
    assert len(ray_serve.SERVICER_FUNCTIONS) == 4  # Generation, Translation, Assistant, Models


def test_ray_serve_command_checks_its_flags(capsys: pytest.CaptureFixture[str]) -> None:
    from rnnserve.cli import main

    assert main(["ray-serve", "--replicas", "2", "--max-replicas", "1"]) == 2
    assert "--max-replicas at least --replicas" in capsys.readouterr().err


def test_shutdown_stops_ray_even_when_serve_cannot_stop(monkeypatch: pytest.MonkeyPatch,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    """Ray Serve's shutdown waits forever once the raylet is gone (a SIGTERM to the whole process
    group reaches it too); ``shutdown`` gives it a bounded time, then stops Ray regardless."""
    import ray
    from ray import serve

    stuck, calls = threading.Event(), []
    monkeypatch.setattr(serve, "shutdown", lambda: stuck.wait(30))
    monkeypatch.setattr(ray, "shutdown", lambda: calls.append("ray.shutdown"))
    started = time.perf_counter()
    try:
        ray_serve.shutdown(timeout_s=0.2)
    finally:
        stuck.set()
    assert time.perf_counter() - started < 5
    assert calls == ["ray.shutdown"]
    assert "Ray Serve did not stop within 0 s" in caplog.text


def test_on_a_cluster_it_joined_shutdown_deletes_only_its_application(monkeypatch: pytest.MonkeyPatch) -> None:
    """``serve.shutdown`` would delete every application on a shared cluster and stop Serve."""
    import ray
    from ray import serve

    calls: list[str] = []
    monkeypatch.setattr(serve, "shutdown", lambda: calls.append("serve.shutdown"))
    monkeypatch.setattr(serve, "delete", lambda name: calls.append(f"serve.delete {name}"))
    monkeypatch.setattr(ray, "shutdown", lambda: calls.append("ray.shutdown"))
    ray_serve.shutdown(joined=True)
    assert calls == ["serve.delete rnnserve", "ray.shutdown"]
    calls.clear()
    ray_serve.shutdown()
    assert calls == ["serve.shutdown", "ray.shutdown"]


def test_a_proxy_without_rnnserve_services_is_a_clear_error() -> None:
    """Serve already running on a cluster keeps its gRPC options: a proxy that does not serve
    rnnserve's services answers UNIMPLEMENTED, reported with what to do."""
    from concurrent import futures

    import grpc
    from grpc_health.v1 import health, health_pb2_grpc

    from rnnserve.edge.errors import ConfigurationError

    other = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), other)
    port = other.add_insecure_port("127.0.0.1:0")
    other.start()
    try:
        with pytest.raises(ConfigurationError, match=rf"Ray's gRPC proxy on port {port} does not serve rnnserve's "
                                                     r"services .*SERVICER_FUNCTIONS"):
            ray_serve.model_names(port)
    finally:
        other.stop(None)
