"""``rnnserve.v1.Translation``: thin adapter from protobuf to the translation scheduler."""

from __future__ import annotations

from grpc import aio

from rnnserve.backends import Hypothesis
from rnnserve.edge import validation
from rnnserve.edge.errors import grpc_errors
from rnnserve.host.registry import ModelRegistry
from rnnserve.ops.config import Limits
from rnnserve_client.v1 import translation_pb2, translation_pb2_grpc


def _hypothesis_pb(hyp: Hypothesis, source_tokens: list[str]) -> translation_pb2.Hypothesis:
    message = translation_pb2.Hypothesis(text=hyp.text, score=hyp.score, log_probability=hyp.log_probability,
                                         tokens=hyp.tokens)
    if hyp.attention is not None:
        message.attention.CopyFrom(translation_pb2.Attention(
            source_tokens=source_tokens, target_tokens=hyp.tokens,
            weights=[w for row in hyp.attention for w in row]))
    return message


class TranslationService(translation_pb2_grpc.TranslationServicer):
    def __init__(self, registry: ModelRegistry, limits: Limits) -> None:
        self.registry = registry
        self.limits = limits

    @grpc_errors
    async def Translate(self, request: translation_pb2.TranslateRequest,
                        context: aio.ServicerContext) -> translation_pb2.TranslateResponse:
        validation.check_model_name(request.model)
        translator, scheduler, guard = self.registry.ready_translator(request.model)
        call = validation.translate_call(request, self.limits, translator.default_options, translator.sentences)
        results = await guard.watch(scheduler.translate(list(request.texts), call.options, call.units))
        return translation_pb2.TranslateResponse(model=request.model, translations=[
            translation_pb2.TranslationResult(
                hypotheses=[_hypothesis_pb(h, r.source_tokens) for h in r.hypotheses],
                source_tokens=r.source_tokens)
            for r in results])
