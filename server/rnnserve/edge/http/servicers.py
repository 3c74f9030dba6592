"""The gRPC servicers the HTTP routes call (the same objects the gRPC server serves)."""

from __future__ import annotations

from dataclasses import dataclass

from rnnserve.edge.services.assistant import AssistantService
from rnnserve.edge.services.generation import GenerationService
from rnnserve.edge.services.models import ModelsService
from rnnserve.edge.services.translation import TranslationService


@dataclass(frozen=True)
class Servicers:
    generation: GenerationService
    translation: TranslationService
    assistant: AssistantService
    models: ModelsService
