"""Channel setup: bearer token metadata, TLS, multi-address targets, message size limit."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import grpc
import pytest

from rnnserve_client import AsyncClient, Client, errors
from rnnserve_client.v1 import assistant_pb2, generation_pb2, models_pb2
from tests.client.fake_rnnserve import FakeServer, chunks


def _session_echo(requests, context):
    for _ in requests:
        yield assistant_pb2.SessionResponse(session_id="s1")


def test_bearer_token_is_sent_on_every_kind_of_call(fake: FakeServer) -> None:
    fake.on("ListModels", lambda r, c: models_pb2.ListModelsResponse())
    fake.on("GenerateStream", chunks(generation_pb2.GenerateStreamResponse(text="x")))
    fake.on("Session", _session_echo)
    with Client(fake.target, token="s3cret") as client:
        client.list_models()
        list(client.generate_stream("lm"))
        with client.session("as") as session:
            session.append("a")
    for method in ("ListModels", "GenerateStream", "Session"):
        assert fake.calls[method][0].metadata["authorization"] == "Bearer s3cret"


def test_no_token_no_authorization_header(fake: FakeServer) -> None:
    fake.on("ListModels", lambda r, c: models_pb2.ListModelsResponse())
    with Client(fake.target) as client:
        client.list_models()
    assert "authorization" not in fake.calls["ListModels"][0].metadata


def test_async_bearer_token(fake: FakeServer) -> None:
    fake.on("GetModel", lambda r, c: models_pb2.Model())
    fake.on("Session", _session_echo)

    async def main() -> None:
        async with AsyncClient(fake.target, token="t0k") as client:
            await client.get_model("lm")
            async with client.session("as"):
                pass

    asyncio.run(main())
    assert fake.calls["GetModel"][0].metadata["authorization"] == "Bearer t0k"
    assert fake.calls["Session"][0].metadata["authorization"] == "Bearer t0k"


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[bytes, bytes]:
    """A self-signed (key, certificate) pair for 127.0.0.1 and localhost."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )
    return key.read_bytes(), cert.read_bytes()


def test_tls_with_root_certificates(make_fake, certificate: tuple[bytes, bytes]) -> None:
    key, cert = certificate
    server = make_fake(grpc.ssl_server_credentials([(key, cert)]))
    server.on("GetModel", lambda r, c: models_pb2.Model(name="lm"))
    with Client(server.target, root_certificates=cert, token="t", timeout=5) as client:
        assert client.get_model("lm").name == "lm"
    with Client(server.target, timeout=1) as plaintext, pytest.raises(errors.Unavailable):
        plaintext.get_model("lm")


def test_credentials_and_root_certificates_are_exclusive() -> None:
    with pytest.raises(ValueError, match="not both"):
        Client("127.0.0.1:1", credentials=grpc.ssl_channel_credentials(), root_certificates=b"pem")


def test_multi_address_target_is_round_robin(make_fake) -> None:
    first, second = make_fake(), make_fake()
    for server in (first, second):
        server.on("GetModel", lambda r, c: models_pb2.Model())
    target = f"ipv4:127.0.0.1:{first.port},127.0.0.1:{second.port}"
    with Client(target, timeout=5) as client:
        # Both connect within a few calls; pick_first would send every call to one address.
        for _ in range(200):
            client.get_model("lm")
            if min(len(first.calls["GetModel"]), len(second.calls["GetModel"])) >= 5:
                break
    assert len(first.calls["GetModel"]) >= 5
    assert len(second.calls["GetModel"]) >= 5


def test_dns_target(fake: FakeServer) -> None:
    fake.on("GetModel", lambda r, c: models_pb2.Model(name="lm"))
    with Client(f"dns:///127.0.0.1:{fake.port}", timeout=5) as client:
        assert client.get_model("lm").name == "lm"


def test_max_message_bytes_limits_responses(fake: FakeServer) -> None:
    fake.on("GetModel", lambda r, c: models_pb2.Model(name="lm", reason="x" * 5000))
    with Client(fake.target, max_message_bytes=1000) as client, pytest.raises(errors.ResourceExhausted):
        client.get_model("lm")
    with Client(fake.target, max_message_bytes=10_000) as client:
        assert len(client.get_model("lm").reason) == 5000
    assert len(fake.calls["GetModel"]) == 2
