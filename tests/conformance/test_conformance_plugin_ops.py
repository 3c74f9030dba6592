"""Plugin operations: hook validation naming the plugin and hook, hook-call tracing, the plugins listing."""

from __future__ import annotations

import logging
import os

import pytest

from rnnserve import hookimpl
from rnnserve.cli import main
from rnnserve.host.plugins import load_plugins
from tests.support import toy_plugin


class ArgumentTypo:
    @staticmethod
    @hookimpl
    def register_backends(regster) -> None:  # type: ignore[no-untyped-def]
        regster("never", lambda spec, context: None)


class HookNameTypo:
    @staticmethod
    @hookimpl
    def register_model(register) -> None:  # type: ignore[no-untyped-def]
        pass


class Unmarked:
    @staticmethod
    def register_backends(register) -> None:  # type: ignore[no-untyped-def]
        pass


@pytest.mark.parametrize(("plugin", "needles"), [
    (ArgumentTypo(), ["'typo'", "register_backends(regster)", "hookspec register_backends(register)", "regster"]),
    (HookNameTypo(), ["'typo'", "register_model is not an rnnserve hook", "did you mean 'register_models'"]),
    (Unmarked(), ["'typo'", "register_backends is not marked with @rnnserve.hookimpl"]),
])
def test_hook_mismatches_fail_that_plugin_naming_it_and_the_hook(plugin: object, needles: list[str]) -> None:
    host = load_plugins(extra=[("toy", toy_plugin), ("typo", plugin)], discover=False)
    typo = host.plugin("typo")
    assert typo is not None and typo.state == "failed" and typo.hooks == []
    for needle in needles:
        assert needle in typo.reason, (needle, typo.reason)
    assert "never" not in host.backends  # none of its hooks ran
    assert host.plugin("toy").state == "loaded" and "toy-lm" in host.backends


def test_trace_env_var_logs_every_hook_call(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("RNNSERVE_TRACE_PLUGINS", "1")
    with caplog.at_level(logging.INFO, logger="rnnserve.plugins.trace"):
        load_plugins(extra=[("toy", toy_plugin)], discover=False)
    lines = [r.getMessage() for r in caplog.records if r.name == "rnnserve.plugins.trace"]
    assert "hook register_backends(register) -> toy" in lines
    assert "hook register_models(register) -> toy" in lines
    assert any(line.startswith("hook register_backends -> toy returned") for line in lines)
    assert "plugin toy registered backend 'toy-lm'" in lines
    monkeypatch.delenv("RNNSERVE_TRACE_PLUGINS")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="rnnserve.plugins.trace"):
        load_plugins(extra=[("toy", toy_plugin)], discover=False)
    assert not [r for r in caplog.records if r.name == "rnnserve.plugins.trace"]


def test_plugins_lists_name_version_hooks_models_state_and_reason(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert ("char-lstm (rnnserve 0.1.0, needs plugin API 1.2): loaded\n"
            "    hooks: register_backends, register_commands, register_models") in out
    assert "jordan-lm (rnnserve-jordan-lm 0.1.0, needs plugin API 1.2): loaded" in out
    assert "    models: austen-jordan-lm\n    commands: train jordan-lm" in out


def test_the_test_guard_keeps_other_installed_plugins_out() -> None:
    allowed = set(os.environ["RNNSERVE_PLUGINS"].split(","))
    for plugin in load_plugins().plugins:
        assert plugin.state == ("loaded" if plugin.name in allowed else "not allowed"), plugin
