"""Model-directory manifests: sha256 verification before a backend reads a file, the
``rnnserve manifest`` command, and FAILED models (with the reason) while the rest serve.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from rnnserve.cli import main
from rnnserve.host.manifest import MANIFEST_FILE, ManifestError, verify_manifest, write_manifest
from rnnserve.host.plugins import PluginHost
from rnnserve.ops.config import ModelSpec, ServerConfig
from rnnserve.testing.server import running_server
from rnnserve_client import Client, errors


def _model_dir(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text('{"hidden": 8}')
    (path / "model.safetensors").write_bytes(bytes(range(256)) * 10)
    (path / "sub").mkdir()
    (path / "sub" / "vocab.json").write_text('["a"]')
    (path / ".hidden").write_text("ignored")
    return path


def test_write_and_verify(tmp_path: Path) -> None:
    directory = _model_dir(tmp_path / "m")
    manifest = json.loads(write_manifest(directory).read_text())
    assert sorted(manifest["files"]) == ["config.json", "model.safetensors", "sub/vocab.json"]
    assert verify_manifest(directory) is True
    assert verify_manifest(tmp_path) is False  # no manifest
    (directory / "model.safetensors").write_bytes(b"tampered")
    with pytest.raises(ManifestError, match=r"model\.safetensors does not match"):
        verify_manifest(directory)
    (directory / "model.safetensors").unlink()
    with pytest.raises(ManifestError, match=r"model\.safetensors is missing"):
        verify_manifest(directory)


@pytest.mark.parametrize(("content", "match"), [
    ("not json", "not readable JSON"),
    ("[]", "no \"files\""),
    ('{"files": {}}', "no \"files\""),
    ('{"files": {"config.json": "abc"}}', "64 hex digits"),
    ('{"files": {"../escape": "' + "0" * 64 + '"}}', "not a plain path"),
    ('{"files": {"/etc/passwd": "' + "0" * 64 + '"}}', "not a plain path"),
])
def test_malformed_manifests_are_errors(tmp_path: Path, content: str, match: str) -> None:
    (tmp_path / MANIFEST_FILE).write_text(content)
    with pytest.raises(ManifestError, match=match):
        verify_manifest(tmp_path)


def test_symlink_out_of_the_directory_is_refused(tmp_path: Path) -> None:
    directory = _model_dir(tmp_path / "m")
    (tmp_path / "outside").write_text("secret")
    (directory / "link").symlink_to(tmp_path / "outside")
    write_manifest(directory)
    with pytest.raises(ManifestError, match="outside the model directory"):
        verify_manifest(directory)


def test_registry_verifies_before_loading(tmp_path: Path, toy_host: PluginHost,
                                          caplog: pytest.LogCaptureFixture) -> None:
    good = _model_dir(tmp_path / "good")
    write_manifest(good)
    tampered = _model_dir(tmp_path / "tampered")
    write_manifest(tampered)
    (tampered / "model.safetensors").write_bytes(b"evil")
    unlisted = _model_dir(tmp_path / "unlisted")
    models = tuple(ModelSpec(name, "toy-lm", path=str(tmp_path / name)) for name in ("good", "tampered", "unlisted"))
    with caplog.at_level(logging.WARNING, "rnnserve.registry"), \
            running_server(ServerConfig(models=models), toy_host) as srv, Client(srv.target, timeout=10) as client:
        states = {m.name: m for m in client.list_models()}
        assert states["good"].state == "ready"
        assert states["unlisted"].state == "ready"  # no manifest: loads, with a warning
        assert states["tampered"].state == "failed"
        reason = states["tampered"].reason
        assert "manifest check failed: model.safetensors does not match" in reason and str(tmp_path) not in reason
        with pytest.raises(errors.FailedPrecondition, match="manifest check failed"):
            client.generate("tampered", "x", max_new_tokens=1)
        assert client.generate("good", "the qu", temperature=0, max_new_tokens=3).text == "ick"
    assert any("has no manifest.json" in r.getMessage() for r in caplog.records)
    assert str(unlisted) in caplog.text  # the operator's log names the directory


def test_require_manifest(tmp_path: Path, toy_host: PluginHost) -> None:
    unlisted = _model_dir(tmp_path / "unlisted")
    config = ServerConfig(models=(ModelSpec("unlisted", "toy-lm", path=str(unlisted)),), require_manifest=True)
    with running_server(config, toy_host) as srv, Client(srv.target, timeout=10) as client:
        model = client.get_model("unlisted")
        assert model.state == "failed" and "require_manifest" in model.reason
        assert client.get_model("toy").state == "ready"


def test_manifest_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = _model_dir(tmp_path / "m")
    assert main(["manifest", str(directory)]) == 0
    assert "wrote" in capsys.readouterr().out
    assert main(["manifest", "--check", str(directory)]) == 0
    (directory / "config.json").write_text("{}")
    assert main(["manifest", "--check", str(directory)]) == 1
    assert "config.json does not match" in capsys.readouterr().err
    assert main(["manifest", "--check", str(tmp_path)]) == 1  # no manifest there
    assert main(["manifest", str(tmp_path / "missing")]) == 1
