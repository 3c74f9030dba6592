"""A configured model as the registry keeps it: its state (LOADING / READY / FAILED and why),
its backend and the worker that runs its calls, and its history of hangs and reloads."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from rnnserve.backends import Backend, ModelKind
from rnnserve.host.model_spec import ModelCard, ModelSpec
from rnnserve.host.plugins import PluginInfo
from rnnserve.runtime.assistant_worker import SerialWorker
from rnnserve.runtime.language_model_scheduler import LanguageModelScheduler
from rnnserve.runtime.model_thread import SchedulerStats
from rnnserve.runtime.translation_scheduler import TranslationScheduler
from rnnserve.runtime.watchdog import RequestGuard
from rnnserve_client.v1 import assistant_pb2, generation_pb2, translation_pb2

#: The service that serves each kind of model (messages name it).
KIND_SERVICES = {
    ModelKind.LANGUAGE_MODEL: generation_pb2.DESCRIPTOR.services_by_name["Generation"].full_name,
    ModelKind.TRANSLATOR: translation_pb2.DESCRIPTOR.services_by_name["Translation"].full_name,
    ModelKind.ASSISTANT: assistant_pb2.DESCRIPTOR.services_by_name["Assistant"].full_name,
}


class ModelState:
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"


Worker = LanguageModelScheduler | TranslationScheduler | SerialWorker


@dataclass
class ModelEntry:
    """One configured model and, once READY, its backend and scheduler."""

    spec: ModelSpec
    plugin: PluginInfo | None
    state: str = ModelState.LOADING
    reason: str = ""
    kind: ModelKind | None = None
    backend: Backend | None = None
    worker: Worker | None = None
    card: ModelCard | None = None
    parameter_count: int = 0
    #: "float32", "bfloat16", "int8", ... as read from the loaded weights (:func:`weights_precision`).
    precision: str = ""
    #: How that precision was chosen when the backend measured it (``BackendBase.precision_choice``).
    precision_choice: str = ""
    ready: threading.Event = field(default_factory=threading.Event)
    #: The calls waiting on this model; tripped (all failed) when the model hangs.
    guard: RequestGuard = field(default_factory=RequestGuard)
    #: The watchdog found a model call running past ``step_timeout_s``; its thread is abandoned.
    hung: bool = False
    #: Times the watchdog found the model hung; reloads that brought it back READY, and that failed.
    hangs: int = 0
    reloads: int = 0
    reload_failures: int = 0
    #: A background reload is scheduled or running.
    reloading: bool = False
    #: Failures (hangs, crashes, failed reloads) since the model last served for ``RELOAD_STABLE_S``.
    failures_in_a_row: int = 0
    #: time.monotonic() when it last became READY.
    ready_since: float = 0.0
    #: FAILED because the language model it borrows failed: that model's name (reloaded after it).
    awaiting: str = ""

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def stats(self) -> SchedulerStats:
        return self.worker.stats if self.worker is not None else SchedulerStats()
