"""Plugin hosts and load contexts for tests: exactly the plugins a test names, loaded through their hooks."""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import Future
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from types import ModuleType
from typing import Any

from rnnserve.backends import LanguageModel, SharedLanguageModel
from rnnserve.edge.errors import PluginError
from rnnserve.host.model_spec import ModelSpec
from rnnserve.host.plugins import ENTRY_POINT_GROUP, PluginHost, load_plugins
from rnnserve.runtime.step_programs import run_alone


def plugin_host(*plugins: Any) -> PluginHost:
    """A :class:`~rnnserve.host.plugins.PluginHost` holding exactly ``plugins``, registered through their hooks.

    Each plugin is either the name of an installed entry point of the ``rnnserve`` group
    (loaded the way ``rnnserve serve`` loads it, so this also tests the packaging) or a
    hooks module/object. ``RNNSERVE_PLUGINS`` does not apply: a test gets what it names.
    Raises :class:`~rnnserve.edge.errors.PluginError` with the reason if a plugin fails to load.
    """
    installed: dict[str, EntryPoint] = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    by_module = {ep.value: ep for ep in installed.values()}
    eps: list[EntryPoint] = []
    extra: list[tuple[str, Any]] = []
    for plugin in plugins:
        if isinstance(plugin, str):
            if plugin not in installed:
                raise PluginError(f"no installed plugin {plugin!r} (entry-point group {ENTRY_POINT_GROUP!r}); "
                                  f"installed: {sorted(installed) or 'none'}. Is its distribution installed "
                                  "(pip install -e .)? Or pass the hooks module itself.")
            ep = installed[plugin]
        elif isinstance(plugin, ModuleType) and plugin.__name__ in by_module:
            ep = by_module[plugin.__name__]  # installed: keep its entry-point name, distribution and version
        else:
            name = getattr(plugin, "__name__", type(plugin).__name__)
            if all(name != n for n, _ in extra):
                extra.append((name, plugin))
            continue
        if ep not in eps:
            eps.append(ep)
    host = load_plugins(extra, discover=bool(eps), eps=eps, honour_allowlist=False)
    failed = [f"{p.name}: {p.reason}" for p in host.plugins if p.state != "loaded"]
    if failed:
        raise PluginError("plugin(s) failed to load: " + "; ".join(failed))
    return host


class LocalContext:
    """A :class:`~rnnserve.backends.LoadContext` for building a backend outside a server.

    Relative model paths resolve against ``base_dir``; ``language_models`` lends models to
    backends that build on one (the function runs inline, on the caller's thread; so does
    idle work, at once).
    """

    def __init__(self, base_dir: Path | str = ".", language_models: Mapping[str, LanguageModel] | None = None):
        self.base_dir = Path(base_dir)
        self.language_models = dict(language_models or {})

    def resolve_path(self, spec: ModelSpec) -> Path:
        if spec.path is None:
            raise ValueError(f"model {spec.name!r} has no path")
        path = Path(spec.path)
        return path if path.is_absolute() else (self.base_dir / path).resolve()

    def language_model(self, name: str, timeout: float = 300.0) -> SharedLanguageModel:
        if name not in self.language_models:
            raise ValueError(f"language model {name!r} is not available here; pass it in "
                             f"LocalContext(language_models={{{name!r}: model}})")
        model = self.language_models[name]
        return SharedLanguageModel(name, model, lambda fn: fn(), lambda make: run_alone(model, make()),
                                   lambda make: _finished(run_alone(model, make())))


def _finished(result: Any) -> Future[Any]:
    """A future that already has ``result`` (idle work runs at once outside a server)."""
    future: Future[Any] = Future()
    future.set_result(result)
    return future
