"""The ``gru-seq2seq`` backend: a :class:`rnnserve.plugin_api.Translator` over a checkpoint directory.

``translate`` cuts every text into sentences (:mod:`.document`), masks each sentence's
protected spans (numbers, URLs, placeholders, ...: :mod:`.protect`) where the checkpoint's
vocabulary has the mask tokens, encodes the sentences with the model's SentencePiece
vocabulary, sorts them by length and decodes them in chunks of up to
``MAX_SOURCES_PER_BATCH`` sources: greedy search for ``beam_size == 1``, batched beam search
otherwise. Each source may produce up to ``min(max_length, ceil(max_length_ratio * source
pieces))`` pieces. Spans are restored and each text is rejoined with its own whitespace;
the k-th hypothesis of a text of several sentences is its sentences' k-th hypotheses
(scores and log-probabilities added, attention block-diagonal). A sentence with no pieces
(characters the subword model drops) translates to the empty string without touching the
model.

Spec option ``quantize = true`` serves an int8 copy (``rnnserve.host.int8.int8_copy``): every
``nn.Linear`` (the output projection over the subword vocabulary dominates decoding time),
and with fbgemm the encoder's ``nn.GRU`` and the decoder's ``nn.GRUCell`` too.
``dtype = "bfloat16"`` (``rnnserve.host.precision``) serves a bfloat16 copy; log-probabilities
stay float32.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rnnserve.plugin_api import (
    ConfigurationError,
    Hypothesis,
    LoadContext,
    ModelSpec,
    TranslateOptions,
    TranslationResult,
    Translator,
    dtype_option,
    int8_copy,
)

from .beam import Hyp, beam_search, greedy_search
from .checkpoint import CheckpointError, decoding_options, load_model
from .document import Document, split_document
from .model import Seq2Seq
from .protect import Masked, has_masks, mask, unmask
from .subwords import SubwordVocab

OPTIONS = {"quantize": bool, "dtype": str}
MAX_SOURCES_PER_BATCH = 64


def quantize(model: Seq2Seq) -> Seq2Seq:
    """An int8 copy of ``model`` (:func:`rnnserve.plugin_api.int8_copy`: its Linear layers, and with
    fbgemm its GRU and GRUCell too)."""
    return int8_copy(model, (nn.GRU, nn.GRUCell))  # type: ignore[return-value]


def max_target_length(source_pieces: int, options: TranslateOptions) -> int:
    """Pieces a source of ``source_pieces`` may produce before EOS."""
    return max(1, min(options.max_length, math.ceil(options.max_length_ratio * source_pieces)))


class GruTranslator(Translator):
    """Serves one :class:`~.model.Seq2Seq` with its :class:`~.subwords.SubwordVocab`."""

    def __init__(self, model: Seq2Seq, vocab: SubwordVocab, options: TranslateOptions | None = None, *,
                 quantized: bool = False, dtype: torch.dtype = torch.float32):
        if quantized and dtype != torch.float32:
            raise ValueError("int8 quantization works from float32 weights: use quantize or a dtype, not both")
        model = model.eval().to(dtype)
        self.vocab = vocab
        self.config = model.config
        self.quantized = quantized
        self._parameters = model.parameter_count()
        self.model: Seq2Seq = quantize(model) if quantized else model
        #: Whether the vocabulary has the mask tokens of protected spans (checkpoints trained with them).
        self.protects_spans = has_masks(vocab.pieces(range(vocab.size)))
        if options is not None:
            self.default_options = options

    @classmethod
    def load(cls, directory: Path, *, quantized: bool = False, dtype: torch.dtype = torch.float32) -> GruTranslator:
        model, vocab, config = load_model(directory)
        return cls(model, vocab, decoding_options(config), quantized=quantized, dtype=dtype)

    def translate(self, texts: list[str], options: TranslateOptions) -> list[TranslationResult]:
        """One result per text, its ``options.n_best`` hypotheses best first."""
        documents = [split_document(text) for text in texts]
        sentences = [self._mask(sentence) for document in documents for sentence in document.sentences]
        translated = self._translate_sentences(sentences, options)
        results, start = [], 0
        for document in documents:
            parts = translated[start: start + len(document.sentences)]
            start += len(document.sentences)
            results.append(_join(document, parts, options))
        return results

    def sentences(self, text: str) -> list[str]:
        """The sentences ``translate`` decodes for ``text`` (:func:`.document.split_document`)."""
        return list(split_document(text).sentences)

    def _mask(self, sentence: str) -> Masked:
        return mask(sentence) if self.protects_spans else Masked(sentence, ())

    def _translate_sentences(self, sentences: list[Masked], options: TranslateOptions) -> list[TranslationResult]:
        """One result per (masked) sentence, spans restored."""
        pieces = [self.vocab.encode(sentence.text) for sentence in sentences]
        results: list[TranslationResult | None] = [None] * len(sentences)
        for i, ids in enumerate(pieces):
            if not ids:  # nothing the model can read: its only translation, as the n_best the API promises
                attention = [] if options.return_attention else None
                text = unmask("", sentences[i].spans)
                results[i] = TranslationResult([Hypothesis(text, 0.0, 0.0, [], attention)] * options.n_best, [])
        order = sorted((i for i, ids in enumerate(pieces) if ids), key=lambda i: len(pieces[i]))
        with torch.inference_mode():
            for start in range(0, len(order), MAX_SOURCES_PER_BATCH):
                chunk = order[start: start + MAX_SOURCES_PER_BATCH]
                for i, hyps in zip(chunk, self._decode([pieces[i] for i in chunk], options), strict=True):
                    results[i] = TranslationResult([self._hypothesis(h, sentences[i].spans) for h in hyps],
                                                   self.vocab.pieces(pieces[i]))
        return results  # type: ignore[return-value]

    def _decode(self, sources: list[list[int]], options: TranslateOptions) -> list[list[Hyp]]:
        limits = [max_target_length(len(s), options) for s in sources]
        if options.beam_size == 1:
            return [[h] for h in greedy_search(self.model, sources, limits, alpha=options.length_penalty,
                                               return_attention=options.return_attention)]
        return beam_search(self.model, sources, limits, beam_size=options.beam_size, n_best=options.n_best,
                           alpha=options.length_penalty, return_attention=options.return_attention)

    def _hypothesis(self, hyp: Hyp, spans: tuple[str, ...]) -> Hypothesis:
        return Hypothesis(text=unmask(self.vocab.decode(hyp.tokens), spans), score=hyp.score,
                          log_probability=hyp.log_probability, tokens=self.vocab.pieces(hyp.tokens),
                          attention=hyp.attention)

    def parameter_count(self) -> int:
        return self._parameters


def _join(document: Document, parts: list[TranslationResult], options: TranslateOptions) -> TranslationResult:
    """The result of a whole document from its sentences' results: hypothesis k joins the
    sentences' k-th hypotheses with the document's own whitespace."""
    if len(parts) == 1:
        separators = document.separators
        return TranslationResult([dataclasses.replace(h, text=separators[0] + h.text + separators[1])
                                  for h in parts[0].hypotheses], parts[0].source_tokens)
    if not parts:  # no sentence at all: only whitespace
        attention = [] if options.return_attention else None
        return TranslationResult([Hypothesis(document.join([]), 0.0, 0.0, [], attention)] * options.n_best, [])
    hypotheses = []
    for k in range(options.n_best):
        chosen = [part.hypotheses[min(k, len(part.hypotheses) - 1)] for part in parts]
        attention = None
        if options.return_attention:
            width = sum(len(part.source_tokens) for part in parts)
            attention, offset = [], 0
            for hyp, part in zip(chosen, parts, strict=True):
                attention += [[0.0] * offset + row + [0.0] * (width - offset - len(row)) for row in hyp.attention or []]
                offset += len(part.source_tokens)
        hypotheses.append(Hypothesis(text=document.join([h.text for h in chosen]), score=sum(h.score for h in chosen),
                                     log_probability=sum(h.log_probability for h in chosen),
                                     tokens=[t for h in chosen for t in h.tokens], attention=attention))
    return TranslationResult(hypotheses, [t for part in parts for t in part.source_tokens])


def parse_options(options: dict[str, Any], model: str) -> dict[str, Any]:
    """Validate a spec's options against :data:`OPTIONS`."""
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ConfigurationError(f"model {model!r}: unknown gru-seq2seq option(s) {unknown}; valid: {sorted(OPTIONS)}")
    for key, kind in OPTIONS.items():
        if key in options and not isinstance(options[key], kind):
            raise ConfigurationError(f"model {model!r}: option {key!r} must be {kind.__name__}, got {options[key]!r}")
    dtype_option(options, model)
    return options


def create_backend(spec: ModelSpec, context: LoadContext) -> GruTranslator:
    """Backend factory registered as ``gru-seq2seq``."""
    options = parse_options(dict(spec.options), spec.name)
    directory = context.resolve_path(spec)
    try:
        return GruTranslator.load(directory, quantized=options.get("quantize", False),
                                  dtype=dtype_option(options, spec.name))
    except (CheckpointError, OSError, ValueError) as exc:
        raise ConfigurationError(f"model {spec.name!r}: cannot load gru-seq2seq checkpoint: {exc}") from exc
