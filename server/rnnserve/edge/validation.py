"""Request validation: protobuf requests -> checked parameter objects, before any model work.

Every violation raises InvalidArgument (or LimitExceeded, whose message names the limit).
What a request may cost is bounded here, before any work: prompt and text sizes, tokens,
samples, stop sequences, texts per call, beams per call (sentences x beam_size, with
n_best <= beam_size), suggestions and phrase length; message size is bounded by gRPC
(``max_message_bytes``), sessions and calls in flight by the services and the admission
interceptor.

Messages name what the client sent as it sent it: fields by their proto names, enum
values by their wire names (``SUGGESTION_KIND_WORD``), and a default the server filled in
as the model's default.

Empty input, one rule for every RPC (README "API"): a text the call is about (Score's
``text``, each of Translate's ``texts``) must not be empty; a text the call starts from
(a prompt, a Score context, an assistant document) may be.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper

from rnnserve.backends import SuggestionKind, SuggestOptions, TranslateOptions
from rnnserve.edge.errors import InvalidArgument, LimitExceeded
from rnnserve.ops.config import Limits
from rnnserve.runtime.sampling import MAX_SEED, SamplingParams
from rnnserve_client.v1 import assistant_pb2, generation_pb2, translation_pb2

SUGGESTION_KINDS = {
    assistant_pb2.SUGGESTION_KIND_WORD: SuggestionKind.WORD,
    assistant_pb2.SUGGESTION_KIND_NEXT_WORDS: SuggestionKind.NEXT_WORDS,
    assistant_pb2.SUGGESTION_KIND_PHRASE: SuggestionKind.PHRASE,
}


def unknown_enum(field: str, enum: EnumTypeWrapper, value: int) -> InvalidArgument:
    """The error for an enum value this server does not know, listing the valid ones by their wire names."""
    valid = ", ".join(name for name, number in enum.items() if number)
    return InvalidArgument(f"{field}: unknown {enum.DESCRIPTOR.name} value {value}; valid: {valid}")


#: Unicode categories with nothing to translate in them: separators, control and format characters.
_BLANK_CATEGORIES = frozenset({"Zs", "Zl", "Zp", "Cc", "Cf"})


def is_blank(text: str) -> bool:
    """Whether ``text`` holds nothing to translate: no characters, or only whitespace, control and format ones."""
    return all(ch.isspace() or unicodedata.category(ch) in _BLANK_CATEGORIES for ch in text)


def _in_range(name: str, value: float, low: float, high: float, *, low_open: bool = False) -> float:
    if math.isnan(value) or value > high or value < low or (low_open and value == low):
        bracket = "(" if low_open else "["
        raise InvalidArgument(f"{name} must be in {bracket}{low}, {high}], got {value}")
    return value


def check_chars(what: str, text: str, limit_name: str, limit: int) -> None:
    if len(text) > limit:
        raise LimitExceeded(f"{what} length", len(text), limit_name, limit)


#: Model names are short identifiers; longer ones are refused before any lookup (and never echoed whole).
MAX_MODEL_NAME_CHARS = 256


def check_model_name(name: str, field: str = "model") -> None:
    if not name:
        raise InvalidArgument(f"{field} is required (see Models.ListModels)")
    if len(name) > MAX_MODEL_NAME_CHARS:
        raise InvalidArgument(f"{field} is {len(name)} characters long; model names have at most "
                              f"{MAX_MODEL_NAME_CHARS}")


def sampling_params(request: generation_pb2.GenerateRequest, limits: Limits) -> SamplingParams:
    """Checked SamplingParams of a GenerateRequest."""
    check_model_name(request.model)
    check_chars("prompt", request.prompt, "max_prompt_chars", limits.max_prompt_chars)
    max_new = request.max_new_tokens or limits.default_max_new_tokens
    if max_new > limits.max_new_tokens:
        raise LimitExceeded("max_new_tokens", max_new, "max_new_tokens", limits.max_new_tokens)
    n = request.n or 1
    if n > limits.max_n:
        raise LimitExceeded("n", n, "max_n", limits.max_n)
    stops = tuple(request.stop)
    if len(stops) > limits.max_stop_sequences:
        raise LimitExceeded("number of stop sequences", len(stops), "max_stop_sequences", limits.max_stop_sequences)
    for stop in stops:
        if not stop:
            raise InvalidArgument("stop sequences must not be empty")
        check_chars("stop sequence", stop, "max_stop_chars", limits.max_stop_chars)
    temperature = request.temperature if request.HasField("temperature") else 1.0
    top_p = request.top_p if request.HasField("top_p") else 1.0
    penalty = request.repetition_penalty if request.HasField("repetition_penalty") else 1.0
    seed = request.seed if request.HasField("seed") else None
    if seed is not None and seed > MAX_SEED - limits.max_n:
        raise InvalidArgument(f"seed must be below {MAX_SEED - limits.max_n}, got {seed}")
    return SamplingParams(
        max_new_tokens=max_new,
        temperature=_in_range("temperature", temperature, 0.0, 100.0),
        top_k=request.top_k,
        top_p=_in_range("top_p", top_p, 0.0, 1.0, low_open=True),
        repetition_penalty=_in_range("repetition_penalty", penalty, 0.0, 10.0, low_open=True),
        n=n,
        stop=stops,
        seed=seed,
        logprobs=request.logprobs,
    )


def score_inputs(request: generation_pb2.ScoreRequest, limits: Limits) -> None:
    check_model_name(request.model)
    if not request.text:
        raise InvalidArgument("text to score must not be empty (an empty context is fine; see the API's empty "
                              "input rule)")
    check_chars("context + text", request.context + request.text, "max_prompt_chars", limits.max_prompt_chars)


@dataclass(frozen=True)
class TranslateCall:
    """A checked Translate request: its options and the sentences each text decodes as."""

    options: TranslateOptions
    #: sentences[i]: the units the model decodes for texts[i] (after NFKC normalisation).
    sentences: list[list[str]]

    @property
    def units(self) -> int:
        """Sentences of the whole call: what the batching and the limits count."""
        return sum(map(len, self.sentences))


def translate_call(request: translation_pb2.TranslateRequest, limits: Limits, defaults: TranslateOptions,
                   split: Callable[[str], list[str]] = lambda text: [text]) -> TranslateCall:
    """Checked options of a TranslateRequest, defaults from the model; ``split`` cuts a text into
    the sentences the model decodes (``Translator.sentences``), which the limits count: each
    sentence within ``max_text_chars``, a whole text within ``max_document_chars``, and all
    sentences x beam_size within ``max_translation_beams``."""
    check_model_name(request.model)
    if not request.texts:
        raise InvalidArgument("texts must hold at least one text")
    if len(request.texts) > limits.max_texts_per_call:
        raise LimitExceeded("number of texts", len(request.texts), "max_texts_per_call", limits.max_texts_per_call)
    # Subword models normalise first (NFKC): one character can become 18 ("\ufdfa"), and the
    # limits bound the work only if they count what the model reads.
    texts = [unicodedata.normalize("NFKC", text) for text in request.texts]
    sentences = []
    for i, text in enumerate(texts):
        check_chars(f"texts[{i}] (after NFKC normalisation)", text, "max_document_chars", limits.max_document_chars)
        if is_blank(text):
            what = "is empty" if not text else "holds only whitespace, control or format characters"
            raise InvalidArgument(f"texts[{i}] {what}: nothing to translate (see the API's empty input rule)")
        sentences.append(split(text))
        for j, sentence in enumerate(sentences[-1]):
            where = f"texts[{i}] sentence {j}" if len(sentences[-1]) > 1 else f"texts[{i}]"
            check_chars(f"{where} (after NFKC normalisation)", sentence, "max_text_chars", limits.max_text_chars)
    beam = request.beam_size or defaults.beam_size
    beam_label = f"beam_size ({beam})" if request.beam_size else f"beam_size ({beam}, the model's default)"
    if beam > limits.max_beam_size:
        raise LimitExceeded("beam_size" if request.beam_size else "beam_size (the model's default)", beam,
                            "max_beam_size", limits.max_beam_size)
    n_best = request.n_best or 1
    if n_best > beam:
        raise InvalidArgument(f"n_best ({n_best}) must not exceed {beam_label}")
    call = TranslateCall(TranslateOptions(
        beam_size=beam,
        n_best=n_best,
        length_penalty=_in_range("length_penalty", request.length_penalty, 0.0, 5.0)
        if request.HasField("length_penalty") else defaults.length_penalty,
        max_length_ratio=_in_range("max_length_ratio", request.max_length_ratio, 0.0, 10.0, low_open=True)
        if request.HasField("max_length_ratio") else defaults.max_length_ratio,
        max_length=min(request.max_length or defaults.max_length, defaults.max_length),
        return_attention=request.return_attention,
    ), sentences)
    beams = call.units * beam
    if beams > limits.max_translation_beams:
        raise LimitExceeded("sentences of all texts x beam_size", beams, "max_translation_beams",
                            limits.max_translation_beams)
    options = call.options
    if options.return_attention:
        # target x source weights per hypothesis of each text (a document's matrix spans all its
        # sentences); a character bounds a source token from above
        floats = 0
        for parts in sentences:
            sources = sum(len(part) + 1 for part in parts)
            targets = sum(min(options.max_length, math.ceil(options.max_length_ratio * (len(part) + 1)))
                          for part in parts)
            floats += n_best * targets * sources
        if 4 * floats > limits.max_message_bytes:
            raise LimitExceeded("attention weights (bytes, at most)", 4 * floats, "max_message_bytes",
                                limits.max_message_bytes)
    return call


def suggest_options(options: assistant_pb2.SuggestOptions, limits: Limits) -> SuggestOptions:
    """Checked SuggestOptions."""
    if len(options.kinds) > 2 * len(SUGGESTION_KINDS):
        raise InvalidArgument(f"kinds lists {len(options.kinds)} entries; there are {len(SUGGESTION_KINDS)} kinds")
    kinds = []
    for raw in options.kinds:
        if raw not in SUGGESTION_KINDS:
            raise unknown_enum("options.kinds", assistant_pb2.SuggestionKind, raw)
        kinds.append(SUGGESTION_KINDS[raw])
    count = options.max_suggestions or 3
    if count > limits.max_suggestions:
        raise LimitExceeded("max_suggestions", count, "max_suggestions", limits.max_suggestions)
    if options.max_phrase_chars > limits.max_phrase_chars:
        raise LimitExceeded("max_phrase_chars", options.max_phrase_chars, "max_phrase_chars", limits.max_phrase_chars)
    return SuggestOptions(tuple(dict.fromkeys(kinds)) or (SuggestionKind.WORD,), count, options.max_phrase_chars)
