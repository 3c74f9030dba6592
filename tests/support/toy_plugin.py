"""A tiny deterministic test plugin: a reciting language model, a toy translator and assistant.

Registered through the same hooks as any plugin (never shipped as a model). The language
model "recites" a fixed text: after reading k tokens (start-of-text included) its logits
favour TEXT[k-1] strongly, with a smooth deterministic spread over the other characters so
that seeded sampling is meaningful. After the text it predicts end-of-text.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import torch

from rnnserve import hookimpl
from rnnserve.backends import (
    Assistant,
    AssistantSession,
    Hypothesis,
    LanguageModel,
    State,
    Suggestion,
    SuggestionKind,
    SuggestOptions,
    TranslateOptions,
    TranslationResult,
    Translator,
)
from rnnserve.ops.config import ModelCard, ModelSpec

TEXT = "the quick brown fox jumps over the lazy dog. " * 3
ALPHABET = "abcdefghijklmnopqrstuvwxyz .,!?\n"


class ToyVocab:
    """Characters of ALPHABET, then <bos>, <eos>, <unk>."""

    def __init__(self) -> None:
        self._ids = {ch: i for i, ch in enumerate(ALPHABET)}
        self.bos_id, self.eos_id, self.unk_id = len(ALPHABET), len(ALPHABET) + 1, len(ALPHABET) + 2

    @property
    def size(self) -> int:
        return len(ALPHABET) + 3

    def encode(self, text: str) -> tuple[list[int], list[str]]:
        ids = [self._ids.get(ch, self.unk_id) for ch in text]
        return ids, list(dict.fromkeys(ch for ch in text if ch not in self._ids))

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(ALPHABET[i] for i in ids if i < len(ALPHABET))


class RecitingLM(LanguageModel):
    """State: (position,) with position [batch, 1] float32 (batch dim 0).

    Options: ``step_delay`` seconds slept per step (to make calls long), ``fail_after``
    steps after which ``step`` raises (to test fault isolation), ``hang_after`` steps after
    which one ``step`` sleeps ``hang_seconds`` (a hung backend, for the watchdog),
    ``sharpness`` of the preferred character's logit.
    """

    state_batch_dims = (0,)

    def __init__(self, step_delay: float = 0.0, fail_after: int | None = None, sharpness: float = 4.0,
                 hang_after: int | None = None, hang_seconds: float = 3.0) -> None:
        self._vocab = ToyVocab()
        self.step_delay = step_delay
        self.fail_after = fail_after
        self.hang_after = hang_after
        self.hang_seconds = hang_seconds
        self.sharpness = sharpness
        self.steps = 0
        self.step_batch_sizes: list[int] = []
        self.thread_names: set[str] = set()
        self._target = torch.tensor([self._vocab.encode(ch)[0][0] for ch in TEXT] + [self._vocab.eos_id])

    @property
    def vocab(self) -> ToyVocab:
        return self._vocab

    def initial_state(self, batch_size: int) -> State:
        return (torch.zeros(batch_size, 1),)

    def _logits(self, positions: torch.Tensor) -> torch.Tensor:
        """positions [...] float (tokens read so far) -> logits [..., vocab]."""
        vocab = torch.arange(self._vocab.size, dtype=torch.float32)
        logits = torch.cos(positions[..., None] * 0.7 + vocab * 1.3)
        target = self._target[(positions.long() - 1).clamp(0, len(self._target) - 1)]
        logits = logits + self.sharpness * torch.nn.functional.one_hot(target, self._vocab.size)
        logits[..., self._vocab.bos_id] = -1e4
        return logits

    def forward(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        steps = torch.arange(1, tokens.shape[1] + 1, dtype=torch.float32)
        positions = state[0] + steps  # [batch, time]
        return self._logits(positions), (positions[:, -1:],)

    def step(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        self.steps += 1
        self.step_batch_sizes.append(tokens.shape[0])
        self.thread_names.add(threading.current_thread().name)
        if self.fail_after is not None and self.steps > self.fail_after:
            raise RuntimeError("toy model exploded at /secret/path")
        if self.hang_after is not None and self.steps == self.hang_after + 1:
            time.sleep(self.hang_seconds)
        if self.step_delay:
            time.sleep(self.step_delay)
        return super().step(tokens, state)

    def parameter_count(self) -> int:
        return 42


class ToyTranslator(Translator):
    """Translates by upper-casing; hypothesis i appends i exclamation marks. Records batch sizes."""

    default_options = TranslateOptions(beam_size=4, n_best=1, length_penalty=1.0, max_length_ratio=2.0,
                                       max_length=64)

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.batches: list[int] = []

    def translate(self, texts: list[str], options: TranslateOptions) -> list[TranslationResult]:
        self.batches.append(len(texts))
        if self.delay:
            time.sleep(self.delay)
        results = []
        for text in texts:
            source = text.split()
            hyps = []
            for i in range(options.n_best):
                tokens = [w.upper() for w in source] + ["!"] * i
                attention = [[1.0 if j == min(t, len(source) - 1) else 0.0 for j in range(len(source))]
                             for t in range(len(tokens))] if options.return_attention and source else None
                hyps.append(Hypothesis(" ".join(tokens), -float(i), -float(i) - 1.0, tokens, attention))
            results.append(TranslationResult(hyps, source))
        return results

    def parameter_count(self) -> int:
        return 7


WORDS = ["elizabeth", "elinor", "emma", "the", "then", "there"]


def _suggest(text: str, options: SuggestOptions) -> list[Suggestion]:
    out: list[Suggestion] = []
    prefix = text.split(" ")[-1] if text and not text.endswith(" ") else ""
    for kind in options.kinds:
        if kind is SuggestionKind.WORD:
            matches = [w for w in WORDS if w.startswith(prefix.lower()) and w != prefix.lower()]
            matches = matches[: options.max_suggestions]
            for w in matches:
                word = w.upper() if prefix.isupper() and prefix else (w.capitalize() if prefix[:1].isupper() else w)
                out.append(Suggestion(word, kind, 1 / len(matches), 0.1, word[len(prefix):], len(prefix)))
        else:
            out.append(Suggestion(" and so on", kind, 1.0, 0.01, " and so on"))
    return out


class ToySession(AssistantSession):
    def __init__(self, options: SuggestOptions, text: str) -> None:
        self.options, self.text = options, text

    def append(self, text: str) -> None:
        self.text += text

    def delete(self, chars: int) -> None:
        self.text = self.text[: max(0, len(self.text) - chars)]

    def reset(self) -> None:
        self.text = ""

    def suggestions(self) -> list[Suggestion]:
        return _suggest(self.text, self.options)

    @property
    def document_chars(self) -> int:
        return len(self.text)


class ToyAssistant(Assistant):
    """Options: ``delay`` seconds slept per ``suggest`` call."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay

    def suggest(self, text: str, options: SuggestOptions) -> list[Suggestion]:
        if self.delay:
            time.sleep(self.delay)
        return _suggest(text, options)

    def open_session(self, options: SuggestOptions, text: str = "") -> AssistantSession:
        return ToySession(options, text)

    def parameter_count(self) -> int:
        return 3


def _lm_factory(spec: ModelSpec, context: object) -> RecitingLM:
    return RecitingLM(**spec.options)


def _failing_factory(spec: ModelSpec, context: object) -> RecitingLM:
    raise RuntimeError(spec.options.get("message", "weights are corrupt"))


@hookimpl
def register_backends(register) -> None:  # type: ignore[no-untyped-def]
    register("toy-lm", _lm_factory)
    register("toy-translator", lambda spec, ctx: ToyTranslator(**spec.options))
    register("toy-assistant", lambda spec, ctx: ToyAssistant(**spec.options))
    register("toy-broken", _failing_factory)
    register("tiny-gru", lambda spec, ctx: TinyGRULM(**spec.options))


@hookimpl
def register_models(register) -> None:  # type: ignore[no-untyped-def]
    register(ModelSpec(name="toy", backend="toy-lm", card=ModelCard(
        description="reciting toy model", metrics={"test_bits_per_char": 0.5})))


class TinyGRULM(LanguageModel):
    """A seeded random one-layer GRU over the toy vocabulary: a real recurrent state to test caching.

    State: (h,) with h [1, batch, hidden] (batch dim 1).
    """

    state_batch_dims = (1,)

    def __init__(self, hidden: int = 16, seed: int = 0) -> None:
        torch.manual_seed(seed)
        self._vocab = ToyVocab()
        self.embed = torch.nn.Embedding(self._vocab.size, 8)
        self.rnn = torch.nn.GRU(8, hidden, batch_first=True)
        self.head = torch.nn.Linear(hidden, self._vocab.size)
        self.hidden = hidden
        for module in (self.embed, self.rnn, self.head):
            module.requires_grad_(False)

    @property
    def vocab(self) -> ToyVocab:
        return self._vocab

    def initial_state(self, batch_size: int) -> State:
        return (torch.zeros(1, batch_size, self.hidden),)

    def forward(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        out, h = self.rnn(self.embed(tokens), state[0])
        return self.head(out), (h,)

    def parameter_count(self) -> int:
        return sum(p.numel() for p in (*self.embed.parameters(), *self.rnn.parameters(), *self.head.parameters()))
