"""Security defaults: bearer-token auth, TLS and mutual TLS with real certificates, the
client CLI's --token-file/--tls-ca, reflection off, no pickle in the load path, no RPC
that takes a path or URL, and no server paths in what clients see.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from rnnserve.cli import main
from rnnserve.edge.app import create_server
from rnnserve.edge.auth import TokenChecker, is_loopback
from rnnserve.edge.errors import ConfigurationError, redact_paths, status_for
from rnnserve.host.plugins import PluginHost
from rnnserve.ops.config import ModelSpec, ServerConfig, load_config
from rnnserve.testing.server import ServerThread, running_server
from rnnserve_client import Client, errors
from rnnserve_client.v1 import assistant_pb2, generation_pb2, models_pb2, translation_pb2
from tests.reliability.support import METHODS, SERVING, Certificates, health, make_certificates, raw_call

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "s3cret-Token_0123456789"
MODELS = (ModelSpec("assist", "toy-assistant"),)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))


def _reflect(channel: grpc.Channel, metadata: tuple[tuple[str, str], ...] | None = None) -> list[str]:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    responses = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
                                          timeout=5, metadata=metadata)
    return [s.name for s in next(responses).list_services_response.service]


def _build(config: ServerConfig, host: PluginHost) -> None:
    """Build (and drop) a server: configuration errors surface here, before anything binds or starts."""

    async def build() -> None:
        await create_server("127.0.0.1:0", config, host).server.stop(None)

    asyncio.run(build())


# -- bearer token -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def auth_server(toy_host: PluginHost) -> Iterator[ServerThread]:
    with running_server(ServerConfig(models=MODELS, auth_token=TOKEN), toy_host) as srv:
        yield srv


PAYLOADS = {
    "/rnnserve.v1.Generation/Generate": generation_pb2.GenerateRequest(model="toy", max_new_tokens=2),
    "/rnnserve.v1.Generation/GenerateStream": generation_pb2.GenerateRequest(model="toy", max_new_tokens=2),
    "/rnnserve.v1.Generation/Score": generation_pb2.ScoreRequest(model="toy", text="the"),
    "/rnnserve.v1.Translation/Translate": translation_pb2.TranslateRequest(model="x", texts=["a"]),
    "/rnnserve.v1.Assistant/Suggest": assistant_pb2.SuggestRequest(model="assist", text="Eli"),
    "/rnnserve.v1.Assistant/Session": assistant_pb2.SessionRequest(open=assistant_pb2.SessionOpen(model="assist")),
    "/rnnserve.v1.Models/ListModels": models_pb2.ListModelsRequest(),
    "/rnnserve.v1.Models/GetModel": models_pb2.GetModelRequest(name="toy"),
}


@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize("authorization", [None, "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer "])
def test_every_rpc_needs_the_token(auth_server: ServerThread, method: str, authorization: str | None) -> None:
    metadata = (("authorization", authorization),) if authorization else ()
    with grpc.insecure_channel(auth_server.target) as channel:
        outcome = raw_call(channel, method, PAYLOADS[method].SerializeToString(), metadata=metadata)
    assert outcome.code == grpc.StatusCode.UNAUTHENTICATED
    assert TOKEN not in outcome.details and outcome.trailing.get("x-request-id")


@pytest.mark.parametrize("method", sorted(METHODS))
def test_the_right_token_is_accepted(auth_server: ServerThread, method: str) -> None:
    with grpc.insecure_channel(auth_server.target) as channel:
        outcome = raw_call(channel, method, PAYLOADS[method].SerializeToString(),
                           metadata=(("authorization", f"bearer {TOKEN}"),))
    assert outcome.code in (grpc.StatusCode.OK, grpc.StatusCode.NOT_FOUND), outcome  # NOT_FOUND: Translate "x"


def test_health_needs_no_token_but_reflection_does(auth_server: ServerThread) -> None:
    assert health(auth_server.target) == SERVING
    with grpc.insecure_channel(auth_server.target) as channel:
        with pytest.raises(grpc.RpcError) as info:
            _reflect(channel)
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "rnnserve.v1.Generation" in _reflect(channel, (("authorization", f"Bearer {TOKEN}"),))


def test_client_and_cli_send_the_token(auth_server: ServerThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    with Client(auth_server.target, token=TOKEN, timeout=10) as client:
        assert client.suggest("assist", "Eli")
    with Client(auth_server.target, timeout=10) as client, pytest.raises(errors.Unauthenticated):
        client.list_models()
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    assert main(["models", "--target", auth_server.target, "--token-file", str(token_file)]) == 0
    assert "assist" in capsys.readouterr().out
    assert main(["models", "--target", auth_server.target]) == 1
    assert "UNAUTHENTICATED" in capsys.readouterr().err
    monkeypatch.setenv("RNNSERVE_TOKEN", TOKEN)
    assert main(["suggest", "--target", auth_server.target, "assist", "Eli"]) == 0
    assert "Elizabeth" in capsys.readouterr().out


def test_token_checker() -> None:
    checker = TokenChecker("abc")
    assert checker.check((("authorization", "Bearer abc"),))
    assert checker.check((("authorization", "bearer  abc "),))
    assert not checker.check((("authorization", "Bearer abd"),))
    assert not checker.check((("authorization", "abc"),))
    assert not checker.check((("x-other", "Bearer abc"),))
    assert not checker.check(None)


def test_token_file_config(tmp_path: Path, toy_host: PluginHost) -> None:
    (tmp_path / "token").write_text("  from-file  \n")
    (tmp_path / "rnnserve.toml").write_text('[server]\nauth_token_file = "token"\n')
    config = load_config(tmp_path / "rnnserve.toml").replace(models=MODELS, default_models=False)
    with running_server(config, toy_host) as srv:
        with Client(srv.target, token="from-file", timeout=10) as client:
            assert client.list_models()
        with Client(srv.target, token="nope", timeout=10) as client, pytest.raises(errors.Unauthenticated):
            client.list_models()
    (tmp_path / "bad.toml").write_text('[server]\nauth_token = "inline"\n')
    with pytest.raises(ConfigurationError, match="auth_token_file"):
        load_config(tmp_path / "bad.toml")
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigurationError, match="empty"):
        _build(ServerConfig(auth_token_file=str(tmp_path / "empty")), toy_host)


# -- TLS and mutual TLS ---------------------------------------------------------------------------

def test_tls(certs: Certificates, toy_host: PluginHost, capsys: pytest.CaptureFixture[str]) -> None:
    config = ServerConfig(models=MODELS, tls_cert=str(certs.server_cert), tls_key=str(certs.server_key))
    with running_server(config, toy_host) as srv:
        assert srv.app.tls
        ca = certs.ca.read_bytes()
        with Client(srv.target, root_certificates=ca, timeout=10) as client:
            assert client.suggest("assist", "Eli")
        assert health(srv.target, credentials=grpc.ssl_channel_credentials(ca)) == SERVING
        with Client(srv.target, timeout=2) as plaintext, pytest.raises(errors.Unavailable):
            plaintext.list_models()
        with Client(srv.target, root_certificates=certs.other_ca.read_bytes(), timeout=2) as wrong_ca, \
                pytest.raises(errors.Unavailable):
            wrong_ca.list_models()
        assert main(["models", "--target", srv.target, "--tls-ca", str(certs.ca)]) == 0
        assert "assist" in capsys.readouterr().out


def test_mutual_tls_with_a_token(certs: Certificates, toy_host: PluginHost,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    config = ServerConfig(models=MODELS, tls_cert=str(certs.server_cert), tls_key=str(certs.server_key),
                          tls_client_ca=str(certs.ca), auth_token=TOKEN)
    with running_server(config, toy_host) as srv:
        ca, key, cert = (p.read_bytes() for p in (certs.ca, certs.client_key, certs.client_cert))
        mutual = grpc.ssl_channel_credentials(ca, key, cert)
        with Client(srv.target, credentials=mutual, token=TOKEN, timeout=10) as client:
            assert client.suggest("assist", "Eli")
        with Client(srv.target, credentials=mutual, timeout=10) as client, pytest.raises(errors.Unauthenticated):
            client.list_models()  # a certificate is not a token
        with Client(srv.target, root_certificates=ca, token=TOKEN, timeout=2) as client, \
                pytest.raises(errors.Unavailable):
            client.list_models()  # no client certificate: the handshake fails
        args = ["models", "--target", srv.target, "--tls-ca", str(certs.ca), "--tls-cert", str(certs.client_cert),
                "--tls-key", str(certs.client_key)]
        os.environ["RNNSERVE_TOKEN"] = TOKEN
        try:
            assert main(args) == 0
        finally:
            del os.environ["RNNSERVE_TOKEN"]
        assert "assist" in capsys.readouterr().out
        assert main(args[:-2]) == 2  # --tls-cert without --tls-key
        assert "go together" in capsys.readouterr().err


def test_tls_config_errors(certs: Certificates, toy_host: PluginHost) -> None:
    for config, match in (
        (ServerConfig(tls_cert=str(certs.server_cert)), "both tls_cert and tls_key"),
        (ServerConfig(tls_client_ca=str(certs.ca)), "tls_client_ca needs"),
        (ServerConfig(tls_cert="/nonexistent/cert.pem", tls_key=str(certs.server_key)), "cannot read"),
    ):
        with pytest.raises(ConfigurationError, match=match):
            _build(config, toy_host)


def test_serve_process_with_tls_token_json_logs_and_no_reflection(certs: Certificates, tmp_path: Path) -> None:
    """The ``serve`` flags end to end in a real process (no plugins: starts in seconds)."""
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "RNNSERVE_PLUGINS": ""}
    proc = subprocess.Popen(
        [sys.executable, "-m", "rnnserve.cli", "serve", "--port", "0", "--http-port", "0",
         "--tls-cert", str(certs.server_cert), "--tls-key", str(certs.server_key), "--auth-token-file",
         str(token_file), "--no-reflection", "--log-format", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        assert match, line
        target = f"127.0.0.1:{match.group(1)}"
        ca = certs.ca.read_bytes()
        with Client(target, root_certificates=ca, token=TOKEN, timeout=10) as client:
            assert client.list_models() == []
        with Client(target, root_certificates=ca, timeout=10) as client, pytest.raises(errors.Unauthenticated):
            client.list_models()
        with grpc.secure_channel(target, grpc.ssl_channel_credentials(ca)) as channel, \
                pytest.raises(grpc.RpcError) as info:
            _reflect(channel, (("authorization", f"Bearer {TOKEN}"),))
        assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=30)
    records = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    assert records, stderr
    serving = [r for r in records if r["message"].startswith("serving on")]
    assert serving and "TLS" in serving[0]["message"] and "bearer-token auth" in serving[0]["message"]
    assert "reflection off" in serving[0]["message"]
    assert TOKEN not in stderr


def test_reflection_can_be_turned_off(toy_host: PluginHost) -> None:
    with running_server(ServerConfig(models=MODELS, reflection=False), toy_host) as srv, \
            grpc.insecure_channel(srv.target) as channel:
        with pytest.raises(grpc.RpcError) as info:
            _reflect(channel)
        assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
        assert health(srv.target) == SERVING


def test_binding_defaults_to_loopback() -> None:
    assert ServerConfig().host == "127.0.0.1"
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("") and not is_loopback("example.com")


# -- what the code base must never do -------------------------------------------------------------

UNSAFE_LOADING = re.compile(
    r"\btorch\.load\s*\(|\bpickle\.loads?\s*\(|^\s*import\s+(c?pickle|dill|joblib|shelve)\b"
    r"|^\s*from\s+(c?pickle|dill|joblib|shelve)\s+import|allow_pickle\s*=\s*True|\bmarshal\.loads?\s*\(",
    re.MULTILINE)


def test_no_pickle_in_the_load_path() -> None:
    """Models load from safetensors + JSON (+ SentencePiece) only: nothing that unpickles."""
    files = sorted((ROOT / "server").rglob("*.py")) + sorted((ROOT / "plugins").rglob("*.py"))
    assert len(files) > 20
    offenders = [f"{path.relative_to(ROOT)}:{text[: m.start()].count(chr(10)) + 1}: {m.group(0).strip()}"
                 for path in files for text in [path.read_text()] for m in UNSAFE_LOADING.finditer(text)]
    assert offenders == []
    assert UNSAFE_LOADING.search("state = torch.load(path)") and UNSAFE_LOADING.search("import pickle")


def test_no_rpc_loads_models_from_paths_or_urls() -> None:
    """The API is fixed: models come from the server's config and plugins, never from a request."""
    modules = (assistant_pb2, generation_pb2, models_pb2, translation_pb2)
    methods = {f"/{s.full_name}/{meth.name}" for mod in modules
               for s in mod.DESCRIPTOR.services_by_name.values() for meth in s.methods}
    assert methods == set(METHODS)  # a new RPC needs a deliberate review (and a battery entry)
    suspicious = re.compile(r"path|url|uri|file|dir|location|checkpoint|weights|source_model", re.IGNORECASE)

    def fields(descriptor, seen):  # type: ignore[no-untyped-def]
        if descriptor.full_name in seen:
            return
        seen.add(descriptor.full_name)
        for field in descriptor.fields:
            yield descriptor.full_name, field.name
            if field.message_type is not None:
                yield from fields(field.message_type, seen)

    requests = [meth.input_type for mod in modules for s in mod.DESCRIPTOR.services_by_name.values()
                for meth in s.methods]
    names = [f"{msg}.{name}" for req in requests for msg, name in fields(req, set())]
    assert names and not [n for n in names if suspicious.search(n.rsplit(".", 1)[1])]


def test_client_messages_never_carry_paths_or_tracebacks() -> None:
    code, message = status_for(FileNotFoundError(2, "No such file or directory", "/home/op/models/x/config.json"))
    assert code == grpc.StatusCode.INTERNAL and "/home" not in message and "Traceback" not in message
    from rnnserve.edge.errors import ModelFailed

    code, message = status_for(ModelFailed("model 'm' failed to load: FileNotFoundError: [Errno 2] No such file "
                                           "or directory: '/home/op/my models/m/config.json'"))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "'config.json'" in message and "/home" not in message
    assert len(status_for(ModelFailed("x" * 5000))[1]) <= 1000
    assert redact_paths("at /a/b/c.py and C:\\x\\y.bin; 3/4, http://h/p, ~/m/w.st") == \
        "at c.py and y.bin; 3/4, http://h/p, w.st"
