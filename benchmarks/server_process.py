"""A real ``rnnserve serve`` process for benchmarks, so the load generator never shares its GIL."""

from __future__ import annotations

import collections
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds process ``pid`` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class ServerProcess:
    """``target``: the client target (every replica's address under ``--workers``); ``pids``:
    the server processes (the replicas', not the supervisor's, under ``--workers``); ``http_url``:
    the HTTP API's base URL (``http://127.0.0.1:PORT``) when started with ``http=True``, else None.

    ``log_levels`` counts the server's log lines by level from its start, and ``problems``
    keeps its last WARNING-or-worse lines (its output is read by one thread, which also
    passes it through to stderr)."""

    def __init__(self, proc: subprocess.Popen[str], target: str, pids: list[int]) -> None:
        self.proc = proc
        self.target = target
        self.pids = pids
        self.http_url: str | None = None
        self.log_levels: collections.Counter[str] = collections.Counter()
        self.problems: collections.deque[str] = collections.deque(maxlen=10)

    def count(self, line: str) -> None:
        """Count one line of the server's output by its log level."""
        for level in LEVELS:
            if f" {level} " in line:
                self.log_levels[level] += 1
                if level in ("WARNING", "ERROR", "CRITICAL"):
                    self.problems.append(line.rstrip()[:300])
                break

    def cpu_seconds(self) -> float:
        """User + system CPU seconds the server processes have used so far."""
        return sum(cpu_seconds(pid) for pid in self.pids)


def _wait_loaded(addresses: list[str], deadline: float) -> None:
    """Models load in the background after the port opens: wait until none is LOADING."""
    from rnnserve_client import Client

    for address in addresses:
        with Client(address, timeout=10) as client:
            while any(m.state == "loading" for m in client.list_models()):
                if time.time() > deadline:
                    raise TimeoutError("models still loading")
                time.sleep(0.2)


def _drain(server: ServerProcess) -> None:
    """Count the server's log lines and pass them through to stderr (warnings stay visible)."""
    assert server.proc.stdout is not None
    for line in server.proc.stdout:
        server.count(line)
        sys.stderr.write(f"[server] {line}")


def free_port() -> int:
    """A TCP port of 127.0.0.1 free right now (``--http-port 0`` means "no HTTP", not "any port")."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve(config_text: str, timeout: float = 600, workers: int = 1, http: bool = False) -> Iterator[ServerProcess]:
    """Start ``rnnserve serve`` (``--workers N`` when ``workers`` > 1) on free ports with the given
    TOML config; stop it afterwards. ``http``: also serve the HTTP API, on a free port (one process only)."""
    if http and workers > 1:
        raise ValueError("http=True needs workers=1 (each replica would take its own HTTP port)")
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "rnnserve.toml"
        config.write_text(config_text)
        command = [sys.executable, "-m", "rnnserve.cli", "serve", "--config", str(config), "--port", "0",
                   "--http-port", str(free_port() if http else 0)]
        if workers > 1:
            command += ["--workers", str(workers)]
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            deadline = time.time() + timeout
            assert proc.stdout is not None
            addresses: list[str] = []
            pids = [proc.pid]
            http_url: str | None = None
            startup: list[str] = []
            while time.time() < deadline:
                line = proc.stdout.readline()
                if not line:
                    raise RuntimeError(f"server exited with {proc.wait()}: " + "".join(startup[-20:]))
                startup.append(line)
                match = re.search(r"listening on ([\d.]+:\d+)", line)
                if match:
                    addresses.append(match.group(1))
                replicas = re.search(r"replicas \(pids ([\d, ]+)\)", line)
                if replicas:
                    pids = [int(pid) for pid in replicas.group(1).split(", ")]
                served = re.search(r"HTTP API on (https?://[\d.]+:\d+)", line)
                if served:
                    http_url = served.group(1)
                if len(addresses) == workers and (workers == 1 or replicas) and (http_url or not http):
                    break
            else:
                raise TimeoutError("server did not start")
            target = addresses[0] if workers == 1 else "ipv4:" + ",".join(addresses)
            server = ServerProcess(proc, target, pids)
            server.http_url = http_url
            for line in startup:
                server.count(line)
            # Keep reading its output: a full pipe would block the server's next log line.
            threading.Thread(target=_drain, args=(server,), daemon=True).start()
            _wait_loaded(addresses, deadline)
            yield server
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
