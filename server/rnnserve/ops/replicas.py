"""``rnnserve serve --workers N``: N server processes on consecutive ports, one supervisor.

Each replica is an ordinary ``rnnserve serve`` process (its own interpreter, models,
schedulers and GIL) started with the same arguments and ``--port BASE + i`` (with
``--port 0`` every replica picks a free port). Clients balance over them on their side:
``Client("ipv4:127.0.0.1:50051,127.0.0.1:50052")`` (``round_robin`` plus gRPC
client-side health checking, see ``rnnserve_client._channel``), or a ``dns:///`` name
whose records are the replicas.

The supervisor (this module, in the parent process):

* waits until every replica prints its ``listening on`` line, then prints one such line
  per replica (the first keeps the single-server format, so tooling that reads the first
  line works unchanged) and a last line with the client target of all of them;
* forwards SIGTERM/SIGINT to every replica (each drains: health NOT_SERVING, new calls
  UNAVAILABLE, in-flight calls get ``grace_seconds``) and exits when all have, with
  status 0 if every replica exited cleanly;
* restarts a replica that dies after the group started (same port, after
  ``RESTART_DELAY_S``), at most ``MAX_RESTARTS`` times in a row: a replica that served for
  ``STABLE_S`` starts its count again. One that keeps dying is left stopped and the others
  go on serving (the group exits with status 1 when stopped, or at once when no replica is
  left). A replica that fails before the group first started stops the whole group (a bad
  config or a busy port would fail again);
* asks the kernel to SIGTERM the replicas if the supervisor itself dies (Linux);
* with metrics on (``metrics_port`` M), gives replica i ``--metrics-port M + i``;
* with the HTTP API on (``http_port`` H, default 8000), gives replica i ``--http-port H + i``;
* sets ``RNNSERVE_REPLICA`` (1..N) in each replica's environment, so its log lines say
  which replica wrote them.

``rnnserve serve --workers N`` replaces itself (``exec``, same pid) with ``python -m
rnnserve.ops.replicas``, which imports neither torch nor the plugins: the supervisor costs
about 20 MB instead of a full server's few hundred.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from rnnserve.ops.logs import REPLICA_ENV

log = logging.getLogger("rnnserve.replicas")

#: Seconds before a replica that died is started again.
RESTART_DELAY_S = 1.0
#: Restarts in a row (without STABLE_S of serving in between) before a replica is left stopped.
MAX_RESTARTS = 5
#: Seconds of serving after which a replica's count of restarts starts again.
STABLE_S = 60.0
#: Seconds a replica gets to print its ``listening on`` line.
START_TIMEOUT_S = 600.0

LISTENING = re.compile(r"listening on (\S+):(\d+)")


def _parent_death_signal() -> Callable[[], None] | None:
    """A ``preexec_fn`` asking Linux to SIGTERM the child when the supervisor dies
    (PR_SET_PDEATHSIG). ``prctl`` is looked up here, in the parent: between fork and exec the
    child (forked from a process with threads) only calls it, and loads nothing."""
    if sys.platform != "linux":
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def set_parent_death_signal() -> None:  # pragma: no cover - runs in the child
        prctl(1, signal.SIGTERM)

    return set_parent_death_signal


def client_target(host: str, ports: Sequence[int]) -> str:
    """The gRPC target that balances over every replica: ``ipv4:`` / ``ipv6:`` address lists."""
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host in ("::", "[::]"):
        host = "[::1]"
    if ":" in host.strip("[]"):
        return "ipv6:" + ",".join(f"[{host.strip('[]')}]:{p}" for p in ports)
    if re.fullmatch(r"[\d.]+", host):
        return "ipv4:" + ",".join(f"{host}:{p}" for p in ports)
    return ",".join(f"{host}:{p}" for p in ports)  # a name: use dns:/// with several records instead


@dataclass
class Replica:
    #: 0-based; logs and messages say ``number`` (1-based, as in "[replica 2/2]").
    index: int
    port: int
    proc: subprocess.Popen[str] | None = None
    ready_line: str = ""
    ready: threading.Event = field(default_factory=threading.Event)
    #: When it last became ready (time.monotonic()).
    ready_at: float = 0.0
    #: Restarts since it last served for STABLE_S.
    restarts: int = 0
    #: Left stopped after MAX_RESTARTS restarts in a row.
    given_up: bool = False

    @property
    def number(self) -> int:
        return self.index + 1


class Supervisor:
    """Starts, watches, restarts and stops the replica processes."""

    def __init__(self, child_args: Sequence[str], workers: int, base_port: int,
                 out: Callable[[str], None] | None = None, metrics_port: int | None = None,
                 http_port: int | None = None) -> None:
        if workers < 1:
            raise ValueError("--workers must be at least 1")
        self.child_args = list(child_args)
        #: With metrics on, replica i serves them on ``metrics_port + i`` (0: each picks a port).
        self.metrics_port = metrics_port
        #: Replica i serves the HTTP API on ``http_port + i`` (0: off; None: the replicas' own default).
        self.http_port = http_port
        self.replicas = [Replica(i, base_port + i if base_port else 0) for i in range(workers)]
        self.stopping = threading.Event()
        self.failed: str | None = None
        self._out = out or (lambda line: print(line, flush=True))
        self._lock = threading.Lock()
        self._preexec = _parent_death_signal()

    def _command(self, replica: Replica) -> list[str]:
        command = [sys.executable, "-m", "rnnserve.cli", *self.child_args, "--port", str(replica.port)]
        if self.metrics_port is not None:
            command += ["--metrics-port", str(self.metrics_port + replica.index if self.metrics_port else 0)]
        if self.http_port is not None:
            command += ["--http-port", str(self.http_port + replica.index if self.http_port else 0)]
        return command

    def _start(self, replica: Replica) -> None:
        replica.ready.clear()
        env = {**os.environ, "PYTHONUNBUFFERED": "1", REPLICA_ENV: str(replica.number)}
        proc = subprocess.Popen(self._command(replica), stdout=subprocess.PIPE, stderr=None, text=True, env=env,
                                preexec_fn=self._preexec)
        replica.proc = proc
        threading.Thread(target=self._pump, args=(replica, proc), name=f"replica-{replica.index}-stdout",
                         daemon=True).start()

    def _pump(self, replica: Replica, proc: subprocess.Popen[str]) -> None:
        """Read a replica's stdout: catch its ``listening on`` line, pass the rest through."""
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            match = LISTENING.search(line)
            if match and not replica.ready.is_set():
                replica.port = int(match.group(2))  # --port 0: the port the replica picked, kept on restart
                replica.ready_line = line
                replica.ready_at = time.monotonic()
                replica.ready.set()
                if replica.restarts:
                    log.info("replica %d is back on port %d (pid %d)", replica.number, replica.port, proc.pid)
                continue
            with self._lock:
                self._out(line)

    def start(self, timeout: float = START_TIMEOUT_S) -> list[Replica]:
        """Start every replica and wait until each listens; raise if one exits first."""
        for replica in self.replicas:
            self._start(replica)
        for replica in self.replicas:
            self._wait_ready(replica, timeout)
        return self.replicas

    def _wait_ready(self, replica: Replica, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        assert replica.proc is not None
        while not replica.ready.wait(0.1):
            if replica.proc.poll() is not None:
                raise RuntimeError(f"replica {replica.number} exited with status {replica.proc.returncode} "
                                   "before it was ready")
            if time.monotonic() > deadline:
                raise TimeoutError(f"replica {replica.number} did not start within {timeout:.0f} s")

    def announce(self, host: str) -> None:
        """One ``listening on`` line per replica (the first as a single server prints it), then the target."""
        with self._lock:
            for replica in self.replicas:
                suffix = "" if replica.index == 0 else f" [replica {replica.number}/{len(self.replicas)}]"
                self._out(replica.ready_line + suffix)
            pids = ", ".join(str(r.proc.pid) for r in self.replicas if r.proc is not None)
            self._out(f"rnnserve: {len(self.replicas)} replicas (pids {pids}); client target "
                      f"{client_target(host, [r.port for r in self.replicas])}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Forward ``sig`` to every replica still running (each drains and exits)."""
        self.stopping.set()
        for replica in self.replicas:
            if replica.proc is not None and replica.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    replica.proc.send_signal(sig)

    def watch(self) -> int:
        """Supervise until stopped; restart dead replicas; return the exit status."""
        while not self.stopping.is_set():
            for replica in self.replicas:
                proc = replica.proc
                if proc is None or proc.poll() is None or self.stopping.is_set():
                    continue
                replica.proc = None
                if replica.ready.is_set() and time.monotonic() - replica.ready_at >= STABLE_S:
                    replica.restarts = 0  # it served a while: a crash, not a crash loop
                if replica.restarts >= MAX_RESTARTS:
                    replica.given_up = True
                    log.error("replica %d (port %d) exited with status %s after %d restarts in a row; leaving it "
                              "stopped", replica.number, replica.port, proc.returncode, replica.restarts)
                    if all(r.given_up for r in self.replicas):
                        self.failed = "every replica kept dying"
                        log.error("%s; stopping", self.failed)
                        self.stop()
                        break
                    continue
                replica.restarts += 1
                log.warning("replica %d (pid %d, port %d) exited with status %s; restarting it in %.0f s "
                            "(restart %d of %d in a row)", replica.number, proc.pid, replica.port, proc.returncode,
                            RESTART_DELAY_S, replica.restarts, MAX_RESTARTS)
                if self.stopping.wait(RESTART_DELAY_S):
                    break
                self._start(replica)
            self.stopping.wait(0.2)
        return self.wait()

    def wait(self) -> int:
        """Wait for every replica to exit; 0 if each exited cleanly and none failed or was left stopped."""
        status = 0
        for replica in self.replicas:
            if replica.proc is not None:
                code = replica.proc.wait()
                if code not in (0, -signal.SIGTERM, -signal.SIGINT):
                    status = 1
        return 1 if self.failed or any(r.given_up for r in self.replicas) else status


def serve_replicas(child_args: Sequence[str], workers: int, base_port: int, host: str,
                   metrics_port: int | None = None, http_port: int | None = None) -> int:
    """Run ``workers`` replicas of ``rnnserve serve CHILD_ARGS`` until SIGTERM/SIGINT; the exit status."""
    supervisor = Supervisor(child_args, workers, base_port, metrics_port=metrics_port, http_port=http_port)

    def on_signal(signum: int, frame: object) -> None:
        log.info("signal %d: draining %d replicas", signum, len(supervisor.replicas))
        supervisor.stop(signal.SIGTERM)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        try:
            supervisor.start()
        except (RuntimeError, TimeoutError) as exc:
            log.error("%s; stopping every replica", exc)
            supervisor.failed = str(exc)
            supervisor.stop()
            return supervisor.wait()
        supervisor.announce(host)
        return supervisor.watch()
    finally:
        supervisor.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def exec_supervisor(child_args: Sequence[str], workers: int, base_port: int, host: str, log_format: str,
                    verbose: bool, metrics_port: int | None = None, http_port: int | None = None) -> None:
    """Replace this process (same pid) with a light supervisor, ``python -m rnnserve.ops.replicas``."""
    sys.stdout.flush()
    sys.stderr.flush()
    argv = [sys.executable, "-m", "rnnserve.ops.replicas", "--workers", str(workers), "--port", str(base_port),
            "--host", host, "--log-format", log_format, *(["-v"] if verbose else []),
            *(["--metrics-port", str(metrics_port)] if metrics_port is not None else []),
            *(["--http-port", str(http_port)] if http_port is not None else []), "--", *child_args]
    os.execv(sys.executable, argv)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rnnserve.ops.replicas",
                                     description="Supervise N `rnnserve serve` replicas (rnnserve serve --workers).")
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--port", type=int, required=True, help="port of replica 0 (0: each picks one)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--log-format", default="text")
    parser.add_argument("--metrics-port", type=int, default=None, help="replica i: this port + i (0: any)")
    parser.add_argument("--http-port", type=int, default=None, help="replica i: HTTP API on this port + i (0: off)")
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument("child_args", nargs=argparse.REMAINDER, help="-- then the arguments of `rnnserve ...`")
    args = parser.parse_args(argv)
    from rnnserve.ops.logs import configure_logging

    configure_logging(logging.DEBUG if args.verbose else logging.INFO, args.log_format)
    child = args.child_args[1:] if args.child_args[:1] == ["--"] else args.child_args
    return serve_replicas(child, args.workers, args.port, args.host, args.metrics_port, args.http_port)


if __name__ == "__main__":
    sys.exit(main())
