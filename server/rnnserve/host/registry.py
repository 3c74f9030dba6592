"""The model repository: which models are configured, their state, and their schedulers.

Each model loads on its own thread (LOADING -> READY or FAILED with the reason); a model
that fails to load never stops the others. A READY model has one scheduler thread.

Before a model's factory runs, the files its directory's ``manifest.json`` lists are
checked against their sha256 (``manifest.py``). While models serve, a watchdog
(``watchdog.py``) turns a model call running longer than ``step_timeout_s`` into a FAILED
model whose waiting calls fail at once; the other models keep serving. FAILED reasons are
shown to clients, so they go through ``errors.redact_paths`` (no server paths).

A model the watchdog marked FAILED (or whose thread stopped on an error) is reloaded in
the background, from its factory, on a fresh thread: after ``reload_backoff[0]`` seconds,
doubling after each failure in a row up to ``reload_backoff[1]`` (LOADING while it
loads; the reason says when the next try is). Backends built on it (an assistant on its
language model) are marked FAILED with it and reloaded once it is READY again. Reloads
are logged and counted (``ModelEntry.reloads``, ``reload_failures``; Prometheus
``rnnserve_model_reloads_total``).
"""

from __future__ import annotations

import gc
import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from rnnserve.backends import Assistant, Backend, LanguageModel, ModelKind, SharedLanguageModel, Translator
from rnnserve.edge.errors import ModelFailed, ModelHung, ModelNotFound, ModelUnavailable, redact_paths
from rnnserve.host.manifest import MANIFEST_FILE, ManifestError, verify_manifest
from rnnserve.host.model_entry import KIND_SERVICES, ModelEntry, ModelState, Worker
from rnnserve.host.model_spec import ModelCard, ModelSpec
from rnnserve.host.plugins import PluginHost
from rnnserve.host.weights_precision import weights_precision
from rnnserve.ops.config import ServerConfig
from rnnserve.runtime.assistant_worker import SerialWorker
from rnnserve.runtime.language_model_scheduler import DEFAULT_EMIT_INTERVAL_S, LanguageModelScheduler
from rnnserve.runtime.translation_scheduler import TranslationScheduler
from rnnserve.runtime.watchdog import RequestGuard, Watchdog

log = logging.getLogger("rnnserve.registry")

CARD_FILE = "model_card.json"
_T = TypeVar("_T")


#: Seconds before the first background reload of a FAILED model, and the most between two.
RELOAD_BACKOFF_S = (5.0, 300.0)
#: A reloaded model that serves this long without failing again starts the backoff afresh.
RELOAD_STABLE_S = 600.0


class ModelRegistry:
    """Name -> model, for every model the config and the plugins provide."""

    def __init__(self, host: PluginHost, config: ServerConfig,
                 on_change: Callable[[ModelEntry], None] | None = None) -> None:
        self.host = host
        self.config = config
        self._on_change = on_change
        specs: dict[str, ModelSpec] = {}
        if config.default_models:
            specs.update((s.name, s) for s in host.models)
        specs.update((s.name, s) for s in config.models)  # the config file wins
        self._entries = {
            name: ModelEntry(spec, host.backends[spec.backend][1] if spec.backend in host.backends else None)
            for name, spec in specs.items()
        }
        self._watchdog = Watchdog(self._watched, self._on_hung)
        self._loaders: list[threading.Thread] = []
        #: (first, most) seconds between background reloads of a FAILED model (doubling).
        self.reload_backoff = RELOAD_BACKOFF_S
        #: language model name -> names of the models whose backends borrowed it when they loaded.
        self._dependents: dict[str, set[str]] = {}
        self._loading = threading.local()  # .entry: the entry this thread is loading
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    # -- loading ---------------------------------------------------------------------

    def start(self) -> None:
        """Load every model on its own thread, and start the watchdog."""
        for entry in self._entries.values():
            loader = threading.Thread(target=self._load, args=(entry,), name=f"load:{entry.name}", daemon=True)
            self._loaders.append(loader)
            loader.start()
        self._watchdog.start()

    def wait_loaded(self, timeout: float | None = None) -> bool:
        """Block until every model is READY or FAILED; False on timeout."""
        return all(entry.ready.wait(timeout) for entry in self._entries.values())

    def stop(self, load_timeout: float = 60.0) -> None:
        """Stop the schedulers, first letting models still loading finish (bounded by ``load_timeout``):
        a process must not exit while a loader thread is inside torch."""
        self._stopping.set()
        deadline = time.monotonic() + load_timeout
        for loader in list(self._loaders):
            loader.join(max(0.0, deadline - time.monotonic()))
        self._watchdog.stop()
        for entry in self._entries.values():
            if entry.worker is not None and not entry.hung:  # a hung worker was asked to stop already
                entry.worker.stop()

    def resolve_path(self, spec: ModelSpec) -> Path:
        if spec.path is None:
            raise ValueError(f"model {spec.name!r} has no path")
        path = Path(spec.path)
        return path if path.is_absolute() else (self.config.base_dir / path).resolve()

    def language_model(self, name: str, timeout: float = 300.0) -> SharedLanguageModel:
        entry = self._entries.get(name)
        if entry is None:
            raise ValueError(f"language model {name!r} is not configured")
        borrower: ModelEntry | None = getattr(self._loading, "entry", None)
        if borrower is not None:
            with self._lock:
                self._dependents.setdefault(name, set()).add(borrower.name)
        entry.ready.wait(timeout)
        if entry.state != ModelState.READY or not isinstance(entry.backend, LanguageModel):
            raise ValueError(f"language model {name!r} is not ready ({entry.state}: {entry.reason})")
        scheduler = _narrow(entry.worker, LanguageModelScheduler, entry)
        return SharedLanguageModel(name, entry.backend, scheduler.call, scheduler.run_steps, scheduler.run_steps_idle)

    def _load(self, entry: ModelEntry) -> None:
        spec = entry.spec
        self._loading.entry = entry
        try:
            if spec.backend not in self.host.backends:
                raise ValueError(f"unknown backend {spec.backend!r}; available: {sorted(self.host.backends) or 'none'}")
            factory, _ = self.host.backends[spec.backend]
            self._check_manifest(spec)
            backend = factory(spec, self)
            entry.kind = _kind_of(backend)
            entry.card = spec.card or self._read_card(spec)
            entry.parameter_count = int(backend.parameter_count())
            entry.precision = weights_precision(backend)
            entry.precision_choice = getattr(backend, "precision_choice", "")
            entry.worker = self._make_worker(spec, backend)
            entry.worker.on_crash = lambda exc, entry=entry: self._on_crash(entry, exc)
            entry.worker.start()
            entry.backend = backend
            entry.ready_since = time.monotonic()
            entry.state = ModelState.READY
            # What a model keeps for good (weights, vocabularies, lexicons: often millions of
            # objects) leaves the garbage collector's scans: a full collection over it held
            # the interpreter lock for ~100 ms, under every request in flight. The loading's
            # own garbage goes first: frozen objects are never freed.
            gc.collect()
            gc.freeze()
            log.info("model %s ready (%s, %s parameters)", entry.name, spec.backend, f"{entry.parameter_count:,}")
        except Exception as exc:
            self._set_failed(entry, f"{type(exc).__name__}: {exc}")
            log.error("model %s failed to load: %s", entry.name, entry.reason, exc_info=exc)
        finally:
            self._loading.entry = None
            entry.ready.set()
            if self._on_change is not None:
                self._on_change(entry)

    @staticmethod
    def _set_failed(entry: ModelEntry, reason: str) -> None:
        """Mark ``entry`` FAILED; the reason reaches clients, so absolute paths are cut to their last part."""
        entry.reason = redact_paths(reason)
        entry.state = ModelState.FAILED

    def _check_manifest(self, spec: ModelSpec) -> None:
        """Verify the model directory against its manifest before the backend reads it."""
        if spec.path is None:
            return
        path = self.resolve_path(spec)
        directory = path if path.is_dir() else path.parent
        if not directory.is_dir():
            return  # the factory reports the missing path
        if verify_manifest(directory):
            log.info("model %s: files match %s", spec.name, MANIFEST_FILE)
        elif self.config.require_manifest:
            raise ManifestError(f"the model directory has no {MANIFEST_FILE} (require_manifest is set)")
        else:
            log.warning("model %s: %s has no %s, so its files are not verified (write one with "
                        "`rnnserve manifest DIR`)", spec.name, directory, MANIFEST_FILE)

    # -- hung models -----------------------------------------------------------------

    def step_timeout(self, spec: ModelSpec) -> float:
        return spec.step_timeout_s or self.config.limits.step_timeout_s

    def _watched(self) -> list[tuple[ModelEntry, Worker, float]]:
        return [(e, e.worker, self.step_timeout(e.spec)) for e in self._entries.values()
                if e.worker is not None and e.state == ModelState.READY]

    def _on_hung(self, entry: ModelEntry, seconds: float) -> None:
        """The watchdog found a model call running too long: FAILED, waiting calls failed, thread abandoned."""
        timeout = self.step_timeout(entry.spec)
        entry.hung = True
        entry.hangs += 1
        worker = entry.worker  # the stuck one (a reload replaces it)
        self._set_failed(entry, f"step exceeded step_timeout_s={timeout:g} (a model call ran for {seconds:.1f} s)")
        # The state a caller sees once its call has failed is the whole of it: dependents
        # failed and the reload announced before the waiting calls are failed.
        self._fail_dependents(entry)
        self._schedule_reload(entry)
        failed = entry.guard.trip(ModelHung(
            f"model {entry.name!r} stopped responding: a step exceeded step_timeout_s={timeout:g}; "
            "the model is marked FAILED (other models still serve)"))
        log.error("model %s hung: a model call has run for %.1f s (step_timeout_s=%g); marked FAILED, "
                  "%d waiting calls failed", entry.name, seconds, timeout, failed)
        if worker is not None:
            # Work queued behind the stuck call fails now: callers on other threads too (an
            # assistant waiting on its language model), which the guard does not reach.
            worker.abandon_hung(ModelHung(f"model {entry.name!r} stopped responding (step_timeout_s={timeout:g})"))
            # returns when the stuck call does, if ever; never blocks the watchdog
            threading.Thread(target=worker.stop, name=f"stop:{entry.name}", daemon=True).start()
        if self._on_change is not None:
            self._on_change(entry)

    def _on_crash(self, entry: ModelEntry, exc: BaseException) -> None:
        """A model's thread stopped on an error its work did not catch: FAILED, waiting calls failed."""
        self._set_failed(entry, f"its thread stopped on an error: {type(exc).__name__}: {exc}")
        self._fail_dependents(entry)
        self._schedule_reload(entry)
        entry.guard.trip(ModelFailed(f"model {entry.name!r} failed: {type(exc).__name__}: {exc}"))
        if self._on_change is not None:
            self._on_change(entry)

    # -- reloading failed models -----------------------------------------------------

    def _fail_dependents(self, entry: ModelEntry) -> None:
        """Mark FAILED the READY models built on ``entry`` (they are reloaded once it is back)."""
        with self._lock:
            names = sorted(self._dependents.get(entry.name, ()))
        for name in names:
            dependent = self._entries[name]
            if dependent.state != ModelState.READY:
                continue
            dependent.awaiting = entry.name
            self._set_failed(dependent, f"its language model {entry.name!r} failed ({entry.reason}); "
                                        "it is reloaded when that model is back")
            dependent.guard.trip(ModelFailed(f"model {name!r} failed: its language model {entry.name!r} failed"))
            if self._on_change is not None:
                self._on_change(dependent)

    def _schedule_reload(self, entry: ModelEntry, delay: float | None = None) -> None:
        """Reload ``entry`` on a background thread after ``delay`` (default: the backoff's next)."""
        with self._lock:
            if entry.reloading or self._stopping.is_set():
                return
            entry.reloading = True
        if delay is None:
            if entry.ready_since and time.monotonic() - entry.ready_since > RELOAD_STABLE_S:
                entry.failures_in_a_row = 0
            entry.failures_in_a_row += 1
            first, most = self.reload_backoff
            delay = min(most, first * 2 ** (entry.failures_in_a_row - 1))
        self._say_reloading(entry, delay)
        loader = threading.Thread(target=self._reload, args=(entry, delay), name=f"reload:{entry.name}", daemon=True)
        self._loaders.append(loader)
        loader.start()

    @staticmethod
    def _say_reloading(entry: ModelEntry, delay: float) -> None:
        entry.reason = f"{entry.reason.split('; reloading')[0]}; reloading in {delay:g} s"
        log.warning("model %s: reloading in %g s (failures in a row: %d)", entry.name, delay, entry.failures_in_a_row)

    def _reload(self, entry: ModelEntry, delay: float) -> None:
        try:
            while True:
                if self._stopping.wait(delay):
                    return
                old = entry.worker
                if old is not None and not entry.hung:  # a model built on one that failed: its worker is idle
                    threading.Thread(target=old.stop, name=f"stop:{entry.name}", daemon=True).start()
                entry.worker, entry.backend, entry.hung = None, None, False
                entry.guard = RequestGuard()
                entry.state, entry.reason = ModelState.LOADING, "reloading"
                if self._on_change is not None:
                    self._on_change(entry)
                self._load(entry)
                if entry.state == ModelState.READY:
                    entry.reloads += 1
                    log.warning("model %s: reloaded, READY again (reload %d)", entry.name, entry.reloads)
                    break
                entry.reload_failures += 1
                entry.failures_in_a_row += 1
                delay = min(self.reload_backoff[1], max(delay, self.reload_backoff[0]) * 2)
                self._say_reloading(entry, delay)
                if self._on_change is not None:
                    self._on_change(entry)
        finally:
            entry.reloading = False
        with self._lock:
            dependents = sorted(self._dependents.get(entry.name, ()))
        for name in dependents:
            dependent = self._entries[name]
            if dependent.state == ModelState.FAILED and dependent.awaiting == entry.name:
                dependent.awaiting = ""
                self._schedule_reload(dependent, delay=0.0)

    def _read_card(self, spec: ModelSpec) -> ModelCard | None:
        if spec.path is None:
            return None
        path = self.resolve_path(spec) / CARD_FILE
        return ModelCard.from_dict(json.loads(path.read_text())) if path.is_file() else None

    def _make_worker(self, spec: ModelSpec, backend: Backend) -> Worker:
        limits = self.config.limits
        batch = spec.max_batch_size or limits.max_batch_size
        if isinstance(backend, LanguageModel):
            interval = DEFAULT_EMIT_INTERVAL_S if spec.emit_interval_ms is None else spec.emit_interval_ms / 1000
            return LanguageModelScheduler(spec.name, backend, max_batch_size=batch, max_queue=limits.max_queue,
                                          emit_interval_s=interval)
        if isinstance(backend, Translator):
            return TranslationScheduler(spec.name, backend, max_batch_texts=batch, max_queue=limits.max_queue,
                                        max_beams=limits.max_translation_beams)
        threads = backend.concurrent_calls if isinstance(backend, Assistant) else 1
        return SerialWorker(spec.name, max_queue=limits.max_queue, threads=threads)

    # -- lookup ----------------------------------------------------------------------

    def entries(self) -> list[ModelEntry]:
        return sorted(self._entries.values(), key=lambda e: e.name)

    def find(self, name: str) -> ModelEntry:
        entry = self._entries.get(name)
        if entry is None:
            raise ModelNotFound(name, "", [e.name for e in self.entries()])
        return entry

    def get(self, name: str, kind: ModelKind) -> ModelEntry:
        """The READY model ``name`` of ``kind``; NOT_FOUND lists the models of that kind."""
        entry = self._entries.get(name)
        if entry is None or (entry.kind is not None and entry.kind != kind):
            available = [e.name for e in self.entries() if e.kind == kind]
            actual = (entry.kind.value, KIND_SERVICES[entry.kind]) if entry is not None and entry.kind else None
            raise ModelNotFound(name, kind.value, available, actual)
        if entry.state == ModelState.LOADING:
            raise ModelUnavailable(f"model {name!r} is still loading; retry shortly")
        if entry.state == ModelState.FAILED:
            what = "failed" if entry.hung else "failed to load"
            raise ModelFailed(f"model {name!r} {what}: {entry.reason}")
        return entry

    # -- typed lookups: what each service needs of a READY model of its kind ----------

    def ready_language_model(self, name: str) -> tuple[LanguageModelScheduler, RequestGuard]:
        """The READY language model ``name``: its scheduler and the guard of its calls."""
        entry = self.get(name, ModelKind.LANGUAGE_MODEL)
        return _narrow(entry.worker, LanguageModelScheduler, entry), entry.guard

    def ready_translator(self, name: str) -> tuple[Translator, TranslationScheduler, RequestGuard]:
        """The READY translator ``name``: its backend, its scheduler and the guard of its calls."""
        entry = self.get(name, ModelKind.TRANSLATOR)
        return (_narrow(entry.backend, Translator, entry), _narrow(entry.worker, TranslationScheduler, entry),
                entry.guard)

    def ready_assistant(self, name: str) -> tuple[Assistant, SerialWorker, RequestGuard]:
        """The READY assistant ``name``: its backend, its worker and the guard of its calls."""
        entry = self.get(name, ModelKind.ASSISTANT)
        return _narrow(entry.backend, Assistant, entry), _narrow(entry.worker, SerialWorker, entry), entry.guard


def _narrow(value: object, kind: type[_T], entry: ModelEntry) -> _T:
    """``value`` as the ``kind`` the registry made it for ``entry``'s model kind (a mismatch is the
    registry's bug, never a client's: it surfaces as INTERNAL)."""
    if not isinstance(value, kind):
        raise TypeError(f"model {entry.name!r} ({entry.kind}): expected {kind.__name__}, found {type(value).__name__}")
    return value


def _kind_of(backend: object) -> ModelKind:
    for cls in (LanguageModel, Translator, Assistant):
        if isinstance(backend, cls):
            return cls.kind
    raise TypeError(f"backend factory returned {type(backend).__name__}, not a LanguageModel, Translator "
                    "or Assistant (see rnnserve.backends)")
