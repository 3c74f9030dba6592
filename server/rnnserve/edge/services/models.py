"""``rnnserve.v1.Models``: the model repository index."""

from __future__ import annotations

from grpc import aio

from rnnserve.backends import ModelKind
from rnnserve.edge import validation
from rnnserve.edge.errors import grpc_errors
from rnnserve.host.model_entry import ModelEntry, ModelState
from rnnserve.host.registry import ModelRegistry
from rnnserve_client.v1 import models_pb2, models_pb2_grpc

KINDS = {
    ModelKind.LANGUAGE_MODEL: models_pb2.MODEL_KIND_LANGUAGE_MODEL,
    ModelKind.TRANSLATOR: models_pb2.MODEL_KIND_TRANSLATOR,
    ModelKind.ASSISTANT: models_pb2.MODEL_KIND_ASSISTANT,
}
STATES = {
    ModelState.LOADING: models_pb2.MODEL_STATE_LOADING,
    ModelState.READY: models_pb2.MODEL_STATE_READY,
    ModelState.FAILED: models_pb2.MODEL_STATE_FAILED,
}


def model_pb(entry: ModelEntry) -> models_pb2.Model:
    """The protobuf description of a model."""
    stats = entry.stats
    message = models_pb2.Model(
        name=entry.name,
        kind=KINDS.get(entry.kind, models_pb2.MODEL_KIND_UNSPECIFIED) if entry.kind else 0,
        backend=entry.spec.backend,
        plugin=entry.plugin.distribution if entry.plugin else "",
        plugin_version=entry.plugin.version if entry.plugin else "",
        state=STATES[entry.state],
        reason=entry.reason,
        parameter_count=entry.parameter_count,
        precision=entry.precision,
        precision_choice=entry.precision_choice,
        stats=models_pb2.ModelStats(
            queue_depth=stats.queue_depth,
            active_sequences=stats.active_sequences,
            steps_total=stats.steps_total,
            tokens_total=stats.tokens_total,
            requests_total=stats.requests_total,
            rejected_total=stats.rejected_total,
            mean_batch_size=stats.mean_batch_size,
            lent_steps_total=stats.lent_steps_total,
            mean_lent_rows=stats.lent_rows_total / stats.lent_steps_total if stats.lent_steps_total else 0.0,
            backend_counters=entry.backend.counters() if entry.backend is not None else {},
        ),
    )
    if entry.card is not None:
        card = entry.card
        message.card.CopyFrom(models_pb2.ModelCard(
            description=card.description, data=card.data, split=card.split,
            training_command=card.training_command, metrics=card.metrics, license=card.license,
            limitations=card.limitations))
    return message


class ModelsService(models_pb2_grpc.ModelsServicer):
    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry

    @grpc_errors
    async def ListModels(self, request: models_pb2.ListModelsRequest,
                         context: aio.ServicerContext) -> models_pb2.ListModelsResponse:
        if request.kind and request.kind not in KINDS.values():
            raise validation.unknown_enum("kind", models_pb2.ModelKind, request.kind)
        entries = self.registry.entries()
        if request.kind:
            entries = [e for e in entries if e.kind is not None and KINDS[e.kind] == request.kind]
        return models_pb2.ListModelsResponse(models=[model_pb(e) for e in entries])

    @grpc_errors
    async def GetModel(self, request: models_pb2.GetModelRequest,
                       context: aio.ServicerContext) -> models_pb2.Model:
        validation.check_model_name(request.name, "name")
        return model_pb(self.registry.find(request.name))
