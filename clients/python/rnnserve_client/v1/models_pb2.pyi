from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ModelKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODEL_KIND_UNSPECIFIED: _ClassVar[ModelKind]
    MODEL_KIND_LANGUAGE_MODEL: _ClassVar[ModelKind]
    MODEL_KIND_TRANSLATOR: _ClassVar[ModelKind]
    MODEL_KIND_ASSISTANT: _ClassVar[ModelKind]

class ModelState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODEL_STATE_UNSPECIFIED: _ClassVar[ModelState]
    MODEL_STATE_LOADING: _ClassVar[ModelState]
    MODEL_STATE_READY: _ClassVar[ModelState]
    MODEL_STATE_FAILED: _ClassVar[ModelState]
MODEL_KIND_UNSPECIFIED: ModelKind
MODEL_KIND_LANGUAGE_MODEL: ModelKind
MODEL_KIND_TRANSLATOR: ModelKind
MODEL_KIND_ASSISTANT: ModelKind
MODEL_STATE_UNSPECIFIED: ModelState
MODEL_STATE_LOADING: ModelState
MODEL_STATE_READY: ModelState
MODEL_STATE_FAILED: ModelState

class ModelCard(_message.Message):
    __slots__ = ("description", "data", "split", "training_command", "metrics", "license", "limitations")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    TRAINING_COMMAND_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    LICENSE_FIELD_NUMBER: _ClassVar[int]
    LIMITATIONS_FIELD_NUMBER: _ClassVar[int]
    description: str
    data: str
    split: str
    training_command: str
    metrics: _containers.ScalarMap[str, float]
    license: str
    limitations: str
    def __init__(self, description: _Optional[str] = ..., data: _Optional[str] = ..., split: _Optional[str] = ..., training_command: _Optional[str] = ..., metrics: _Optional[_Mapping[str, float]] = ..., license: _Optional[str] = ..., limitations: _Optional[str] = ...) -> None: ...

class ModelStats(_message.Message):
    __slots__ = ("queue_depth", "active_sequences", "steps_total", "tokens_total", "requests_total", "rejected_total", "mean_batch_size", "backend_counters", "lent_steps_total", "mean_lent_rows")
    class BackendCountersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    QUEUE_DEPTH_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_SEQUENCES_FIELD_NUMBER: _ClassVar[int]
    STEPS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    TOKENS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    REJECTED_TOTAL_FIELD_NUMBER: _ClassVar[int]
    MEAN_BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    BACKEND_COUNTERS_FIELD_NUMBER: _ClassVar[int]
    LENT_STEPS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    MEAN_LENT_ROWS_FIELD_NUMBER: _ClassVar[int]
    queue_depth: int
    active_sequences: int
    steps_total: int
    tokens_total: int
    requests_total: int
    rejected_total: int
    mean_batch_size: float
    backend_counters: _containers.ScalarMap[str, float]
    lent_steps_total: int
    mean_lent_rows: float
    def __init__(self, queue_depth: _Optional[int] = ..., active_sequences: _Optional[int] = ..., steps_total: _Optional[int] = ..., tokens_total: _Optional[int] = ..., requests_total: _Optional[int] = ..., rejected_total: _Optional[int] = ..., mean_batch_size: _Optional[float] = ..., backend_counters: _Optional[_Mapping[str, float]] = ..., lent_steps_total: _Optional[int] = ..., mean_lent_rows: _Optional[float] = ...) -> None: ...

class Model(_message.Message):
    __slots__ = ("name", "kind", "backend", "plugin", "plugin_version", "state", "reason", "parameter_count", "card", "stats", "precision", "precision_choice")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    PLUGIN_FIELD_NUMBER: _ClassVar[int]
    PLUGIN_VERSION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    PARAMETER_COUNT_FIELD_NUMBER: _ClassVar[int]
    CARD_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    PRECISION_CHOICE_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: ModelKind
    backend: str
    plugin: str
    plugin_version: str
    state: ModelState
    reason: str
    parameter_count: int
    card: ModelCard
    stats: ModelStats
    precision: str
    precision_choice: str
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[_Union[ModelKind, str]] = ..., backend: _Optional[str] = ..., plugin: _Optional[str] = ..., plugin_version: _Optional[str] = ..., state: _Optional[_Union[ModelState, str]] = ..., reason: _Optional[str] = ..., parameter_count: _Optional[int] = ..., card: _Optional[_Union[ModelCard, _Mapping]] = ..., stats: _Optional[_Union[ModelStats, _Mapping]] = ..., precision: _Optional[str] = ..., precision_choice: _Optional[str] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ("kind",)
    KIND_FIELD_NUMBER: _ClassVar[int]
    kind: ModelKind
    def __init__(self, kind: _Optional[_Union[ModelKind, str]] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[Model]
    def __init__(self, models: _Optional[_Iterable[_Union[Model, _Mapping]]] = ...) -> None: ...

class GetModelRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...
