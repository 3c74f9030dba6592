"""Every shipped model loads and answers; a broken checkpoint fails loudly.

What happened before these tests (found for issue 15): no test served the shipped
checkpoints of austen-char-lstm, its int8 twin, en-de-gru or the writing assistant. A
checkpoint whose bytes changed made its model FAILED (manifest sha256 mismatch) while the
server still started, and the suite passed; a missing ``model.safetensors`` made the
plugin skip registering the model (``register_models`` checks the files exist), so it
silently vanished from ``rnnserve serve`` and the suite passed too. Here the default
config's model list must equal ``SHIPPED``, each model must be READY and answer one real
call, and a truncated copy of each checkpoint must fail to load with a reason that names
the file (the manifest's check, which every shipped checkpoint must have; without a
manifest, safetensors' own error fails the load but does not say which file).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rnnserve.host.manifest import read_manifest, verify_manifest
from rnnserve.host.plugins import PluginHost
from rnnserve.ops.config import ModelSpec, ServerConfig
from rnnserve.testing.hosts import plugin_host
from rnnserve.testing.server import running_server
from rnnserve_client import Client, errors

#: Every model a default `rnnserve serve` loads -> (backend, name of its checkpoint directory;
#: None: no weights of its own). A newly shipped model is added here.
SHIPPED: dict[str, tuple[str, str | None]] = {
    "austen-char-lstm": ("char-lstm", "austen-char-lstm"),
    "austen-char-lstm-int8": ("char-lstm", "austen-char-lstm"),
    "english-char-lstm": ("char-lstm", "english-char-lstm"),
    "english-char-lstm-int8": ("char-lstm", "english-char-lstm"),
    "en-de-gru": ("gru-seq2seq", "en-de-gru"),
    "writing-assistant": ("writing-assistant", None),
    "austen-writing-assistant": ("writing-assistant", None),
    "austen-jordan-lm": ("jordan-lm", "austen-jordan-lm"),  # the example plugin, as installed by scripts/bootstrap
}


def checkpoints(host: PluginHost) -> dict[Path, str]:
    """The shipped checkpoint directories, as registered (each once) -> the backend that reads it."""
    return {Path(spec.path).resolve(): spec.backend for spec in host.models if spec.path is not None}


def test_default_config_serves_exactly_the_shipped_models(shipped_host: PluginHost) -> None:
    failed = {p.name: p.reason for p in shipped_host.plugins if p.state != "loaded"}
    assert not failed, f"plugins failed to load (run ./scripts/bootstrap?): {failed}"
    registered = {spec.name: spec for spec in shipped_host.models}
    missing = sorted(set(SHIPPED) - set(registered))
    assert not missing, (
        f"shipped model(s) {missing} are not registered: a plugin registers its shipped model only when the "
        "checkpoint files exist, so a missing file (e.g. model.safetensors) drops the model from `rnnserve serve` "
        "without an error")
    unexpected = sorted(set(registered) - set(SHIPPED))
    assert not unexpected, f"new shipped model(s) {unexpected}: add them to SHIPPED (and a floor, if any)"
    for name, (backend, directory) in SHIPPED.items():
        spec = registered[name]
        assert (spec.backend, Path(spec.path).name if spec.path else None) == (backend, directory), spec


def test_shipped_checkpoints_have_a_manifest_that_matches(shipped_host: PluginHost) -> None:
    """The manifest is what turns a damaged file into a load error that names it (see below)."""
    directories = checkpoints(shipped_host)
    assert len(directories) == len({d for _, d in SHIPPED.values() if d}), directories
    for directory in directories:
        listed = read_manifest(directory)
        assert listed is not None, f"{directory} has no manifest.json: write one with `rnnserve manifest DIR`"
        assert {"config.json", "model.safetensors"} <= set(listed), (directory, sorted(listed))
        assert verify_manifest(directory), directory


def answer(client: Client, name: str) -> str:
    """One real call of the model's kind; returns what it answered."""
    kind = client.get_model(name).kind
    if kind == "language-model":
        result = client.generate(name, "It is a truth universally acknowledged", max_new_tokens=24, temperature=0)
        assert result.text.strip() and result.finish_reason in ("length", "end_of_text"), result
        scored = client.score(name, "She was not in the habit of walking out.")
        assert 0 < scored.bits_per_char < 8 and scored.logprobs, scored
        return f"{result.text!r}; {scored.bits_per_char:.3f} bits/char on a short sentence"
    if kind == "translator":
        (result,) = client.translate(name, "The weather is nice today.")
        assert result.text.strip() and result.text != "The weather is nice today.", result
        return repr(result.text)
    if kind == "assistant":
        words = [s.text for s in client.suggest(name, "It is a truth universally acknow", max_suggestions=3)]
        assert "acknowledged" in words, words
        return repr(words)
    raise AssertionError(f"{name}: no test call for kind {kind!r}")


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_model_is_ready_and_answers(shipped_client: Client, name: str) -> None:
    model = shipped_client.get_model(name)
    assert model.state == "ready", f"{name} is {model.state}: {model.reason}"
    assert model.parameter_count > 0 or SHIPPED[name][1] is None, model
    print(f"{name} ({model.kind}, {model.backend}): {answer(shipped_client, name)}")


def corrupt_copy(directory: Path, destination: Path, keep_manifest: bool) -> Path:
    """A copy of a checkpoint directory with model.safetensors cut to half its bytes."""
    shutil.copytree(directory, destination)
    weights = destination / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    if not keep_manifest:
        (destination / "manifest.json").unlink()
    return destination


def test_truncated_checkpoint_fails_to_load_naming_the_file(shipped_host: PluginHost, tmp_path: Path) -> None:
    specs = {}  # name -> (spec, whether the copy keeps the manifest)
    for directory, backend in checkpoints(shipped_host).items():
        for keep_manifest in (True, False):
            name = f"{directory.name}-{'manifest' if keep_manifest else 'bare'}"
            path = corrupt_copy(directory, tmp_path / name, keep_manifest)
            specs[name] = ModelSpec(name, backend, path=str(path)), keep_manifest
    host = plugin_host(*sorted({backend for backend, _ in SHIPPED.values()} - {"writing-assistant"}))
    config = ServerConfig(default_models=False, models=tuple(spec for spec, _ in specs.values()))
    with running_server(config, host) as server, Client(server.target, timeout=60) as client:
        models = {m.name: m for m in client.list_models()}
        for name, (_, keep_manifest) in specs.items():
            model = models[name]
            print(f"{name}: {model.state}: {model.reason}")
            assert model.state == "failed", f"{name} loaded from a truncated model.safetensors"
            if keep_manifest:  # as every shipped checkpoint has (test above)
                assert "model.safetensors does not match its sha256 in manifest.json" in model.reason, model.reason
            else:  # safetensors' own error, which does not name the file: the manifest is what names it
                assert "SafetensorError" in model.reason, model.reason
            assert str(tmp_path) not in model.reason  # the reason reaches clients: no server paths
        with pytest.raises(errors.FailedPrecondition, match=r"model\.safetensors does not match its sha256"):
            client.score("austen-char-lstm-manifest", "It is a truth")
        with pytest.raises(errors.FailedPrecondition, match=r"model\.safetensors does not match its sha256"):
            client.translate("en-de-gru-manifest", "The weather is nice today.")
