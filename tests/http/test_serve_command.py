"""``rnnserve serve --http-port N``: the HTTP API in the same process, announced, drained on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

from tests.http.conftest import request


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_serve_listens_for_http_beside_grpc() -> None:
    port = _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "RNNSERVE_PLUGINS": ""}
    proc = subprocess.Popen([sys.executable, "-m", "rnnserve.cli", "serve", "--port", "0", "--http-port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        assert "listening on 127.0.0.1:" in proc.stdout.readline()
        assert proc.stdout.readline().startswith(f"HTTP API on http://127.0.0.1:{port} ")
        url = f"http://127.0.0.1:{port}"
        assert request(url + "/health").json() == {"status": "SERVING"}
        assert request(url + "/v1/models").json() == {"object": "list", "data": []}
        missing = request(url + "/v1/completions", {"model": "x", "prompt": "y"})
        assert missing.status == 404 and "this server has no models" in missing.json()["error"]["message"]
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr
