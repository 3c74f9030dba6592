"""Plugin discovery through entry points, the allowlist, and isolation of broken plugins."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rnnserve.host.plugins import load_plugins
from rnnserve.ops.config import ModelSpec, ServerConfig
from rnnserve.testing.server import running_server
from rnnserve_client import Client


def _install_fake_distribution(root: Path, name: str, version: str, entry_points: dict[str, str]) -> None:
    """Write a real .dist-info so importlib.metadata discovers the entry points."""
    info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = "\n".join(f"{k} = {v}" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[rnnserve]\n{lines}\n")


@pytest.fixture
def fake_plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _install_fake_distribution(tmp_path, "rnnserve-toy", "1.2.3", {"toy": "tests.support.toy_plugin"})
    _install_fake_distribution(tmp_path, "rnnserve-broken", "0.0.1", {"broken": "tests.support.broken_plugin"})
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("RNNSERVE_PLUGINS", raising=False)


def test_entry_points_are_discovered_with_their_distribution(fake_plugins: None) -> None:
    host = load_plugins()
    toy = host.plugin("toy")
    assert toy is not None and toy.state == "loaded"
    assert (toy.distribution, toy.version) == ("rnnserve-toy", "1.2.3")
    assert "toy-lm" in host.backends and toy.models == ["toy"]
    assert host.plugin("char-lstm") is not None  # the built-in plugin comes the same way


def test_a_plugin_failing_to_import_is_reported_and_the_rest_serve(fake_plugins: None) -> None:
    host = load_plugins()
    broken = host.plugin("broken")
    assert broken is not None and broken.state == "failed"
    assert "broken on purpose" in broken.reason
    with running_server(ServerConfig(default_models=False, models=(ModelSpec("t", "toy-lm"),)), host) as srv, \
            Client(srv.target, timeout=10) as client:
        assert client.generate("t", "the qu", temperature=0, max_new_tokens=3).text == "ick"


def test_allowlist_env_var_limits_what_loads(fake_plugins: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RNNSERVE_PLUGINS", "broken")
    host = load_plugins()
    assert host.plugin("toy").state == "not allowed"
    assert "toy-lm" not in host.backends
    monkeypatch.setenv("RNNSERVE_PLUGINS", "")
    assert all(p.state == "not allowed" for p in load_plugins().plugins)


def test_a_model_of_an_unknown_backend_fails_alone(toy_host) -> None:  # type: ignore[no-untyped-def]
    config = ServerConfig(models=(ModelSpec("ghost", "no-such-backend"),))
    with running_server(config, toy_host) as srv, Client(srv.target, timeout=10) as client:
        ghost = client.get_model("ghost")
        assert ghost.state == "failed" and "unknown backend 'no-such-backend'" in ghost.reason
        assert "toy-lm" in ghost.reason  # lists what is available
        assert client.get_model("toy").state == "ready"


def test_duplicate_backend_names_fail_the_second_plugin() -> None:
    from tests.support import toy_plugin

    class Again:
        register_backends = staticmethod(toy_plugin.register_backends)

    host = load_plugins(extra=[("toy", toy_plugin), ("again", Again())], discover=False)
    assert host.plugin("again").state == "failed" and "already registered" in host.plugin("again").reason


def test_rnnserve_plugins_lists_the_built_in_plugins_with_versions() -> None:
    out = subprocess.run([sys.executable, "-m", "rnnserve.cli", "plugins"], capture_output=True, text=True,
                         check=True, timeout=120).stdout
    assert out.startswith("rnnserve 0.1.0, plugin API 1.2\n")
    assert "char-lstm (rnnserve 0.1.0, needs plugin API 1.2): loaded" in out
    assert "backends: char-lstm" in out


@pytest.mark.parametrize(("required", "why"), [
    ("2.0", "needs plugin API 2.0; this rnnserve provides plugin API 1.2"),
    ("1.9", "needs plugin API 1.9; this rnnserve provides plugin API 1.2"),
    ("one", "PLUGIN_API_VERSION = 'one' is not a version"),
])
def test_a_plugin_needing_another_plugin_api_is_refused_with_the_reason(required: str, why: str) -> None:
    from tests.support import toy_plugin

    class Needs:
        PLUGIN_API_VERSION = required
        register_backends = staticmethod(toy_plugin.register_backends)

    host = load_plugins(extra=[("needs", Needs()), ("toy", toy_plugin)], discover=False)
    assert host.plugin("needs").state == "failed" and why in host.plugin("needs").reason
    assert host.plugin("toy").state == "loaded"  # the others still load


def test_a_plugin_on_the_current_plugin_api_loads() -> None:
    from rnnserve.plugin_api import API_VERSION
    from tests.support import toy_plugin

    class Current:
        PLUGIN_API_VERSION = API_VERSION
        register_backends = staticmethod(toy_plugin.register_backends)

    host = load_plugins(extra=[("current", Current())], discover=False)
    assert host.plugin("current").state == "loaded" and host.plugin("current").plugin_api == API_VERSION


def test_the_plugin_api_lists_what_it_exports_and_its_hook_modules_do_not_import_torch() -> None:
    """Every name in rnnserve.plugin_api.__all__ resolves; importing the API and the plugins' hook
    modules (what `rnnserve --help` loads) does not import torch; the built-in plugins and the
    example import nothing else from rnnserve but plugin_api, testing and training."""
    import re
    from pathlib import Path

    import rnnserve.plugin_api as api

    assert all(hasattr(api, name) for name in api.__all__)
    code = ("import sys, rnnserve.plugin_api, rnnserve_plugins.char_lstm.plugin, "
            "rnnserve_plugins.gru_translator.plugin, rnnserve_plugins.writing_assistant.plugin, "
            "rnnserve_jordan_lm.plugin; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr
    repo = Path(__file__).resolve().parents[1]
    sources = [*repo.joinpath("plugins").rglob("*.py"), *repo.joinpath("examples", "plugins").glob("*/rnnserve_*/*.py")]
    reached = {m for path in sources
               for m in re.findall(r"^\s*(?:from|import) (rnnserve(?:\.\w+)?)\b", path.read_text(), re.M)}
    assert reached <= {"rnnserve.plugin_api", "rnnserve.testing", "rnnserve.training"}, reached


def test_lazy_backend_imports_its_module_only_when_a_model_loads(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from rnnserve.plugin_api import lazy_backend

    (tmp_path / "lazy_probe_backend.py").write_text("def create(spec, context):\n    return ('made', spec, context)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "lazy_probe_backend", raising=False)
    factory = lazy_backend("lazy_probe_backend:create")
    assert "lazy_probe_backend" not in sys.modules  # registering the factory imports nothing
    assert factory("spec", "context") == ("made", "spec", "context")
    assert "lazy_probe_backend" in sys.modules
    for bad in ("lazy_probe_backend", ":create", "lazy_probe_backend:"):
        with pytest.raises(ValueError, match=r"package\.module:function"):
            lazy_backend(bad)
