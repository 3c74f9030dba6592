"""Plain result types, converted from the wire messages in one place.

Every call returns frozen dataclasses from this module instead of protobuf messages;
each has a ``from_pb`` classmethod. Enum values become lowercase strings: finish reasons
(``"length"``, ``"stop_sequence"``, ``"end_of_text"``, ``"cancelled"``), suggestion kinds
(``"word"``, ``"next_words"``, ``"phrase"``), model states (``"loading"``, ``"ready"``,
``"failed"``) and model kinds, which use the server's spelling (``"language-model"``,
``"translator"``, ``"assistant"``). A value added to the API after this client was built
comes through as its number, e.g. ``"7"``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper

from rnnserve_client.v1 import assistant_pb2, generation_pb2, models_pb2, translation_pb2


def enum_name(enum: EnumTypeWrapper, value: int) -> str:
    """``FINISH_REASON_STOP_SEQUENCE`` -> ``"stop_sequence"`` (the enum's prefix removed)."""
    try:
        name = enum.Name(value)
    except ValueError:
        return str(value)
    prefix = enum.DESCRIPTOR.values[0].name.removesuffix("UNSPECIFIED")
    return name.removeprefix(prefix).lower()


def enum_value(enum: EnumTypeWrapper, name: str) -> int:
    """The inverse of :func:`enum_name`; ValueError listing the valid names otherwise."""
    choices = {enum_name(enum, value): value for value in enum.values() if value}
    if name not in choices:
        raise ValueError(f"unknown {enum.DESCRIPTOR.name} {name!r}; expected one of {sorted(choices)}")
    return choices[name]


def model_kind_name(value: int) -> str:
    """``MODEL_KIND_LANGUAGE_MODEL`` -> ``"language-model"``."""
    return enum_name(models_pb2.ModelKind, value).replace("_", "-")


def model_kind_value(name: str) -> int:
    """``"language-model"`` -> ``MODEL_KIND_LANGUAGE_MODEL``."""
    return enum_value(models_pb2.ModelKind, name.replace("-", "_"))


@dataclass(frozen=True, slots=True)
class ModelCard:
    """Documentation of a trained model."""

    description: str
    data: str
    split: str
    training_command: str
    #: Evaluation metrics on the held-out split, e.g. ``{"test_bits_per_char": 1.6}``.
    metrics: dict[str, float]
    license: str
    limitations: str

    @classmethod
    def from_pb(cls, pb: models_pb2.ModelCard) -> ModelCard:
        return cls(
            description=pb.description,
            data=pb.data,
            split=pb.split,
            training_command=pb.training_command,
            metrics=dict(pb.metrics),
            license=pb.license,
            limitations=pb.limitations,
        )


@dataclass(frozen=True, slots=True)
class ModelStats:
    """Live counters of a model's scheduler."""

    queue_depth: int
    active_sequences: int
    steps_total: int
    tokens_total: int
    requests_total: int
    rejected_total: int
    mean_batch_size: float
    #: Backend-specific counters, e.g. ``{"prefix_cache_hits": 12.0}``.
    backend_counters: dict[str, float]
    #: Steps run for searches lent the model (a writing assistant's), and their mean rows.
    lent_steps_total: int = 0
    mean_lent_rows: float = 0.0

    @classmethod
    def from_pb(cls, pb: models_pb2.ModelStats) -> ModelStats:
        return cls(
            queue_depth=pb.queue_depth,
            active_sequences=pb.active_sequences,
            steps_total=pb.steps_total,
            tokens_total=pb.tokens_total,
            requests_total=pb.requests_total,
            rejected_total=pb.rejected_total,
            mean_batch_size=pb.mean_batch_size,
            backend_counters=dict(pb.backend_counters),
            lent_steps_total=pb.lent_steps_total,
            mean_lent_rows=pb.mean_lent_rows,
        )


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """A model hosted by the server."""

    name: str
    #: ``"language-model"``, ``"translator"`` or ``"assistant"``.
    kind: str
    backend: str
    plugin: str
    plugin_version: str
    #: ``"loading"``, ``"ready"`` or ``"failed"``.
    state: str
    #: Why the model failed to load ("" otherwise).
    reason: str
    parameter_count: int
    card: ModelCard
    stats: ModelStats
    #: Precision of the weights as loaded: ``"float32"``, ``"bfloat16"``, ``"int8"``; "" until ready
    #: or when unknown. Seeds reproduce exactly whatever the batch in float32 only.
    precision: str = ""
    #: How ``precision`` was chosen when measured (``dtype = "auto"``): a one-line reason with the
    #: timings; "" when the model's options set it.
    precision_choice: str = ""

    @classmethod
    def from_pb(cls, pb: models_pb2.Model) -> ModelInfo:
        return cls(
            name=pb.name,
            kind=model_kind_name(pb.kind),
            backend=pb.backend,
            plugin=pb.plugin,
            plugin_version=pb.plugin_version,
            state=enum_name(models_pb2.ModelState, pb.state),
            reason=pb.reason,
            parameter_count=pb.parameter_count,
            card=ModelCard.from_pb(pb.card),
            stats=ModelStats.from_pb(pb.stats),
            precision=pb.precision,
            precision_choice=pb.precision_choice,
        )


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    """The natural-log probability of one token."""

    token: str
    logprob: float

    @classmethod
    def from_pb(cls, pb: generation_pb2.TokenLogprob) -> TokenLogprob:
        return cls(token=pb.token, logprob=pb.logprob)


def _logprobs(pbs: Iterable[generation_pb2.TokenLogprob]) -> list[TokenLogprob]:
    return [TokenLogprob.from_pb(pb) for pb in pbs]


@dataclass(frozen=True, slots=True)
class Completion:
    """One finished sample of a generation."""

    index: int
    text: str
    #: ``"length"``, ``"stop_sequence"``, ``"end_of_text"`` or ``"cancelled"``.
    finish_reason: str
    #: The seed the sample was drawn with (request seed + index).
    seed: int
    generated_tokens: int
    #: Per-token log-probabilities (empty unless requested with ``logprobs=True``).
    logprobs: list[TokenLogprob]
    #: The stop sequence that ended the sample, or None.
    stop_sequence: str | None

    @classmethod
    def from_pb(cls, pb: generation_pb2.Completion) -> Completion:
        return cls(
            index=pb.index,
            text=pb.text,
            finish_reason=enum_name(generation_pb2.FinishReason, pb.finish_reason),
            seed=pb.seed,
            generated_tokens=pb.generated_tokens,
            logprobs=_logprobs(pb.logprobs),
            stop_sequence=pb.stop_sequence or None,
        )


@dataclass(frozen=True, slots=True)
class Timing:
    """Server-side timings of one call, in seconds."""

    queue_seconds: float
    prefill_seconds: float
    generation_seconds: float

    @classmethod
    def from_pb(cls, pb: generation_pb2.Timing) -> Timing:
        return cls(
            queue_seconds=pb.queue_seconds,
            prefill_seconds=pb.prefill_seconds,
            generation_seconds=pb.generation_seconds,
        )


@dataclass(frozen=True, slots=True)
class GenerateResult:
    """The result of ``generate``: every sample, plus shortcuts to sample 0."""

    model: str
    #: One completion per sample, ordered by index.
    completions: list[Completion]
    prompt_tokens: int
    #: Distinct prompt characters outside the model's vocabulary.
    unknown_characters: list[str]
    timing: Timing

    @property
    def text(self) -> str:
        """The text of sample 0."""
        return self.completions[0].text

    @property
    def finish_reason(self) -> str:
        """Why sample 0 stopped."""
        return self.completions[0].finish_reason

    @property
    def seed(self) -> int:
        """The seed of sample 0 (the request's seed, or the one the server drew)."""
        return self.completions[0].seed

    @classmethod
    def from_pb(cls, pb: generation_pb2.GenerateResponse) -> GenerateResult:
        return cls(
            model=pb.model,
            completions=[Completion.from_pb(c) for c in pb.completions],
            prompt_tokens=pb.prompt_tokens,
            unknown_characters=list(pb.unknown_characters),
            timing=Timing.from_pb(pb.timing),
        )


@dataclass(frozen=True, slots=True)
class GenerateChunk:
    """One streamed chunk of a sample; chunks of different samples interleave."""

    #: Which sample the chunk belongs to.
    index: int
    #: New text of the sample since its previous chunk.
    text: str
    #: None until the last chunk of the sample, then like ``Completion.finish_reason``.
    finish_reason: str | None
    seed: int
    logprobs: list[TokenLogprob]
    #: On the last chunk: tokens generated, including any stop sequence (0 before).
    generated_tokens: int
    #: On the last chunk of a sample ended by a stop sequence: that sequence.
    stop_sequence: str | None
    #: On the first chunk of each sample: prompt characters outside the vocabulary.
    unknown_characters: list[str]

    @classmethod
    def from_pb(cls, pb: generation_pb2.GenerateStreamResponse) -> GenerateChunk:
        finished = pb.finish_reason != generation_pb2.FINISH_REASON_UNSPECIFIED
        return cls(
            index=pb.index,
            text=pb.text,
            finish_reason=enum_name(generation_pb2.FinishReason, pb.finish_reason) if finished else None,
            seed=pb.seed,
            logprobs=_logprobs(pb.logprobs),
            generated_tokens=pb.generated_tokens,
            stop_sequence=pb.stop_sequence or None,
            unknown_characters=list(pb.unknown_characters),
        )


@dataclass(frozen=True, slots=True)
class ScoreResult:
    """The log-probability of each token of a text."""

    model: str
    #: One per token; their texts joined are the scored text.
    logprobs: list[TokenLogprob]
    #: Sum of the log-probabilities, in nats.
    total_logprob: float
    #: Cross-entropy per character of the text, in nats.
    nats_per_char: float
    #: Cross-entropy per character of the text, in bits.
    bits_per_char: float
    #: Perplexity per token, ``exp(nats_per_token)``.
    perplexity: float
    unknown_characters: list[str]
    #: Cross-entropy per token, in nats (per character for a character-level model).
    nats_per_token: float = 0.0

    @classmethod
    def from_pb(cls, pb: generation_pb2.ScoreResponse) -> ScoreResult:
        return cls(
            model=pb.model,
            logprobs=_logprobs(pb.logprobs),
            total_logprob=pb.total_logprob,
            nats_per_char=pb.nats_per_char,
            bits_per_char=pb.bits_per_char,
            perplexity=pb.perplexity,
            unknown_characters=list(pb.unknown_characters),
            nats_per_token=pb.nats_per_token,
        )


def attention_rows(pb: translation_pb2.Attention) -> list[list[float]]:
    """The row-major weights as ``len(target_tokens)`` rows of ``len(source_tokens)``."""
    rows, cols = len(pb.target_tokens), len(pb.source_tokens)
    if len(pb.weights) != rows * cols:
        raise ValueError(f"attention has {len(pb.weights)} weights for {rows} x {cols} tokens")
    weights = list(pb.weights)
    return [weights[r * cols : (r + 1) * cols] for r in range(rows)]


@dataclass(frozen=True, slots=True)
class Hypothesis:
    """One candidate translation."""

    text: str
    #: The ranking score: ``log_probability`` after the length penalty.
    score: float
    #: Sum of the target pieces' log-probabilities, in nats.
    log_probability: float
    #: The target subword pieces.
    tokens: list[str]
    #: ``attention[t][s]``: weight of source piece ``s`` for target piece ``t``; None
    #: unless requested with ``return_attention=True``.
    attention: list[list[float]] | None
    #: The attention's column labels (may end with an end-of-sentence marker).
    attention_source_tokens: list[str]
    #: The attention's row labels.
    attention_target_tokens: list[str]

    @classmethod
    def from_pb(cls, pb: translation_pb2.Hypothesis) -> Hypothesis:
        has_attention = pb.HasField("attention")
        return cls(
            text=pb.text,
            score=pb.score,
            log_probability=pb.log_probability,
            tokens=list(pb.tokens),
            attention=attention_rows(pb.attention) if has_attention else None,
            attention_source_tokens=list(pb.attention.source_tokens),
            attention_target_tokens=list(pb.attention.target_tokens),
        )


@dataclass(frozen=True, slots=True)
class TranslationResult:
    """The translations of one source text."""

    #: Hypotheses, best first.
    hypotheses: list[Hypothesis]
    #: The source subword pieces the model read.
    source_tokens: list[str]

    @property
    def text(self) -> str:
        """The best hypothesis's text."""
        return self.hypotheses[0].text

    @classmethod
    def from_pb(cls, pb: translation_pb2.TranslationResult) -> TranslationResult:
        return cls(hypotheses=[Hypothesis.from_pb(h) for h in pb.hypotheses], source_tokens=list(pb.source_tokens))


@dataclass(frozen=True, slots=True)
class Suggestion:
    """One writing suggestion."""

    #: The text as it reads after accepting the suggestion.
    text: str
    #: ``"word"``, ``"next_words"`` or ``"phrase"``.
    kind: str
    #: Probability normalised over the returned suggestions of this kind.
    probability: float
    #: The model's probability of this continuation.
    absolute_probability: float
    #: What an editor inserts at the cursor to accept it.
    insert_text: str
    #: How many characters before the cursor the suggestion replaces.
    replace_chars: int

    @classmethod
    def from_pb(cls, pb: assistant_pb2.Suggestion) -> Suggestion:
        return cls(
            text=pb.text,
            kind=enum_name(assistant_pb2.SuggestionKind, pb.kind),
            probability=pb.probability,
            absolute_probability=pb.absolute_probability,
            insert_text=pb.insert_text,
            replace_chars=pb.replace_chars,
        )


def suggestions(pbs: Iterable[assistant_pb2.Suggestion]) -> list[Suggestion]:
    """Convert a repeated Suggestion field."""
    return [Suggestion.from_pb(pb) for pb in pbs]
