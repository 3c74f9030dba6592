"""The ``rnnserve`` command line: client commands against a running server, and ``serve`` as a process."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from rnnserve.cli import main
from rnnserve.testing.server import ServerThread


def test_generate_streams_to_the_terminal(server: ServerThread, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", "--target", server.target, "toy", "the qu", "--temperature", "0",
                 "--max-new-tokens", "9"]) == 0
    out = capsys.readouterr()
    assert out.out == "the quick brown\n"
    assert "finish: length" in out.err


def test_models_lists_states(server: ServerThread, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--target", server.target]) == 0
    out = capsys.readouterr().out
    assert re.search(r"toy\s+language-model\s+toy-lm\s+ready", out)
    assert re.search(r"toy-broken\s+\S*\s*toy-broken\s+failed", out)


def test_translate_and_suggest(server: ServerThread, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["translate", "--target", server.target, "toy-tr", "good day", "--n-best", "2"]) == 0
    assert "GOOD DAY !" in capsys.readouterr().out
    assert main(["suggest", "--target", server.target, "toy-assist", "Eli"]) == 0
    assert "Elizabeth" in capsys.readouterr().out


def test_client_errors_become_a_message_and_exit_status(server: ServerThread,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", "--target", server.target, "nope", "x"]) == 1
    assert "NOT_FOUND" in capsys.readouterr().err


def test_serve_process_reports_listening_serves_health_and_drains_on_sigterm() -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "rnnserve.cli", "serve", "--port", "0", "--http-port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        deadline = time.time() + 120
        line = ""
        while time.time() < deadline:
            line = proc.stdout.readline()
            if "listening on" in line or not line:
                break
        match = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        assert match, line
        with grpc.insecure_channel(f"127.0.0.1:{match.group(1)}") as channel:
            status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10).status
        assert status == health_pb2.HealthCheckResponse.SERVING
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert "draining" in proc.stdout.read()
    finally:
        proc.kill()


def test_write_shows_suggestions_live_and_tab_accepts(server: ServerThread) -> None:
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "rnnserve.cli", "write", "--target", server.target, "toy-assist"],
                            stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    try:
        output = b""

        def read_until(needle: bytes) -> None:
            nonlocal output
            deadline = time.time() + 30
            while needle not in output and time.time() < deadline:
                output += os.read(master, 4096)
            assert needle in output, output[-500:]

        read_until(b"[1] elizabeth")
        os.write(master, b"th")
        read_until(b"[1] the")
        # "ther" + Tab accepts "there", then Ctrl-D: the UI reads one key at a time, in order
        # (cbreak mode: Ctrl-D is a key like the others), so nothing needs waiting for in between
        os.write(master, b"er\t\x04")
        read_until(b"there\r\n")
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
        os.close(master)


def test_translate_writes_the_attention_heat_map(server: ServerThread, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    png = tmp_path / "attention.png"
    assert main(["translate", "--target", server.target, "toy-tr", "good day", "--attention", str(png)]) == 0
    assert png.read_bytes().startswith(b"\x89PNG")
    assert "GOOD DAY" in capsys.readouterr().out


def test_a_port_in_use_is_a_one_line_error(toy_host) -> None:  # type: ignore[no-untyped-def]
    """grpcio raises RuntimeError for a port it cannot bind and http.server OSError: both become
    ConfigurationError, which ``rnnserve serve`` prints as one line (exit status 2)."""
    import asyncio
    import socket

    from rnnserve.edge.app import create_server
    from rnnserve.edge.errors import ConfigurationError
    from rnnserve.ops.config import ServerConfig

    async def build(address: str, config: ServerConfig) -> None:
        create_server(address, config, toy_host)

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigurationError, match=rf"^cannot listen on 127\.0\.0\.1:{port}: the port is in use"):
            asyncio.run(build(f"127.0.0.1:{port}", ServerConfig(models=())))
        with pytest.raises(ConfigurationError, match=rf"^cannot serve metrics on 127\.0\.0\.1:{port}: "):
            asyncio.run(build("127.0.0.1:0", ServerConfig(models=(), metrics_port=port)))


def test_generate_without_a_server_prints_the_error_alone(capsys: pytest.CaptureFixture[str]) -> None:
    """The prompt is echoed once the server answers, so a refused connection is one clean line."""
    assert main(["generate", "--target", "127.0.0.1:1", "--timeout", "5", "toy", "Hi"]) == 1
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err.startswith("rnnserve: UNAVAILABLE: ")
