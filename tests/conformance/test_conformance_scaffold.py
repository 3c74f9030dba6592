"""``rnnserve new-plugin``: the skeleton installs, is discovered, and passes its own conformance tests."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rnnserve.cli import main
from rnnserve.plugin_api import API_VERSION


def test_new_plugin_is_installable_discovered_and_passes_its_conformance_tests(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["new-plugin", "demo-lm", "--dir", str(tmp_path)]) == 0
    root = tmp_path / "rnnserve-demo-lm"
    assert f"created {root}" in capsys.readouterr().out
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) == [
        "README.md", "pyproject.toml", "rnnserve_demo_lm/__init__.py", "rnnserve_demo_lm/backend.py",
        "rnnserve_demo_lm/plugin.py", "tests/test_demo_lm_conformance.py"]
    site = tmp_path / "site"  # a throwaway install location, put on PYTHONPATH below
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(site), str(root)], check=True, timeout=180, capture_output=True)
    env = {**os.environ, "PYTHONPATH": str(site), "RNNSERVE_PLUGINS": "demo-lm"}
    listed = subprocess.run([sys.executable, "-m", "rnnserve.cli", "plugins"], env=env, capture_output=True,
                            text=True, timeout=120, check=True).stdout
    assert f"demo-lm (rnnserve-demo-lm 0.1.0, needs plugin API {API_VERSION}): loaded" in listed  # the scaffold's
    assert "hooks: register_backends, register_models" in listed and "models: demo-lm" in listed
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=root, env=env,
                           capture_output=True, text=True, timeout=300)
    assert tests.returncode == 0, tests.stdout[-5000:] + tests.stderr[-2000:]
    assert re.search(r"\b1[0-9] passed\b", tests.stdout) and "skipped" not in tests.stdout, tests.stdout[-2000:]


def test_new_plugin_refuses_bad_names_and_taken_directories(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["new-plugin", "My_Plugin", "--dir", str(tmp_path)]) == 2
    assert "lower case letters" in capsys.readouterr().err
    assert main(["new-plugin", "rnnserve-twice", "--dir", str(tmp_path)]) == 0  # the prefix is not doubled
    assert (tmp_path / "rnnserve-twice" / "rnnserve_twice" / "plugin.py").is_file()
    assert main(["new-plugin", "twice", "--dir", str(tmp_path)]) == 2
    assert "already exists" in capsys.readouterr().err
