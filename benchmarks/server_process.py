"""A real ``rnnserve serve`` process for benchmarks, so the load generator never shares its GIL."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class ServerProcess:
    def __init__(self, proc: subprocess.Popen[str], port: int) -> None:
        self.proc = proc
        self.port = port
        self.target = f"127.0.0.1:{port}"

    def cpu_seconds(self) -> float:
        """User + system CPU seconds the server process has used so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_loaded(target: str, deadline: float) -> None:
    """Models load in the background after the port opens: wait until none is LOADING."""
    from rnnserve_client import Client

    with Client(target, timeout=10) as client:
        while any(m.state == "loading" for m in client.list_models()):
            if time.time() > deadline:
                raise TimeoutError("models still loading")
            time.sleep(0.2)


def _drain(proc: subprocess.Popen[str]) -> None:
    """Pass the server's log through to stderr once it has started (warnings stay visible)."""
    assert proc.stdout is not None
    for line in proc.stdout:
        sys.stderr.write(f"[server] {line}")


@contextmanager
def serve(config_text: str, timeout: float = 600) -> Iterator[ServerProcess]:
    """Start ``rnnserve serve`` on a free port with the given TOML config; stop it afterwards."""
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "rnnserve.toml"
        config.write_text(config_text)
        proc = subprocess.Popen([sys.executable, "-m", "rnnserve.cli", "serve", "--config", str(config),
                                 "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            deadline = time.time() + timeout
            assert proc.stdout is not None
            while time.time() < deadline:
                line = proc.stdout.readline()
                if not line:
                    raise RuntimeError(f"server exited with {proc.wait()}")
                match = re.search(r"listening on [\d.]+:(\d+)", line)
                if match:
                    break
            else:
                raise TimeoutError("server did not start")
            server = ServerProcess(proc, int(match.group(1)))
            # Keep reading its output: a full pipe would block the server's next log line.
            threading.Thread(target=_drain, args=(proc,), daemon=True).start()
            _wait_loaded(server.target, deadline)
            yield server
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
