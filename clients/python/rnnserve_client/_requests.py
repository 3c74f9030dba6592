"""Request messages built from keyword arguments, shared by the sync and asyncio clients.

Parameters left as None are not set on the message, so the server applies its defaults
(``optional`` proto fields stay absent, the others stay 0). A value the message cannot
hold (``top_k=-5`` in a ``uint32``, a ``str`` where a number goes, an unknown kind name)
raises :class:`rnnserve_client.errors.InvalidParameter` naming the parameter, as the
server's messages do, before anything is sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypedDict, TypeVar

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper
from google.protobuf.message import Message

from rnnserve_client.errors import InvalidParameter
from rnnserve_client.results import enum_value, model_kind_name, model_kind_value
from rnnserve_client.v1 import assistant_pb2, generation_pb2, models_pb2, translation_pb2

M = TypeVar("M", bound=Message)

#: The values each integer field type holds.
_INT_RANGES = {
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
}
_PYTHON_TYPES = {
    FieldDescriptor.CPPTYPE_STRING: "a str",
    FieldDescriptor.CPPTYPE_BOOL: "a bool",
    FieldDescriptor.CPPTYPE_FLOAT: "a number",
    FieldDescriptor.CPPTYPE_DOUBLE: "a number",
}


def _refusal(name: str, field: FieldDescriptor, value: object, exc: Exception) -> InvalidParameter:
    """The error for a value protobuf refused for ``field``, named as the caller passed it."""
    if field.type in _INT_RANGES:
        low, high = _INT_RANGES[field.type]
        if isinstance(value, int) and not isinstance(value, bool):
            return InvalidParameter(name, f"{name} must be in [{low}, {high}], got {value}")
        return InvalidParameter(name, f"{name} must be an int in [{low}, {high}], got {type(value).__name__} "
                                      f"{value!r}")
    expected = _PYTHON_TYPES.get(field.cpp_type)
    if expected is not None:
        return InvalidParameter(name, f"{name} must be {expected}, got {type(value).__name__} {value!r}")
    return InvalidParameter(name, f"{name}: {exc}")


def _message(cls: type[M], **fields: Any) -> M:
    """``cls`` with ``fields`` set (None: left unset); a value it cannot hold raises InvalidParameter."""
    message = cls()
    for name, value in fields.items():
        if value is None:
            continue
        field = cls.DESCRIPTOR.fields_by_name[name]
        try:
            if field.is_repeated:
                getattr(message, name).extend(value)
            elif field.message_type is not None:
                getattr(message, name).CopyFrom(value)
            else:
                setattr(message, name, value)
        except (ValueError, TypeError, OverflowError) as exc:
            if field.is_repeated and isinstance(value, Sequence):
                value = next((v for v in value if not _holds(cls, name, v)), value)  # the entry refused
            raise _refusal(name, field, value, exc) from exc
    return message


def _holds(cls: type[Message], name: str, value: object) -> bool:
    """Whether the repeated field ``name`` of ``cls`` takes ``value``."""
    try:
        getattr(cls(), name).append(value)
    except (ValueError, TypeError, OverflowError):
        return False
    return True


def _enum(parameter: str, enum: EnumTypeWrapper, name: str) -> int:
    try:
        return enum_value(enum, name)
    except ValueError as exc:
        raise InvalidParameter(parameter, f"{parameter}: {exc}") from exc


class GenerateOptions(TypedDict, total=False):
    """Sampling parameters of ``generate`` and ``generate_stream`` (all optional)."""

    #: Tokens to generate per sample; None: the server's default.
    max_new_tokens: int | None
    #: Softmax temperature; 0 is greedy decoding. None: 1.0.
    temperature: float | None
    #: Sample among the k most likely tokens only. None: no limit.
    top_k: int | None
    #: Nucleus sampling threshold in (0, 1]. None: off.
    top_p: float | None
    #: CTRL-style repetition penalty in (0, 10]. None: off.
    repetition_penalty: float | None
    #: Number of independent samples. None: 1.
    n: int | None
    #: Stop sequence(s); never part of the returned text.
    stop: str | Sequence[str] | None
    #: Sampler seed; sample i uses seed + i. None: the server draws one.
    seed: int | None
    #: Return the log-probability of every generated token.
    logprobs: bool


class TranslateOptions(TypedDict, total=False):
    """Decoding options of ``translate`` (all optional)."""

    #: Beam width; 1 is greedy. None: the model's default.
    beam_size: int | None
    #: Hypotheses returned per text, best first. None: 1.
    n_best: int | None
    #: GNMT length penalty alpha in [0, 5]. None: the model's default.
    length_penalty: float | None
    #: Maximum target length as a multiple of the source length. None: model default.
    max_length_ratio: float | None
    #: Absolute cap on the target length in pieces. None: the model's default.
    max_length: int | None
    #: Return each hypothesis's attention matrix.
    return_attention: bool


def generate_request(
    model: str,
    prompt: str,
    *,
    max_new_tokens: int | None = None,
    temperature: float | None = None,
    top_k: int | None = None,
    top_p: float | None = None,
    repetition_penalty: float | None = None,
    n: int | None = None,
    stop: str | Sequence[str] | None = None,
    seed: int | None = None,
    logprobs: bool = False,
) -> generation_pb2.GenerateRequest:
    """A GenerateRequest; see :class:`GenerateOptions` for the parameters."""
    return _message(
        generation_pb2.GenerateRequest,
        model=model,
        prompt=prompt,
        stop=[stop] if isinstance(stop, str) else list(stop or ()),
        logprobs=logprobs,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        repetition_penalty=repetition_penalty,
        n=n,
        seed=seed,
    )


def score_request(model: str, text: str, context: str) -> generation_pb2.ScoreRequest:
    """A ScoreRequest."""
    return _message(generation_pb2.ScoreRequest, model=model, text=text, context=context)


def translate_request(
    model: str,
    texts: str | Sequence[str],
    *,
    beam_size: int | None = None,
    n_best: int | None = None,
    length_penalty: float | None = None,
    max_length_ratio: float | None = None,
    max_length: int | None = None,
    return_attention: bool = False,
) -> translation_pb2.TranslateRequest:
    """A TranslateRequest; a single str is one text. See :class:`TranslateOptions`."""
    return _message(
        translation_pb2.TranslateRequest,
        model=model,
        texts=[texts] if isinstance(texts, str) else list(texts),
        return_attention=return_attention,
        beam_size=beam_size,
        n_best=n_best,
        length_penalty=length_penalty,
        max_length_ratio=max_length_ratio,
        max_length=max_length,
    )


def suggest_options(
    kinds: str | Sequence[str], max_suggestions: int, max_phrase_chars: int
) -> assistant_pb2.SuggestOptions:
    """SuggestOptions from kind names (``"word"``, ``"next_words"``, ``"phrase"``)."""
    names = [kinds] if isinstance(kinds, str) else kinds
    return _message(
        assistant_pb2.SuggestOptions,
        kinds=[_enum("kinds", assistant_pb2.SuggestionKind, name) for name in names],
        max_suggestions=max_suggestions,
        max_phrase_chars=max_phrase_chars,
    )


def list_models_request(kind: str | None) -> models_pb2.ListModelsRequest:
    """A ListModelsRequest; ``kind`` is ``"language-model"``, ``"translator"``, ``"assistant"`` or None (all)."""
    try:
        value = model_kind_value(kind) if kind else 0
    except ValueError as exc:
        names = ", ".join(repr(model_kind_name(v)) for v in models_pb2.ModelKind.values() if v)
        raise InvalidParameter("kind", f"kind must be one of {names} or None, got {kind!r}") from exc
    return models_pb2.ListModelsRequest(kind=value)


def suggest_request(model: str, text: str, options: assistant_pb2.SuggestOptions) -> assistant_pb2.SuggestRequest:
    """A SuggestRequest."""
    return _message(assistant_pb2.SuggestRequest, model=model, text=text, options=options)


def session_open(model: str, text: str, options: assistant_pb2.SuggestOptions) -> assistant_pb2.SessionRequest:
    """The first message of a Session stream."""
    return assistant_pb2.SessionRequest(
        open=_message(assistant_pb2.SessionOpen, model=model, options=options, text=text))


def session_append(text: str) -> assistant_pb2.SessionRequest:
    """An AppendText event."""
    return assistant_pb2.SessionRequest(append=_message(assistant_pb2.AppendText, text=text))


def session_delete(chars: int) -> assistant_pb2.SessionRequest:
    """A DeleteText event."""
    return assistant_pb2.SessionRequest(delete=_message(assistant_pb2.DeleteText, chars=chars))


def session_reset() -> assistant_pb2.SessionRequest:
    """A ResetSession event."""
    return assistant_pb2.SessionRequest(reset=assistant_pb2.ResetSession())
