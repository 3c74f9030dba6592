"""What a model is, apart from how a server is configured: its spec and its card.

A :class:`ModelSpec` names a model, the backend that loads it, where its files are and the
backend's options; plugins register the models they ship with it (``register_models``) and
a server config file lists more. A :class:`ModelCard` documents a trained model. Both are
part of the plugin API (:mod:`rnnserve.plugin_api`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from rnnserve.edge.errors import ConfigurationError


@dataclass(frozen=True)
class ModelCard:
    """Documentation of a trained model; mirrors ``rnnserve.v1.ModelCard``."""

    description: str = ""
    data: str = ""
    split: str = ""
    training_command: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    license: str = ""
    limitations: str = ""

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ModelCard:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})


@dataclass(frozen=True)
class ModelSpec:
    """A model to serve: a name, the backend that loads it, and where its files are."""

    name: str
    backend: str
    path: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    card: ModelCard | None = None
    #: Name of the plugin that registered the spec ("config" for the config file).
    source: str = "config"
    #: Overrides ``limits.max_batch_size`` for this model (1 serves one sequence at a time).
    max_batch_size: int | None = None
    #: Overrides ``limits.step_timeout_s`` for this model.
    step_timeout_s: float | None = None
    #: Language models: the longest a stream waits for the text of steps already decoded
    #: (milliseconds; None: 20). 0 sends every step's token in its own message.
    emit_interval_ms: float | None = None

    def __post_init__(self) -> None:
        if self.emit_interval_ms is not None and not (isinstance(self.emit_interval_ms, int | float)
                                                      and 0 <= self.emit_interval_ms <= 1000):
            raise ConfigurationError(f"model {self.name!r}: emit_interval_ms must be a number of milliseconds "
                                     f"in [0, 1000], got {self.emit_interval_ms!r}")
