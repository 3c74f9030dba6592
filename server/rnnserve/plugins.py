"""Plugin discovery and the registries the hooks fill.

Plugins are found only through entry points of the group ``rnnserve`` (the built-in
backends use exactly that path). ``RNNSERVE_PLUGINS`` is an allowlist of entry-point
names (comma separated; empty means none). A plugin that fails to import, or whose hook
raises, is recorded as failed with the reason; every other plugin still loads.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pluggy

from rnnserve import hookspecs
from rnnserve.backends import BackendFactory
from rnnserve.commands import GROUPS, Command
from rnnserve.config import ModelSpec
from rnnserve.errors import PluginError

log = logging.getLogger("rnnserve.plugins")

ENTRY_POINT_GROUP = "rnnserve"
ALLOWLIST_ENV = "RNNSERVE_PLUGINS"


@dataclass
class PluginInfo:
    """One plugin as ``rnnserve plugins`` reports it."""

    name: str
    distribution: str
    version: str
    state: str = "loaded"  # loaded | failed | not allowed
    reason: str = ""
    backends: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)


@dataclass
class PluginHost:
    """What the loaded plugins registered: backends, shipped models and CLI commands."""

    plugins: list[PluginInfo]
    backends: dict[str, tuple[BackendFactory, PluginInfo]]
    models: list[ModelSpec]
    commands: list[Command]

    def plugin(self, name: str) -> PluginInfo | None:
        return next((p for p in self.plugins if p.name == name), None)


def make_plugin_manager() -> pluggy.PluginManager:
    """A fresh plugin manager with rnnserve's hookspecs (one per host; tests get their own)."""
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    return pm


def _allowlist() -> set[str] | None:
    raw = os.environ.get(ALLOWLIST_ENV)
    if raw is None:
        return None
    return {name.strip() for name in raw.split(",") if name.strip()}


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def load_plugins(
    extra: Iterable[tuple[str, Any]] = (),
    *,
    discover: bool = True,
    eps: Iterable[EntryPoint] | None = None,
) -> PluginHost:
    """Discover and register plugins, then collect what their hooks register.

    Args:
        extra: (name, module-or-object) plugins registered directly, e.g. by tests.
        discover: load entry points of the ``rnnserve`` group (tests may turn this off).
        eps: entry points to use instead of the installed ones (tests).
    """
    pm = make_plugin_manager()
    infos: dict[str, PluginInfo] = {}
    allow = _allowlist()
    if discover:
        for ep in eps if eps is not None else entry_points(group=ENTRY_POINT_GROUP):
            dist = ep.dist.name if ep.dist else "unknown"
            version = ep.dist.version if ep.dist else "unknown"
            info = PluginInfo(ep.name, dist, version)
            infos[ep.name] = info
            if allow is not None and ep.name not in allow:
                info.state, info.reason = "not allowed", f"not in {ALLOWLIST_ENV}"
                continue
            try:
                pm.register(ep.load(), name=ep.name)
            except Exception as exc:
                info.state, info.reason = "failed", f"import failed: {_describe(exc)}"
                log.warning("plugin %s failed to load: %s", ep.name, info.reason)
    for name, plugin in extra:
        infos[name] = PluginInfo(name, "local", "0")
        pm.register(plugin, name=name)

    backends: dict[str, tuple[BackendFactory, PluginInfo]] = {}
    models: list[ModelSpec] = []
    commands: list[Command] = []

    def call(hook: str, register: Any, info: PluginInfo, impl: Any) -> None:
        try:
            impl.function(register=register)
        except Exception as exc:
            info.state, info.reason = "failed", f"{hook} failed: {_describe(exc)}"
            log.warning("plugin %s: %s", info.name, info.reason)

    for impl in pm.hook.register_backends.get_hookimpls():
        info = infos[impl.plugin_name]

        def register_backend(name: str, factory: BackendFactory, info: PluginInfo = info) -> None:
            if name in backends:
                raise PluginError(f"backend {name!r} is already registered by {backends[name][1].name}")
            backends[name] = (factory, info)
            info.backends.append(name)

        call("register_backends", register_backend, info, impl)

    for impl in pm.hook.register_models.get_hookimpls():
        info = infos[impl.plugin_name]

        def register_model(spec: ModelSpec, info: PluginInfo = info) -> None:
            models.append(ModelSpec(**{**spec.__dict__, "source": info.name}))
            info.models.append(spec.name)

        call("register_models", register_model, info, impl)

    for impl in pm.hook.register_commands.get_hookimpls():
        info = infos[impl.plugin_name]

        def register_command(command: Command, info: PluginInfo = info) -> None:
            if command.group is not None and command.group not in GROUPS:
                raise PluginError(f"command group {command.group!r} unknown; valid: {sorted(GROUPS)}")
            commands.append(command)
            info.commands.append(" ".join(filter(None, [command.group, command.name])))

        call("register_commands", register_command, info, impl)

    return PluginHost(sorted(infos.values(), key=lambda p: p.name), backends, models, commands)
