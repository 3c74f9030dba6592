"""Backend contracts: what a plugin implements so the host can serve its models.

Three kinds of backend, one per API service:

* :class:`LanguageModel` (``Generation``): implements only the model math, a batched
  ``forward`` over token ids and a recurrent state. The host does everything else once
  for every language model: prefill, continuous batching, sampling, stop sequences,
  streaming, cancellation, scoring.
* :class:`Translator` (``Translation``): translates a batch of texts.
* :class:`Assistant` (``Assistant``): suggestions for the text before a cursor, and
  incremental sessions.

A backend factory (registered through the ``register_backends`` hook) builds one backend
instance per configured model: ``factory(spec, context) -> backend``.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # torch loads with the first model, not with a plugin's hook module
    import torch

    from rnnserve.host.model_spec import ModelSpec

#: A recurrent state: a tuple of tensors, each with a batch dimension declared by the
#: backend in ``LanguageModel.state_batch_dims`` (e.g. an LSTM's (h, c), each
#: [layers, batch, hidden] with batch dim 1).
State = tuple["torch.Tensor", ...]


class ModelKind(enum.Enum):
    """Which service serves a backend's models."""

    LANGUAGE_MODEL = "language-model"
    TRANSLATOR = "translator"
    ASSISTANT = "assistant"


class Vocabulary(Protocol):
    """Maps text to token ids and back.

    Text outside the vocabulary never raises: ``encode`` maps it to ``unk_id`` and
    reports the distinct unknown characters.
    """

    @property
    def size(self) -> int:
        """Number of token ids (the logits' last dimension)."""

    @property
    def bos_id(self) -> int:
        """Token fed first, before any text: the model's start-of-text input."""

    @property
    def eos_id(self) -> int | None:
        """Token that ends a generation (finish reason END_OF_TEXT), or None."""

    def encode(self, text: str) -> tuple[list[int], list[str]]:
        """Token ids of ``text`` and the distinct characters that were unknown."""

    def decode(self, ids: Sequence[int]) -> str:
        """Text of a sequence of token ids (special tokens decode to "")."""


class BackendBase(ABC):
    """What every backend offers the host besides its kind's own methods."""

    #: How the backend's precision was chosen, when it measured it (``rnnserve.host.precision_choice``:
    #: ``PrecisionChoice.reason``); ``GetModel`` shows it as ``precision_choice``. "" when the
    #: model's options set the precision.
    precision_choice: str = ""

    @abstractmethod
    def parameter_count(self) -> int:
        """Number of trainable parameters."""

    def counters(self) -> dict[str, float]:
        """Backend-specific counters for ``Models.GetModel`` (e.g. cache hits); none by default."""
        return {}


class LanguageModel(BackendBase):
    """A recurrent language model. Implement ``forward`` (and optionally a faster ``step``).

    All methods are called from the model's single scheduler thread, under
    ``torch.inference_mode()``.
    """

    kind = ModelKind.LANGUAGE_MODEL
    #: The batch dimension of each tensor of the state, in order.
    state_batch_dims: tuple[int, ...]

    @property
    @abstractmethod
    def vocab(self) -> Vocabulary:
        """The model's vocabulary."""

    @abstractmethod
    def initial_state(self, batch_size: int) -> State:
        """The state before any input, for ``batch_size`` sequences."""

    @abstractmethod
    def forward(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """Read a block of tokens (prefill, scoring).

        Args:
            tokens: [batch, time] int64 token ids.
            state: the state before ``tokens``, batch ``batch``.
        Returns:
            logits [batch, time, vocab] (float32; position t predicts token t+1) and the
            state after the last token.
        """

    def step(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """Read one token per sequence (decoding). Override with a faster fused step.

        Args:
            tokens: [batch] int64 token ids.
        Returns:
            logits [batch, vocab] and the new state.
        """
        logits, state = self.forward(tokens[:, None], state)
        return logits[:, 0], state


@dataclass(frozen=True)
class TranslateOptions:
    """Decoding options of one translate call (already validated and defaulted by the host)."""

    beam_size: int = 5
    n_best: int = 1
    length_penalty: float = 1.0
    max_length_ratio: float = 2.0
    max_length: int = 256
    return_attention: bool = False


@dataclass
class Hypothesis:
    """One candidate translation. ``attention`` is [target pieces][source pieces] when requested."""

    text: str
    score: float
    log_probability: float
    tokens: list[str]
    attention: list[list[float]] | None = None


@dataclass
class TranslationResult:
    """The n-best hypotheses of one source text, best first."""

    hypotheses: list[Hypothesis]
    source_tokens: list[str] = field(default_factory=list)


class Translator(BackendBase):
    """A sequence-to-sequence translation model; the host batches texts from concurrent calls."""

    kind = ModelKind.TRANSLATOR
    #: Defaults the host applies when a request leaves an option unset.
    default_options = TranslateOptions()

    @abstractmethod
    def translate(self, texts: list[str], options: TranslateOptions) -> list[TranslationResult]:
        """Translate a batch of texts with one set of options; one result per text, in order."""

    def sentences(self, text: str) -> list[str]:
        """The units ``translate`` decodes for ``text``; the host's limits and batching count
        these (a document of several sentences costs as many). Default: the text is one unit."""
        return [text]


class SuggestionKind(enum.Enum):
    WORD = "word"
    NEXT_WORDS = "next-words"
    PHRASE = "phrase"


@dataclass(frozen=True)
class SuggestOptions:
    """What to suggest (validated and defaulted by the host)."""

    kinds: tuple[SuggestionKind, ...] = (SuggestionKind.WORD,)
    max_suggestions: int = 3
    max_phrase_chars: int = 0  # 0: the backend's default


@dataclass
class Suggestion:
    """One suggestion; see ``rnnserve.v1.Suggestion`` for the meaning of each field."""

    text: str
    kind: SuggestionKind
    probability: float
    absolute_probability: float
    insert_text: str
    replace_chars: int = 0


class AssistantSession(ABC):
    """An incremental editing session over one document (text before the cursor)."""

    @abstractmethod
    def append(self, text: str) -> None:
        """Append text at the cursor."""

    @abstractmethod
    def delete(self, chars: int) -> None:
        """Delete up to ``chars`` characters before the cursor."""

    @abstractmethod
    def reset(self) -> None:
        """Clear the document."""

    @abstractmethod
    def suggestions(self) -> list[Suggestion]:
        """Suggestions for the document as it stands."""

    @property
    @abstractmethod
    def document_chars(self) -> int:
        """Length of the document."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the session's resources."""


class Assistant(BackendBase):
    """A writing assistant."""

    kind = ModelKind.ASSISTANT
    #: How many of its calls (suggest, session events) the host may run at once, each on its
    #: own thread; 1: one at a time, in order. A backend whose math all runs on a borrowed
    #: language model's thread (``SharedLanguageModel``) can allow many, so that concurrent
    #: calls' model steps are batched there.
    concurrent_calls: int = 1

    @abstractmethod
    def suggest(self, text: str, options: SuggestOptions) -> list[Suggestion]:
        """Suggestions for ``text`` (the text before the cursor)."""

    @abstractmethod
    def open_session(self, options: SuggestOptions, text: str = "") -> AssistantSession:
        """Start an incremental session."""


Backend = LanguageModel | Translator | Assistant


@dataclass(frozen=True)
class SharedLanguageModel:
    """A language model served by the host, lent to another backend (plugins building on plugins).

    ``call(fn)`` runs ``fn`` on the model's scheduler thread between two decoding steps
    and returns its result, keeping the rule that a model's math runs on one thread.
    ``run_steps(make)`` runs the step program ``make()`` there (``rnnserve.runtime.step_programs``:
    a generator that yields the model steps it needs), batching its steps with those of
    the other programs running at the same time, and returns its result;
    ``run_steps_idle(make)`` does so only while the model has nothing else to do.
    """

    name: str
    model: LanguageModel
    call: Callable[[Callable[[], Any]], Any]
    run_steps: Callable[[Callable[[], Generator[Any, Any, Any]]], Any]
    #: ``run_steps_idle(make)``: run the step program when the model has nothing else to do
    #: and return at once (a ``concurrent.futures.Future``; None as its result if dropped):
    #: for work that may be wasted, such as precomputing a likely next request.
    run_steps_idle: Callable[[Callable[[], Generator[Any, Any, Any]]], Future[Any]] | None = None


class LoadContext(Protocol):
    """What a backend factory may ask of the host while loading a model."""

    def resolve_path(self, spec: ModelSpec) -> Path:
        """The model's directory (``spec.path`` resolved against the config file)."""

    def language_model(self, name: str, timeout: float = 300.0) -> SharedLanguageModel:
        """Another configured language model, waiting until it is READY."""


#: ``factory(spec, context) -> backend``, registered under a backend name.
BackendFactory = Callable[["ModelSpec", LoadContext], Backend]
