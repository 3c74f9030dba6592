"""Suggestions for the text before a cursor: word completion, next words, phrase continuation.

Casing follows what was typed: the word being typed is completed from the typed prefix
and, when they differ, from its lower-case and capitalised forms (a model trained on
prose rarely sees ``ELIZ``). The casings are read in one batched call and searched in
one shared beam, each hypothesis starting from the probability of its casing of the
prefix, so the probabilities are of "this word, given a word starting with these letters
in one of these casings" (otherwise "W" -> "William" would outrank "w" -> "was"
mid-sentence). The best completion of each word wins and is rendered in the typed casing
(``ELIZ`` -> ``ELIZABETH``, ``eliz`` -> ``elizabeth``).

With a lexicon, word searches only grow hypotheses that are prefixes of its words and
only finish real words, so the beam is spent on candidates that can be suggested; a
typed prefix that starts no lexicon word is completed by the model alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch

from rnnserve.plugin_api import (
    LanguageModel,
    StepProgram,
    Suggestion,
    SuggestionKind,
    SuggestOptions,
    concat_states,
    select_rows,
    split_state,
)
from rnnserve_plugins.writing_assistant.document_cache import cache_distribution
from rnnserve_plugins.writing_assistant.lexicon import Lexicon
from rnnserve_plugins.writing_assistant.search import Continuation, advance, beam_search
from rnnserve_plugins.writing_assistant.states import Node, TextState, WordNodes, read, read_variants

#: A casing of the typed prefix less likely than this (natural log, relative to all casings
#: searched) is not searched: 1% of the probability mass.
MIN_CASING_LOGPROB = math.log(0.01)

#: Which of the document's words the cache model offers: "unknown", those outside the lexicon
#: (names and rare words, which the lexicon-steered search cannot produce); "all" of them.
CACHE_SCOPES = {"unknown", "all"}

#: Characters that end a phrase suggestion (a clause or a sentence).
CLAUSE_END = set(".,;:!?\n")


def is_word_char(ch: str) -> bool:
    return ch.isalpha() or ch == "'"


def typed_word(text: str) -> str:
    """The word being typed at the end of ``text`` ("" after a space or punctuation)."""
    end = len(text)
    while end > 0 and is_word_char(text[end - 1]):
        end -= 1
    return text[end:]


def casing_variants(prefix: str) -> list[str]:
    """The typed prefix, then its lower-case and capitalised forms if they differ."""
    return list(dict.fromkeys([prefix, prefix.lower(), prefix.capitalize()]))


def render(prefix: str, rest: str) -> str:
    """Completion ``rest`` of ``prefix`` in the typed casing."""
    shouting = len(prefix) > 1 and prefix.isupper()
    return prefix + (rest.upper() if shouting else rest)


class Suggester:
    """Suggestion search for one language model (runs on the model's thread)."""

    def __init__(self, model: LanguageModel, *, beam: int = 8, max_word_chars: int = 20,
                 phrase_chars: int = 60, lexicon: Iterable[str] | None = None, cache_weight: float = 0.0,
                 cache_chars: int = 20_000, cache_scope: str = "unknown") -> None:
        if cache_scope not in CACHE_SCOPES:
            raise ValueError(f"cache_scope must be one of {sorted(CACHE_SCOPES)}, got {cache_scope!r}")
        self.model = model
        #: Weight of the document cache model in word suggestions (0: the language model alone),
        #: over the last ``cache_chars`` characters before the cursor (see document_cache.py),
        #: for the words ``cache_scope`` says.
        self.cache_weight = cache_weight
        self.cache_chars = cache_chars
        self.cache_scope = cache_scope
        self.beam = beam
        self.max_word_chars = max_word_chars
        self.phrase_chars = phrase_chars
        vocab = model.vocab
        self.token_text = [vocab.decode([i]) for i in range(vocab.size)]
        #: Words a completion must be one of (None: any string the model ends with a boundary;
        #: a character model also puts boundary mass after non-words such as "univers").
        self.lexicon = Lexicon(lexicon, self.token_text) if lexicon is not None else None
        single = [len(t) == 1 for t in self.token_text]
        self.word = torch.tensor([s and is_word_char(t) for s, t in zip(single, self.token_text, strict=True)])
        self.letter = torch.tensor([s and t.isalpha() for s, t in zip(single, self.token_text, strict=True)])
        self.boundary = torch.tensor([s and not is_word_char(t) for s, t in zip(single, self.token_text, strict=True)])
        self.printable = torch.tensor([s and (t.isprintable() or t == "\n")
                                       for s, t in zip(single, self.token_text, strict=True)])
        self.clause_end = torch.tensor([t in CLAUSE_END and s for s, t in zip(single, self.token_text, strict=True)])
        if vocab.eos_id is not None:
            self.boundary[vocab.eos_id] = True

    def likely_next(self, logits: torch.Tensor) -> str:
        """The printable character most likely next, after next-token ``logits`` [vocab]."""
        return self.token_text[int(logits.masked_fill(~self.printable, -math.inf).argmax())]

    def suggest(self, text: str, options: SuggestOptions, state_at: Callable[[int], TextState],
                nodes: WordNodes | None = None) -> StepProgram[list[Suggestion]]:
        """Suggestions for ``text``; ``state_at(n)`` gives the state after ``text[:n]``.

        ``nodes``: a session's states from its last searches (see ``WordNodes``), reused by
        word searches and left for the next keystroke's.
        A step program: run it with ``SharedLanguageModel.run_steps`` (batched with other
        searches) or ``rnnserve.plugin_api.run_alone``.
        """
        out: list[Suggestion] = []
        k = options.max_suggestions
        prefix = typed_word(text)
        for kind in options.kinds:
            if kind is SuggestionKind.WORD:
                found = (yield from self._complete(text, prefix, state_at(len(text) - len(prefix)), k, nodes)) \
                    if prefix else (yield from self._next_words(text, state_at(len(text)), k, kind, nodes))
            elif kind is SuggestionKind.NEXT_WORDS:
                # Mid-word, the word being typed is completed first ("ackn" -> "acknowledged by"),
                # and the next word's nodes would push out those of the word being typed.
                found = (yield from self._complete_then_next(text, prefix, state_at(len(text) - len(prefix)), k)) \
                    if prefix else (yield from self._next_words(text, state_at(len(text)), k, kind, nodes))
            else:
                found = yield from self._phrases(state_at(len(text)), k, options.max_phrase_chars or self.phrase_chars)
            out.extend(_normalised(found))
        return out

    def _complete(self, text: str, prefix: str, word_start: TextState, k: int,
                  nodes: WordNodes | None = None) -> StepProgram[list[Suggestion]]:
        """Completions of the typed ``prefix`` at the end of ``text`` (never the bare prefix itself)."""
        best: dict[str, tuple[float, str]] = {}  # lower-case word -> (P_lm, rest of the word)
        variants = casing_variants(prefix)
        if nodes is None:
            states, logits, variant_lp = read_variants(self.model, word_start, variants)
        else:
            start = len(text) - len(prefix)
            nodes.at((start, text[start - 1:start]))
            found = yield from self._variant_nodes(nodes, word_start, variants)
            states = concat_states([node.state for node in found], self.model.state_batch_dims)
            logits = torch.stack([node.logits for node in found])
            variant_lp = torch.tensor([node.logprob for node in found], dtype=torch.float64)
        variant_lp = variant_lp - torch.logsumexp(variant_lp, dim=0)
        # A casing under 1% is not searched: its completions would need 100x the others' to place.
        keep = (variant_lp >= MIN_CASING_LOGPROB).nonzero()[:, 0]
        rows = TextState(select_rows(states, self.model.state_batch_dims, keep), logits[keep])
        # The casings' completions share one beam (each starts from its casing's probability);
        # the same word may come from several casings, so more are asked for than are shown.
        hypotheses = yield from self._words(rows, k * len(keep), first_letter=False, typed=prefix,
                                            start=variant_lp[keep], nodes=nodes,
                                            keys=[variants[i] for i in keep.tolist()])
        for hyp in hypotheses:
            key = render(prefix, hyp.text).lower()
            p = math.exp(hyp.logprob)
            if key not in best or p > best[key][0]:
                best[key] = (p, hyp.text)
        cached = self._cached(text[: len(text) - len(prefix)], prefix, fold_case=True)
        ranked = _mix(best, {key: (p, word[len(prefix):]) for key, (p, word) in cached.items()},
                      self.cache_weight, k)
        return [Suggestion(text=render(prefix, rest), kind=SuggestionKind.WORD, probability=0.0,
                           absolute_probability=p, insert_text=render(prefix, rest)[len(prefix):],
                           replace_chars=len(prefix))
                for p, rest in ranked]

    def _variant_nodes(self, nodes: WordNodes, word_start: TextState, variants: list[str]) -> StepProgram[list[Node]]:
        """The nodes of the casings ``variants`` of the typed prefix: kept from the last search,
        else stepped from their one letter shorter nodes, else read from the word start."""
        if nodes.get("") is None:
            nodes.put("", Node(word_start.state, word_start.logits, 0.0))
        missing = [v for v in variants if nodes.get(v) is None]
        parents = [nodes.get(v[:-1]) for v in missing]
        tokens = [self.model.vocab.encode(v[-1])[0] for v in missing]
        if missing and all(parent is not None for parent in parents) and all(len(t) == 1 for t in tokens):
            known: list[Node] = parents  # type: ignore[assignment]
            ids = torch.tensor([t[0] for t in tokens])
            logprobs = [parent.logprob + float(torch.log_softmax(parent.logits.float(), dim=-1)[i])
                        for parent, i in zip(known, ids.tolist(), strict=True)]
            state = concat_states([parent.state for parent in known], self.model.state_batch_dims)
            yield from advance(self.model, nodes, missing, logprobs, ids, state, torch.arange(len(missing)))
        elif missing:
            states, logits, logprob = read_variants(self.model, word_start, missing)
            parts = split_state(states, self.model.state_batch_dims, [1] * len(missing))
            for i, variant in enumerate(missing):
                nodes.put(variant, Node(parts[i], logits[i], float(logprob[i])))
        return [nodes.get(v) for v in variants]  # type: ignore[misc]  # all there now

    def _next_words(self, text: str, state: TextState, k: int, kind: SuggestionKind,
                    nodes: WordNodes | None = None) -> StepProgram[list[Suggestion]]:
        """The k most likely next words; a space is typed first unless the text ends with one."""
        lead = " " if text and not text[-1].isspace() else ""
        if lead:
            state = read(self.model, state, lead)
        keys = None
        if nodes is not None:  # the word typed next starts after the lead: its nodes
            nodes.at((len(text) + len(lead), lead or text[-1:]))
            if nodes.get("") is None:
                nodes.put("", Node(state.state, state.logits, 0.0))
            keys = [""]
        found = {h.text: (math.exp(h.logprob), h.text)
                 for h in (yield from self._words(state, k, first_letter=True, nodes=nodes, keys=keys))}
        ranked = _mix(found, self._cached(text, "", fold_case=False), self.cache_weight, k)
        return [Suggestion(text=word, kind=kind, probability=0.0, absolute_probability=p, insert_text=lead + word)
                for p, word in ranked]

    def _complete_then_next(self, text: str, prefix: str, word_start: TextState,
                            k: int) -> StepProgram[list[Suggestion]]:
        """NEXT_WORDS inside a word: the typed word completed, then the word after it.

        The k likeliest (completion, next word) pairs, P(completion) x P(next word | completion),
        over the k best completions and the typed word itself if it is a word (a boundary
        after it): ``text`` "...universally ackn" -> "acknowledged by" with ``insert_text``
        "owledged by" and ``replace_chars`` 4 (as for a word completion); "...the quick brown"
        -> "brown fox", " fox", 5.
        """
        completions = yield from self._complete(text, prefix, word_start, k)
        # The typed word may be whole already ("brown" -> "brown fox"): P(a boundary after it).
        if self.lexicon is None or prefix.lower() in self.lexicon:
            typed = read(self.model, word_start, prefix)
            finished = float(torch.logsumexp(torch.log_softmax(typed.logits.float(), dim=-1)[self.boundary], dim=0))
            completions.append(Suggestion(text=prefix, kind=SuggestionKind.WORD, probability=0.0,
                                          absolute_probability=math.exp(finished), insert_text="",
                                          replace_chars=len(prefix)))
        pairs: list[tuple[float, Suggestion]] = []
        for word in completions:
            after = read(self.model, word_start, word.text)
            for nxt in (yield from self._next_words(text[: len(text) - len(prefix)] + word.text, after, k,
                                                    SuggestionKind.NEXT_WORDS)):
                p = word.absolute_probability * nxt.absolute_probability
                pairs.append((p, Suggestion(text=word.text + nxt.insert_text, kind=SuggestionKind.NEXT_WORDS,
                                            probability=0.0, absolute_probability=p,
                                            insert_text=word.insert_text + nxt.insert_text,
                                            replace_chars=len(prefix))))
        pairs.sort(key=lambda pair: -pair[0])
        return [s for _, s in pairs[:k]]

    def _cached(self, document: str, prefix: str, *, fold_case: bool) -> dict[str, tuple[float, str]]:
        if self.cache_weight <= 0:
            return {}
        unknown_only = self.cache_scope == "unknown" and self.lexicon is not None
        return cache_distribution(document, prefix, fold_case=fold_case, window=self.cache_chars,
                                  exclude=self.lexicon if unknown_only else ())

    def _words(self, state: TextState, k: int, *, first_letter: bool, typed: str = "",
               start: torch.Tensor | None = None, nodes: WordNodes | None = None,
               keys: list[str] | None = None) -> StepProgram[list[Continuation]]:
        """Up to k continuations of the word ``typed`` so far into whole words, from one state or
        (batched ``state``, ``start`` log-probabilities) from several casings of ``typed``."""
        lexicon = self.lexicon if self.lexicon is not None and self.lexicon.has_prefix(typed) else None
        return (yield from beam_search(self.model, self.token_text, state.state, state.logits, extend=self.word,
                                       end_mass=self.boundary, first=self.letter if first_letter else None,
                                       beam=max(self.beam, 2 * k), max_chars=self.max_word_chars, results=k,
                                       lexicon=lexicon, typed=typed, start_logprob=start, nodes=nodes, keys=keys))

    def _phrases(self, state: TextState, k: int, max_chars: int) -> StepProgram[list[Suggestion]]:
        found = yield from beam_search(self.model, self.token_text, state.state, state.logits, extend=self.printable,
                            end_on=self.clause_end, beam=max(self.beam, k), max_chars=max_chars, results=k,
                            finish_at_limit=True)
        return [Suggestion(text=h.text, kind=SuggestionKind.PHRASE, probability=0.0,
                           absolute_probability=math.exp(h.logprob), insert_text=h.text)
                for h in found if h.text.strip()]


def _mix(model: dict[str, tuple[float, str]], cache: dict[str, tuple[float, str]], weight: float,
         k: int) -> list[tuple[float, str]]:
    """The k best of (1 - weight) P_model + weight P_cache over both candidate sets, as
    (probability, text); the model alone when the cache has no candidate."""
    if not cache:
        weight = 0.0
    mixed = {key: ((1 - weight) * p, text) for key, (p, text) in model.items()}
    for key, (p, text) in cache.items():
        base, known = mixed.get(key, (0.0, text))
        mixed[key] = (base + weight * p, known)
    return sorted(mixed.values(), key=lambda item: -item[0])[:k]


def _normalised(found: list[Suggestion]) -> list[Suggestion]:
    total = sum(s.absolute_probability for s in found)
    for s in found:
        s.probability = s.absolute_probability / total if total > 0 else 0.0
    return found
