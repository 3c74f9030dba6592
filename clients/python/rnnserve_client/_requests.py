"""Request messages built from keyword arguments, shared by the sync and asyncio clients.

Parameters left as None are not set on the message, so the server applies its defaults
(``optional`` proto fields stay absent, the others stay 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict

from rnnserve_client.results import enum_value
from rnnserve_client.v1 import assistant_pb2, generation_pb2, translation_pb2


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


def _set(**fields: object) -> dict[str, object]:
    return {name: value for name, value in fields.items() if value is not None}


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
    return generation_pb2.GenerateRequest(
        model=model,
        prompt=prompt,
        stop=[stop] if isinstance(stop, str) else list(stop or ()),
        logprobs=logprobs,
        **_set(
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            repetition_penalty=repetition_penalty,
            n=n,
            seed=seed,
        ),
    )


def score_request(model: str, text: str, context: str) -> generation_pb2.ScoreRequest:
    """A ScoreRequest."""
    return generation_pb2.ScoreRequest(model=model, text=text, context=context)


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
    return translation_pb2.TranslateRequest(
        model=model,
        texts=[texts] if isinstance(texts, str) else list(texts),
        return_attention=return_attention,
        **_set(
            beam_size=beam_size,
            n_best=n_best,
            length_penalty=length_penalty,
            max_length_ratio=max_length_ratio,
            max_length=max_length,
        ),
    )


def suggest_options(
    kinds: str | Sequence[str], max_suggestions: int, max_phrase_chars: int
) -> assistant_pb2.SuggestOptions:
    """SuggestOptions from kind names (``"word"``, ``"next_words"``, ``"phrase"``)."""
    names = [kinds] if isinstance(kinds, str) else kinds
    return assistant_pb2.SuggestOptions(
        kinds=[enum_value(assistant_pb2.SuggestionKind, name) for name in names],
        max_suggestions=max_suggestions,
        max_phrase_chars=max_phrase_chars,
    )


def suggest_request(model: str, text: str, options: assistant_pb2.SuggestOptions) -> assistant_pb2.SuggestRequest:
    """A SuggestRequest."""
    return assistant_pb2.SuggestRequest(model=model, text=text, options=options)


def session_open(model: str, text: str, options: assistant_pb2.SuggestOptions) -> assistant_pb2.SessionRequest:
    """The first message of a Session stream."""
    return assistant_pb2.SessionRequest(open=assistant_pb2.SessionOpen(model=model, options=options, text=text))


def session_append(text: str) -> assistant_pb2.SessionRequest:
    """An AppendText event."""
    return assistant_pb2.SessionRequest(append=assistant_pb2.AppendText(text=text))


def session_delete(chars: int) -> assistant_pb2.SessionRequest:
    """A DeleteText event."""
    return assistant_pb2.SessionRequest(delete=assistant_pb2.DeleteText(chars=chars))


def session_reset() -> assistant_pb2.SessionRequest:
    """A ResetSession event."""
    return assistant_pb2.SessionRequest(reset=assistant_pb2.ResetSession())
