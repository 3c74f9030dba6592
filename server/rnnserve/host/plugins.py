"""Plugin discovery and the registries the hooks fill.

Plugins are found only through entry points of the group ``rnnserve`` (the built-in
backends use exactly that path). ``RNNSERVE_PLUGINS`` is an allowlist of entry-point
names (comma separated; empty means none). A plugin that fails to import, whose hooks do
not match rnnserve's hookspecs, or whose hook raises, is recorded as failed with the
reason; every other plugin still loads. So is a plugin that states a plugin API version
(``PLUGIN_API_VERSION``, see ``rnnserve.plugin_api``) this host does not provide.
``RNNSERVE_TRACE_PLUGINS=1`` logs every hook call (logger ``rnnserve.plugins.trace``).
"""

from __future__ import annotations

import difflib
import inspect
import logging
import os
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pluggy

from rnnserve.backends import BackendFactory
from rnnserve.edge.errors import PluginError
from rnnserve.host import hookspecs
from rnnserve.host.commands import GROUPS, Command
from rnnserve.host.model_spec import ModelSpec
from rnnserve.plugin_api import REQUIRED_VERSION_ATTRIBUTE, api_mismatch

log = logging.getLogger("rnnserve.plugins")
trace_log = logging.getLogger("rnnserve.plugins.trace")

ENTRY_POINT_GROUP = "rnnserve"
ALLOWLIST_ENV = "RNNSERVE_PLUGINS"
TRACE_ENV = "RNNSERVE_TRACE_PLUGINS"
#: The hooks of ``hookspecs``, in the order they are declared (and called).
HOOKS = tuple(name for name, fn in vars(hookspecs).items() if hasattr(fn, f"{ENTRY_POINT_GROUP}_spec"))


@dataclass
class PluginInfo:
    """One plugin as ``rnnserve plugins`` reports it."""

    name: str
    distribution: str
    version: str
    state: str = "loaded"  # loaded | failed | not allowed
    reason: str = ""
    #: The plugin API version the plugin states it needs ("" when it states none).
    plugin_api: str = ""
    hooks: list[str] = field(default_factory=list)
    backends: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)

    def fail(self, reason: str) -> None:
        """Mark the plugin failed (the first reason is kept: later ones are usually consequences)."""
        if self.state != "failed":
            self.state, self.reason = "failed", reason
            log.warning("plugin %s failed: %s", self.name, reason)


@dataclass
class PluginHost:
    """What the loaded plugins registered: backends, shipped models and CLI commands."""

    plugins: list[PluginInfo]
    backends: dict[str, tuple[BackendFactory, PluginInfo]]
    models: list[ModelSpec]
    commands: list[Command]

    def plugin(self, name: str) -> PluginInfo | None:
        return next((p for p in self.plugins if p.name == name), None)


def tracing_requested() -> bool:
    return os.environ.get(TRACE_ENV, "") not in ("", "0")


def make_plugin_manager() -> pluggy.PluginManager:
    """A fresh plugin manager with rnnserve's hookspecs (one per host; tests get their own)."""
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    if tracing_requested():
        enable_tracing(pm)
    return pm


def enable_tracing(pm: pluggy.PluginManager) -> None:
    """Log every hook call (plugins called, arguments, duration, outcome) on ``rnnserve.plugins.trace``.

    If logging is not configured yet (the CLI loads plugins first), the trace goes to stderr.
    """
    trace_log.setLevel(logging.INFO)
    if not logging.getLogger().handlers and not trace_log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        trace_log.addHandler(handler)
        trace_log.propagate = False
    started: list[float] = []

    def before(hook_name: str, impls: list[pluggy.HookImpl], kwargs: dict[str, Any]) -> None:
        started.append(time.perf_counter())
        trace_log.info("hook %s(%s) -> %s", hook_name, ", ".join(kwargs),
                       ", ".join(impl.plugin_name for impl in impls) or "no plugin")

    def after(outcome: pluggy.Result[Any], hook_name: str, impls: list[pluggy.HookImpl],
              kwargs: dict[str, Any]) -> None:
        ms = (time.perf_counter() - started.pop()) * 1000 if started else 0.0
        plugins = ", ".join(impl.plugin_name for impl in impls) or "no plugin"
        if outcome.exception is not None:
            trace_log.info("hook %s -> %s raised %s: %s (%.1f ms)", hook_name, plugins,
                           type(outcome.exception).__name__, outcome.exception, ms)
        else:
            trace_log.info("hook %s -> %s returned (%.1f ms)", hook_name, plugins, ms)

    pm.add_hookcall_monitoring(before, after)


def _allowlist() -> set[str] | None:
    raw = os.environ.get(ALLOWLIST_ENV)
    if raw is None:
        return None
    return {name.strip() for name in raw.split(",") if name.strip()}


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _required_args(fn: Any) -> list[str]:
    """The arguments pluggy passes to a hook implementation (those without defaults)."""
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return []
    return [p.name for p in parameters if p.default is p.empty
            and p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)]


def hook_problems(pm: pluggy.PluginManager, plugin: Any) -> list[str]:
    """Why ``plugin``'s hooks do not fit rnnserve's hookspecs (empty when they do).

    Catches what pluggy would otherwise report late or not at all: an ``@hookimpl`` whose
    name is no hook (``register_model``), an argument the hookspec lacks
    (``register_backends(regster)``), and a hook function left without ``@hookimpl``.
    """
    problems = []
    for attr in sorted(dir(plugin)):
        try:
            value = getattr(plugin, attr)
        except Exception:  # a property that raises is not a hook
            continue
        opts = pm.parse_hookimpl_opts(plugin, attr)
        if opts is None:
            if attr in HOOKS and callable(value):
                problems.append(f"{attr} is not marked with @rnnserve.hookimpl, so it would never be called")
            continue
        name = opts.get("specname") or attr
        caller = getattr(pm.hook, name, None)
        if caller is None or caller.spec is None:
            if opts.get("optionalhook"):
                continue
            close = difflib.get_close_matches(name, HOOKS, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            problems.append(f"{attr} is not an rnnserve hook; {hint}rnnserve's hooks are {', '.join(HOOKS)}")
            continue
        args = _required_args(value)
        unknown = [a for a in args if a not in caller.spec.argnames]
        if unknown:
            expected = f"{name}({', '.join(caller.spec.argnames)})"
            problems.append(f"{attr}({', '.join(args)}) does not match the hookspec {expected}: "
                            f"unknown argument(s) {', '.join(unknown)}")
    return problems


def _register(pm: pluggy.PluginManager, info: PluginInfo, plugin: Any) -> None:
    """Register one plugin, or record why not as its failure (a plugin API version this host
    does not provide, hooks that do not fit the hookspecs, a registration that raises)."""
    required = getattr(plugin, REQUIRED_VERSION_ATTRIBUTE, None)
    if required is not None:
        info.plugin_api = str(required)
        mismatch = api_mismatch(required)
        if mismatch:
            info.fail(f"plugin {info.name!r} {mismatch}")
            return
    problems = hook_problems(pm, plugin)
    if problems:
        info.fail(f"hook mismatch in plugin {info.name!r}: " + "; ".join(problems))
        return
    try:
        pm.register(plugin, name=info.name)
    except pluggy.PluginValidationError as exc:
        info.fail(f"hook mismatch in plugin {info.name!r}: {' '.join(str(exc).split())}")
        return
    except Exception as exc:
        info.fail(f"registration failed: {_describe(exc)}")
        return
    info.hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or [])


def load_plugins(
    extra: Iterable[tuple[str, Any]] = (),
    *,
    discover: bool = True,
    eps: Iterable[EntryPoint] | None = None,
    honour_allowlist: bool = True,
) -> PluginHost:
    """Discover and register plugins, then collect what their hooks register.

    Args:
        extra: (name, module-or-object) plugins registered directly, e.g. by tests.
        discover: load entry points of the ``rnnserve`` group (tests may turn this off).
        eps: entry points to use instead of the installed ones (tests).
        honour_allowlist: apply ``RNNSERVE_PLUGINS`` (the test kit loads the plugins it
            was asked for whatever the developer's environment says).
    """
    pm = make_plugin_manager()
    infos = _register_plugins(pm, extra, discover, eps, _allowlist() if honour_allowlist else None)
    backends, models, commands = _collect(pm, infos)
    return PluginHost(sorted(infos.values(), key=lambda p: p.name), backends, models, commands)


def _register_plugins(pm: pluggy.PluginManager, extra: Iterable[tuple[str, Any]], discover: bool,
                      eps: Iterable[EntryPoint] | None, allow: set[str] | None) -> dict[str, PluginInfo]:
    """Import the entry points' plugins (unless ``discover`` is off) and ``extra``, and register
    those whose hooks are right; every plugin's :class:`PluginInfo`, by name."""
    infos: dict[str, PluginInfo] = {}
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
                plugin = ep.load()
            except Exception as exc:
                info.fail(f"import failed: {_describe(exc)}")
                continue
            _register(pm, info, plugin)
    for name, plugin in extra:
        infos[name] = PluginInfo(name, "local", "0")
        _register(pm, infos[name], plugin)
    try:
        pm.check_pending()  # hook_problems already turned away every plugin this would name
    except pluggy.PluginValidationError as exc:
        log.warning("plugin hook validation: %s", exc)
    return infos


def _collect(pm: pluggy.PluginManager, infos: dict[str, PluginInfo]
             ) -> tuple[dict[str, tuple[BackendFactory, PluginInfo]], list[ModelSpec], list[Command]]:
    """Call every registered plugin's hooks: the backends, models and commands they register
    (a plugin whose hook fails, or registers something wrong, is marked failed)."""
    backends: dict[str, tuple[BackendFactory, PluginInfo]] = {}
    models: list[ModelSpec] = []
    commands: list[Command] = []
    tracing = tracing_requested()

    def call(hook: str, impl: pluggy.HookImpl, register: Any) -> None:
        """Call one plugin's implementation of ``hook`` through pluggy (so tracing sees it)."""
        others = [p for p in pm.get_plugins() if p is not impl.plugin]
        try:
            pm.subset_hook_caller(hook, remove_plugins=others)(register=register)
        except Exception as exc:
            infos[impl.plugin_name].fail(f"{hook} failed: {_describe(exc)}")

    for impl in pm.hook.register_backends.get_hookimpls():
        info = infos[impl.plugin_name]

        def register_backend(name: str, factory: BackendFactory, info: PluginInfo = info) -> None:
            if name in backends:
                raise PluginError(f"backend {name!r} is already registered by {backends[name][1].name}")
            if not callable(factory):
                raise PluginError(f"backend {name!r}: the factory must be callable as factory(spec, context), "
                                  f"got {type(factory).__name__}")
            backends[name] = (factory, info)
            info.backends.append(name)
            if tracing:
                trace_log.info("plugin %s registered backend %r", info.name, name)

        call("register_backends", impl, register_backend)

    for impl in pm.hook.register_models.get_hookimpls():
        info = infos[impl.plugin_name]

        def register_model(spec: ModelSpec, info: PluginInfo = info) -> None:
            if not isinstance(spec, ModelSpec):
                raise PluginError("register_models takes rnnserve.plugin_api.ModelSpec objects, "
                                  f"got {type(spec).__name__}")
            models.append(ModelSpec(**{**spec.__dict__, "source": info.name}))
            info.models.append(spec.name)
            if tracing:
                trace_log.info("plugin %s registered model %r (backend %r)", info.name, spec.name, spec.backend)

        call("register_models", impl, register_model)

    for impl in pm.hook.register_commands.get_hookimpls():
        info = infos[impl.plugin_name]

        def register_command(command: Command, info: PluginInfo = info) -> None:
            if command.group is not None and command.group not in GROUPS:
                raise PluginError(f"command group {command.group!r} unknown; valid: {sorted(GROUPS)}")
            commands.append(command)
            info.commands.append(" ".join(filter(None, [command.group, command.name])))
            if tracing:
                trace_log.info("plugin %s registered command %r", info.name, info.commands[-1])

        call("register_commands", impl, register_command)

    return backends, models, commands
