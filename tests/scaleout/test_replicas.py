"""``rnnserve serve --workers 2``: client-side round_robin over two real replica processes.

One test drives a real supervisor: traffic spreads over both replicas (counted by each
replica's own ``requests_total``), a session is pinned to one replica and fails with
UNAVAILABLE (not a hang) when that replica is SIGKILLed mid-run, unary traffic carries on
with no failed call beyond those in flight on the killed replica, the supervisor restarts
the replica on its port, and SIGTERM drains and stops the whole group.
"""

from __future__ import annotations

import re
import signal
import threading
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from rnnserve.ops.replicas import client_target
from rnnserve.testing.waiting import wait_until
from rnnserve_client import Client, errors
from tests.scaleout.conftest import start_serve

pytestmark = pytest.mark.timeout(180)


def _requests_total(port: int) -> int:
    with Client(f"127.0.0.1:{port}", timeout=10) as client:
        return client.get_model("tiny").stats.requests_total


def _serving(port: int) -> bool:
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2).status
        return status == health_pb2.HealthCheckResponse.SERVING
    except grpc.RpcError:
        return False


def test_client_target_forms() -> None:
    assert client_target("127.0.0.1", [5, 6]) == "ipv4:127.0.0.1:5,127.0.0.1:6"
    assert client_target("0.0.0.0", [5]) == "ipv4:127.0.0.1:5"
    assert client_target("::1", [5, 6]) == "ipv6:[::1]:5,[::1]:6"


def test_two_replicas_balance_survive_a_kill_and_drain(tiny_config: Path) -> None:
    proc, lines = start_serve(["--config", str(tiny_config), "--port", "0", "--workers", "2"])
    try:
        # The first line keeps the single-server format; one line per replica; then the target.
        first = re.fullmatch(r"rnnserve \S+ listening on 127\.0\.0\.1:(\d+) \(models: tiny, tiny-assist\)", lines[0])
        assert first, lines
        second = re.search(r"listening on 127\.0\.0\.1:(\d+) .*\[replica 2/2\]", lines[1])
        assert second, lines
        ports = [int(first.group(1)), int(second.group(1))]
        summary = re.search(r"2 replicas \(pids (\d+), (\d+)\); client target (\S+)", lines[2])
        assert summary, lines
        pids = [int(summary.group(1)), int(summary.group(2))]
        target = summary.group(3)
        assert target == f"ipv4:127.0.0.1:{ports[0]},127.0.0.1:{ports[1]}"

        with Client(target, timeout=20) as client:
            # 1. Spread: round_robin sends every other call to each replica.
            before = [_requests_total(p) for p in ports]
            calls = 40
            for i in range(calls):
                assert client.generate("tiny", "It is", max_new_tokens=8, temperature=0, seed=i).text is not None
            spread = [_requests_total(p) - b for p, b in zip(ports, before, strict=True)]
            print(f"\nrequests per replica over {calls} calls: {spread}")
            assert sum(spread) == calls
            assert min(spread) >= calls // 4, spread

            # 2. A session is pinned to the replica carrying its stream; open one on replica 2 only.
            pinned = Client(f"127.0.0.1:{ports[1]}", timeout=20)
            # The replica may still be loading the assistant (it loads after its language model).
            wait_until(lambda: pinned.get_model("tiny-assist").state == "ready", 30, "tiny-assist READY on replica 2")
            session = pinned.session("tiny-assist", text="It is a tr").open()
            assert session.session_id

            # 3. Unary traffic from two threads while replica 2 is SIGKILLed.
            stop = threading.Event()
            ok, failures = [0], []
            lock = threading.Lock()

            def traffic() -> None:
                while not stop.is_set():
                    try:
                        client.score("tiny", "a truth universally", timeout=10)
                        with lock:
                            ok[0] += 1
                    except errors.RnnserveError as exc:
                        with lock:
                            failures.append(exc)

            threads = [threading.Thread(target=traffic) for _ in range(2)]
            for t in threads:
                t.start()
            wait_until(lambda: ok[0] >= 10, 30, "unary traffic to flow (10 calls)")
            ok_before_kill = ok[0]
            import os

            os.kill(pids[1], signal.SIGKILL)
            killed_at = time.monotonic()
            # The session's stream breaks at once: a typed UNAVAILABLE, not a hang.
            with pytest.raises(errors.Unavailable) as lost:
                session.append("uth")
            assert "session lost" in lost.value.details
            assert time.monotonic() - killed_at < 5
            pinned.close()
            ok_at_kill = ok[0]
            wait_until(lambda: ok[0] >= ok_at_kill + 20, 30, "20 unary calls to succeed after the kill")
            stop.set()
            for t in threads:
                t.join(30)
            print(f"unary calls: {ok_before_kill} ok before the kill, {ok[0]} ok in all, "
                  f"{len(failures)} failed: {failures}")
            assert ok[0] > ok_before_kill  # traffic went on, on the surviving replica
            # At most the calls in flight on the killed replica (one per thread) may fail, and only as UNAVAILABLE.
            assert len(failures) <= len(threads)
            assert all(isinstance(f, errors.Unavailable) for f in failures)

            # 4. The supervisor restarts the replica on the same port; the client uses it again.
            # (a deadline, not a wait: a restart takes ~3 s idle, far longer on a loaded machine)
            wait_until(lambda: _serving(ports[1]), 120, "the supervisor to restart replica 2")
            # The client reconnects after its subchannel's backoff (1 s, growing) and the health watch.
            wait_until(lambda: client.generate("tiny", "It is", max_new_tokens=4, temperature=0)
                       and _requests_total(ports[1]) > 0, 30, "the client to use the restarted replica")
        # 5. SIGTERM: the supervisor forwards it, every replica drains, the group exits 0.
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        assert not _serving(ports[0]) and not _serving(ports[1])
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_client_health_checking_skips_a_not_serving_replica(tmp_path: Path) -> None:
    """healthCheckConfig works with this grpcio: a replica whose overall health is NOT_SERVING
    (as while it drains) gets no calls from a multi-target client until it is SERVING again."""
    from rnnserve.ops.config import ModelSpec, ServerConfig
    from rnnserve.testing.server import running_server
    from tests.scaleout.conftest import make_tiny_model

    model = make_tiny_model(tmp_path / "tiny")
    config = ServerConfig(default_models=False, models=(ModelSpec("tiny", "char-lstm", path=str(model)),))
    with running_server(config) as a, running_server(config) as b:
        target = f"ipv4:{a.target},{b.target}"

        def counts() -> list[int]:
            return [s.app.registry.find("tiny").stats.requests_total for s in (a, b)]

        with Client(target, timeout=10) as client:
            for _ in range(10):
                client.generate("tiny", "It", max_new_tokens=2)
            assert min(counts()) >= 3  # both serve
            b.call(b.app.health.set("", health_pb2.HealthCheckResponse.NOT_SERVING))
            # The client's own health Watch delivers the change: then two calls in a row miss b
            # (round_robin would send one of them to b while b is in the rotation).
            wait_until(lambda: _two_calls_miss(client, counts, 1), 10, "the client to take b out of the rotation")
            before = counts()
            for _ in range(10):
                client.generate("tiny", "It", max_new_tokens=2)
            after = counts()
            assert after[1] == before[1], (before, after)  # none reached the NOT_SERVING replica
            assert after[0] == before[0] + 10
            b.call(b.app.health.set("", health_pb2.HealthCheckResponse.SERVING))
            wait_until(lambda: client.generate("tiny", "It", max_new_tokens=2) and counts()[1] > after[1], 10,
                       "b to be back in the rotation")


def _two_calls_miss(client: Client, counts, index: int) -> bool:  # type: ignore[no-untyped-def]
    """Two calls in a row, and neither reached replica ``index``."""
    before = counts()[index]
    for _ in range(2):
        client.generate("tiny", "It", max_new_tokens=2)
    return counts()[index] == before


def test_a_replica_that_cannot_start_stops_the_group(tiny_config: Path) -> None:
    """Base port P: replicas on P and P+1; P+1 is taken, so replica 2 fails before it is ready
    and the supervisor stops the other and exits 1 (restarting would fail the same way)."""
    import socket
    import subprocess
    import sys

    from tests.scaleout.conftest import server_env

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        base = taken.getsockname()[1] - 1
        proc = subprocess.run([sys.executable, "-m", "rnnserve.cli", "serve", "--config", str(tiny_config),
                               "--port", str(base), "--workers", "2", "--http-port", "0"], capture_output=True,
                              text=True, env=server_env(), timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert re.search(r"replica 2 exited with status \d+ before it was ready; stopping every replica", proc.stderr)
    assert "rnnserve: cannot listen on 127.0.0.1:" in proc.stderr  # replica 2's one-line reason
    assert re.search(r"INFO \[replica 1\] rnnserve\.app \[-\]: stopped", proc.stderr)  # lines name their replica
    assert "client target" not in proc.stdout


def test_workers_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    from rnnserve.cli import main

    assert main(["serve", "--workers", "0"]) == 2
    assert "--workers must be at least 1" in capsys.readouterr().err


def test_each_replica_gets_its_own_ports() -> None:
    from rnnserve.ops.replicas import Supervisor

    supervisor = Supervisor(["serve", "--config", "x.toml"], 3, 50051, metrics_port=9100)
    commands = [supervisor._command(r) for r in supervisor.replicas]
    assert [c[c.index("--port") + 1] for c in commands] == ["50051", "50052", "50053"]
    assert [c[c.index("--metrics-port") + 1] for c in commands] == ["9100", "9101", "9102"]
    assert all(c[c.index("rnnserve.cli") + 1:][:3] == ["serve", "--config", "x.toml"] for c in commands)
    assert "--metrics-port" not in Supervisor(["serve"], 2, 0)._command(Supervisor(["serve"], 2, 0).replicas[1])


def test_a_replica_names_itself_on_every_log_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import json
    import logging

    from rnnserve.ops.logs import REPLICA_ENV, make_handler

    def line(fmt: str) -> str:
        stream = io.StringIO()
        handler = make_handler(fmt, stream)
        handler.handle(logging.LogRecord("rnnserve.app", logging.INFO, __file__, 1, "ready", None, None))
        return stream.getvalue()

    assert "[replica" not in line("text") and "replica" not in json.loads(line("json"))
    monkeypatch.setenv(REPLICA_ENV, "2")
    assert re.search(r" INFO \[replica 2\] rnnserve\.app \[-\]: ready$", line("text").rstrip("\n"))
    assert json.loads(line("json"))["replica"] == 2


#: A stand-in for ``rnnserve serve`` (the supervisor's boundary): counts its starts in a file,
#: prints the ready line unless told not to after its first start, then lives LIFE seconds.
FAKE_REPLICA = """
import os, sys, time
mode, counter = sys.argv[1], sys.argv[2]
starts = int(open(counter).read() or 0) + 1 if os.path.exists(counter) else 1
open(counter, "w").write(str(starts))
if mode == "crash-loop" and starts > 1:
    sys.exit(3)  # dies before it is ready again
print(f"rnnserve 0 listening on 127.0.0.1:{5000 + int(os.environ['RNNSERVE_REPLICA'])} (models: x)", flush=True)
time.sleep({"steady": 60, "crash-loop": 0.3, "flaky": 0.3}[mode])
sys.exit(0 if mode == "steady" else 3)
"""


def _fake_supervisor(tmp_path: Path, modes: list[str]):  # type: ignore[no-untyped-def]
    """A Supervisor whose replicas are FAKE_REPLICA processes, one mode each."""
    import sys

    from rnnserve.ops.replicas import Replica, Supervisor

    class FakeReplicas(Supervisor):
        def _command(self, replica: Replica) -> list[str]:
            return [sys.executable, "-c", FAKE_REPLICA, modes[replica.index], str(tmp_path / f"{replica.index}")]

    supervisor = FakeReplicas([], len(modes), 0, out=lambda line: None)
    supervisor.stopping = _CountingEvent()
    return supervisor


class _CountingEvent(threading.Event):
    """The supervisor's ``stopping`` event, counting its waits: one ends each pass of ``watch``."""

    def __init__(self) -> None:
        super().__init__()
        self.waits = 0

    def wait(self, timeout: float | None = None) -> bool:
        self.waits += 1
        return super().wait(timeout)


def _starts(tmp_path: Path, index: int) -> int:
    return int((tmp_path / f"{index}").read_text() or 0)  # "" while the replica rewrites it


def test_a_replica_that_keeps_dying_is_left_stopped_and_the_others_serve_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rnnserve.ops import replicas

    monkeypatch.setattr(replicas, "RESTART_DELAY_S", 0.01)
    monkeypatch.setattr(replicas, "MAX_RESTARTS", 2)
    supervisor = _fake_supervisor(tmp_path, ["steady", "crash-loop"])
    supervisor.start(timeout=30)
    status: list[int] = []
    watcher = threading.Thread(target=lambda: status.append(supervisor.watch()))
    watcher.start()
    wait_until(lambda: supervisor.replicas[1].given_up, 20, "replica 2 to be given up")
    assert _starts(tmp_path, 1) == 1 + 2  # its first start, then two restarts that died before ready
    # The supervisor decides about the group in the pass that gave replica 2 up: let it end that
    # pass (its next wait on ``stopping``), then the group must still be up.
    passes = supervisor.stopping.waits
    wait_until(lambda: supervisor.stopping.waits > passes, 10, "the supervisor to finish its pass")
    steady = supervisor.replicas[0].proc
    assert not supervisor.stopping.is_set() and supervisor.failed is None
    assert steady is not None and steady.poll() is None and _starts(tmp_path, 0) == 1  # replica 1 serves on
    supervisor.stop()
    watcher.join(30)
    assert status == [1]  # a replica was lost


def test_a_replica_that_served_a_while_starts_its_count_of_restarts_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rnnserve.ops import replicas

    monkeypatch.setattr(replicas, "RESTART_DELAY_S", 0.01)
    monkeypatch.setattr(replicas, "MAX_RESTARTS", 1)
    monkeypatch.setattr(replicas, "STABLE_S", 0.1)  # each run serves 0.3 s: longer than "stable"
    supervisor = _fake_supervisor(tmp_path, ["steady", "flaky"])
    supervisor.start(timeout=30)
    watcher = threading.Thread(target=supervisor.watch)
    watcher.start()
    # three restarts, each one "in a row" count of 1 (so never given up)
    wait_until(lambda: _starts(tmp_path, 1) >= 4 or supervisor.replicas[1].given_up, 20, "three restarts")
    assert not supervisor.replicas[1].given_up
    supervisor.stop()
    watcher.join(30)
    assert not supervisor.replicas[1].given_up


def test_replicas_share_the_cores_unless_told_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:

    from rnnserve.cli import build_parser
    from rnnserve.cli.server_commands import _replica_args
    from rnnserve.host.plugins import load_plugins
    from rnnserve.host.torch_runtime import usable_cores

    parser = build_parser(load_plugins(discover=False))
    cores = usable_cores()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    args = parser.parse_args(["serve", "--workers", "2"])
    assert _replica_args(args)[-2:] == ["--torch-threads", str(max(1, cores // 2))]
    assert "--torch-threads" not in _replica_args(args, torch_threads=3)  # the config's value applies
    assert _replica_args(parser.parse_args(["serve", "--workers", "2", "--torch-threads", "4"]))[-2:] == \
        ["--torch-threads", "4"]
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert "--torch-threads" not in _replica_args(args)
