"""The gRPC servicers the HTTP routes call (the same objects the gRPC server serves)."""

from __future__ import annotations

from dataclasses import dataclass

from rnnserve.services.assistant import AssistantService
from rnnserve.services.generation import GenerationService
from rnnserve.services.models import ModelsService
from rnnserve.services.translation import TranslationService


@dataclass(frozen=True)
class Servicers:
    generation: GenerationService
    translation: TranslationService
    assistant: AssistantService
    models: ModelsService
