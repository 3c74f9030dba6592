"""What every contract shares: the plugin under test, one model spec, a served copy, and their fixtures."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest

from rnnserve.host.model_spec import ModelSpec
from rnnserve.host.plugins import PluginHost
from rnnserve.ops.config import Limits, ServerConfig
from rnnserve.testing.hosts import plugin_host
from rnnserve.testing.server import ServerThread, running_server
from rnnserve_client import Client


class Contract:
    """What every contract needs: the plugin under test, one model spec, and a served copy."""

    #: The plugin under test: its entry-point name in the ``rnnserve`` group, or its hooks module.
    plugin: ClassVar[Any] = None
    #: Other plugins the model needs (e.g. the plugin of a language model an assistant borrows).
    supporting_plugins: ClassVar[Sequence[Any]] = ()
    #: The model to test: one the plugin registers through ``register_models`` ...
    model: ClassVar[str | None] = None
    #: ... or a spec given here, or one built by :meth:`make_spec`.
    spec: ClassVar[ModelSpec | None] = None
    #: The served copy's limits (the bad-input tests go past them).
    limits: ClassVar[Limits] = Limits()
    #: Seconds each client call may take.
    timeout: ClassVar[float] = 60.0

    # -- what an author may override ------------------------------------------------------

    def make_spec(self, tmp_path: Path) -> ModelSpec:
        """The model to test, e.g. a tiny checkpoint written into ``tmp_path`` (a class-wide temp dir)."""
        raise TypeError(f"{type(self).__name__}: say which model to test: set `model = 'name'` (a model the "
                        "plugin registers), `spec = ModelSpec(...)`, or override `make_spec(self, tmp_path)`")

    def supporting_models(self, tmp_path: Path) -> Sequence[ModelSpec]:
        """Other models the server must host (e.g. the language model an assistant borrows)."""
        return ()

    def make_host(self) -> PluginHost:
        """The plugins to serve with: ``plugin`` and ``supporting_plugins``, loaded through their hooks."""
        if self.plugin is None:
            raise TypeError(f"{type(self).__name__}: set `plugin` to the plugin under test (its entry-point "
                            "name, e.g. plugin = 'my-lm', or its hooks module)")
        return plugin_host(self.plugin, *self.supporting_plugins)

    def serving_host(self, host: PluginHost, spec: ModelSpec) -> PluginHost:
        """The host the server gets (the language-model contract wraps the model in a probe)."""
        return host

    # -- fixtures (class-scoped: one host, spec and server per test class) --------------------

    @pytest.fixture(scope="class")
    @classmethod
    def rnnserve_host(cls) -> PluginHost:
        return cls().make_host()

    @pytest.fixture(scope="class")
    @classmethod
    def rnnserve_workdir(cls, tmp_path_factory: pytest.TempPathFactory) -> Path:
        return tmp_path_factory.mktemp(cls.__name__)

    @pytest.fixture(scope="class")
    @classmethod
    def rnnserve_spec(cls, rnnserve_host: PluginHost, rnnserve_workdir: Path) -> ModelSpec:
        if cls.spec is not None:
            return cls.spec
        if cls.model is not None:
            shipped = {s.name: s for s in rnnserve_host.models}
            if cls.model not in shipped:
                raise LookupError(f"{cls.__name__}: no plugin registers a model {cls.model!r}; "
                                  f"registered: {sorted(shipped) or 'none'}")
            return shipped[cls.model]
        return cls().make_spec(rnnserve_workdir)

    @pytest.fixture(scope="class")
    @classmethod
    def rnnserve_config(cls, rnnserve_spec: ModelSpec, rnnserve_workdir: Path) -> ServerConfig:
        models = (*cls().supporting_models(rnnserve_workdir), rnnserve_spec)
        return ServerConfig(default_models=False, models=models, limits=cls.limits)

    @pytest.fixture(scope="class")
    @classmethod
    def rnnserve_server(cls, rnnserve_config: ServerConfig, rnnserve_host: PluginHost,
                        rnnserve_spec: ModelSpec) -> Iterator[ServerThread]:
        with running_server(rnnserve_config, cls().serving_host(rnnserve_host, rnnserve_spec)) as server:
            for entry in server.app.registry.entries():
                if entry.state != "ready":
                    pytest.fail(f"model {entry.name!r} (backend {entry.spec.backend!r}) did not load: "
                                f"{entry.state} {entry.reason}", pytrace=False)
            yield server

    @pytest.fixture
    def rnnserve_client(self, rnnserve_server: ServerThread) -> Iterator[Client]:
        with Client(rnnserve_server.target, timeout=self.timeout) as client:
            yield client
