"""Writing assistant: search, casing, probabilities, state caching and sessions over loopback."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any, ClassVar

import pytest
import torch

from rnnserve.backends import (
    LanguageModel,
    SharedLanguageModel,
    State,
    Suggestion,
    SuggestionKind,
    SuggestOptions,
)
from rnnserve.host.plugins import PluginHost, load_plugins
from rnnserve.ops.config import Limits, ModelSpec, ServerConfig
from rnnserve.runtime.step_programs import StepProgram, run_alone
from rnnserve.testing.hosts import LocalContext
from rnnserve.testing.server import ServerThread, running_server
from rnnserve.testing.waiting import wait_until
from rnnserve_client import Client, errors
from rnnserve_plugins.writing_assistant import document_cache
from rnnserve_plugins.writing_assistant import plugin as writing_assistant
from rnnserve_plugins.writing_assistant.backend import WritingAssistant
from rnnserve_plugins.writing_assistant.document_cache import cache_distribution
from rnnserve_plugins.writing_assistant.lexicon import Lexicon
from rnnserve_plugins.writing_assistant.states import (
    CheckpointRing,
    Node,
    PrefixCache,
    WordNodes,
    read,
    read_variants,
    start_state,
)
from rnnserve_plugins.writing_assistant.suggest import Suggester, is_word_char
from tests.support import toy_plugin
from tests.support.toy_plugin import TEXT, RecitingLM, TinyGRULM


@pytest.fixture(scope="module")
def host() -> PluginHost:
    return load_plugins(extra=[("toy", toy_plugin), ("wa", writing_assistant)], discover=False)


@pytest.fixture(scope="module")
def server(host: PluginHost) -> Iterator[ServerThread]:
    config = ServerConfig(default_models=False, limits=Limits(max_sessions=4, session_idle_timeout_s=1.0), models=(
        ModelSpec("toy", "toy-lm"),
        ModelSpec("wa", "writing-assistant", options={"language_model": "toy"}),
        ModelSpec("gru", "tiny-gru"),
        ModelSpec("wa-gru", "writing-assistant", options={"language_model": "gru", "checkpoint_every": 4}),
        ModelSpec("wa-orphan", "writing-assistant", options={"language_model": "missing"}),
        ModelSpec("toy-sharp", "toy-lm", options={"sharpness": 8.0}),  # recites with confidence
        ModelSpec("wa-sharp", "writing-assistant", options={"language_model": "toy-sharp"}),
    ))
    with running_server(config, host) as srv:
        yield srv


@pytest.fixture
def client(server: ServerThread) -> Iterator[Client]:
    with Client(server.target, timeout=30) as c:
        yield c


def _boundary_logprob(model: RecitingLM, text: str) -> float:
    """log P(next char is a word boundary | text) under the toy model."""
    ids = [model.vocab.bos_id, *model.vocab.encode(text)[0]]
    logits, _ = model.forward(torch.tensor([ids]), model.initial_state(1))
    logp = torch.log_softmax(logits[0, -1].double(), -1)
    suggester = Suggester(model)
    return float(torch.logsumexp(logp[suggester.boundary], -1))


def _logprob(model: RecitingLM, context: str, continuation: str) -> float:
    ids = [model.vocab.bos_id, *model.vocab.encode(context + continuation)[0]]
    logits, _ = model.forward(torch.tensor([ids[:-1]]), model.initial_state(1))
    logp = torch.log_softmax(logits[0].double(), -1)[torch.arange(len(ids) - 1), torch.tensor(ids[1:])]
    return float(logp[len(ids) - 1 - len(continuation):].sum())


def test_word_completion_ends_at_a_word_boundary_with_the_model_probability(client: Client) -> None:
    suggestions = client.suggest("wa", "the quick brown fox ju", max_suggestions=3)
    assert suggestions[0].text == "jumps" and suggestions[0].insert_text == "mps"
    assert suggestions[0].replace_chars == 2
    model = RecitingLM()
    # P(completion | the word starts with "ju" or "Ju", the casings searched)
    typed, capital = (_logprob(model, "the quick brown fox ", v) for v in ("ju", "Ju"))
    casing = typed - math.log(math.exp(typed) + math.exp(capital))
    for s in suggestions:
        assert s.kind == "word" and s.text != "ju" and all(is_word_char(c) for c in s.text)
        expected = casing + _logprob(model, "the quick brown fox ju", s.insert_text) + \
            _boundary_logprob(model, "the quick brown fox ju" + s.insert_text)
        assert math.log(s.absolute_probability) == pytest.approx(expected, abs=1e-4)
    assert sum(s.probability for s in suggestions) == pytest.approx(1.0, abs=1e-5)
    assert [s.absolute_probability for s in suggestions] == sorted((s.absolute_probability for s in suggestions),
                                                                   reverse=True)


def _word_suggestions(suggester: Suggester, text: str, k: int = 3) -> list[Suggestion]:
    """WORD suggestions for ``text`` from ``suggester``, its model reading from scratch."""
    model = suggester.model
    with torch.inference_mode():
        start = start_state(model)
        return run_alone(model, suggester.suggest(text, SuggestOptions(kinds=(SuggestionKind.WORD,), max_suggestions=k),
                                                  lambda n: read(model, start, text[:n])))


class _BigramVocab:
    chars = " wasWq"
    bos_id, eos_id, unk_id, size = 6, 7, 8, 9

    def encode(self, text: str) -> tuple[list[int], list[str]]:
        return [self.chars.index(c) for c in text], []

    def decode(self, ids: list[int]) -> str:
        return "".join(self.chars[i] for i in ids if i < len(self.chars))


class _BigramLM(LanguageModel):
    """The next character depends on the last one only. After a space: "w" 0.9, "W" 0.1; "w" ->
    "as" then a space (0.9 each); "W" -> "q" then a space (0.99 each)."""

    state_batch_dims = (0,)
    table: ClassVar[dict[str, dict[str, float]]] = {
        " ": {"w": 0.9, "W": 0.1}, "w": {"a": 0.9, "q": 0.1}, "a": {"s": 0.9, " ": 0.1},
        "s": {" ": 0.9, "a": 0.1}, "W": {"q": 0.99, "a": 0.01}, "q": {" ": 0.99, "a": 0.01}}

    def __init__(self) -> None:
        self._vocab = _BigramVocab()
        logits = torch.full((self._vocab.size, self._vocab.size), -30.0)
        for prev, nxt in self.table.items():
            for ch, p in nxt.items():
                logits[self._vocab.chars.index(prev), self._vocab.chars.index(ch)] = math.log(p)
        logits[self._vocab.bos_id] = logits[0]
        self._logits = logits

    @property
    def vocab(self) -> _BigramVocab:
        return self._vocab

    def initial_state(self, batch_size: int) -> tuple[torch.Tensor, ...]:
        return (torch.full((batch_size,), self._vocab.bos_id, dtype=torch.long),)

    def forward(self, tokens: torch.Tensor, state: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, tuple]:
        return self._logits[tokens], (tokens[:, -1],)

    def parameter_count(self) -> int:
        return 0


def test_a_casing_the_context_makes_unlikely_does_not_win() -> None:
    """Typed "w" is also read as "W"; "W" + "q" (0.98 once there) must pay for the capital (0.1),
    so "was" (0.73 after "w", 0.66 in all) comes first."""
    found = _word_suggestions(Suggester(_BigramLM()), "was w", k=2)
    assert [s.text for s in found] == ["was", "wq"]
    assert found[0].absolute_probability == pytest.approx(0.9 * 0.9 * 0.9 * 0.9 / (0.9 + 0.1), rel=1e-3)


def test_casing_follows_what_was_typed(client: Client) -> None:
    lower = client.suggest("wa", "the qu")
    shout = client.suggest("wa", "THE QU")
    assert lower[0].text == "quick" and shout[0].text == "QUICK" and shout[0].insert_text == "ICK"
    assert all(s.text.isupper() for s in shout)


def test_after_a_space_the_next_word_is_predicted(client: Client) -> None:
    (word, *_) = client.suggest("wa", "the quick brown ", max_suggestions=5)
    assert word.replace_chars == 0 and word.insert_text == word.text and word.text.isalpha()
    next_words = client.suggest("wa", "the quick brown.", kinds=("next_words",), max_suggestions=5)
    assert all(s.insert_text == " " + s.text and s.replace_chars == 0 for s in next_words)
    # Right after a word (no space yet) the word may be whole or not: it is completed or kept first.
    next_words = client.suggest("wa", "the quick brown", kinds=("next_words",), max_suggestions=5)
    assert ("brown fox", " fox", 5) in [(s.text, s.insert_text, s.replace_chars) for s in next_words]


def _agrees_with_the_proto(text: str, s) -> None:  # type: ignore[no-untyped-def]
    """What assistant.proto says of Suggestion.text, insert_text and replace_chars."""
    typed = text[len(text) - s.replace_chars:] if s.replace_chars else ""
    assert s.text.startswith(typed), (text, s)
    next_words = s.kind == "next_words" or (s.kind == "word" and not typed)  # a word after a boundary
    space = " " if next_words and text and not text[-1].isspace() and not typed else ""
    assert s.insert_text == space + s.text[s.replace_chars:], (text, s)


def test_next_words_inside_a_word_complete_it_first(client: Client) -> None:
    """Issue 17: "...fox ju" offered next words as if "ju" were finished; now "jumps over"."""
    text = "the quick brown fox ju"
    (first, *rest) = client.suggest("wa-sharp", text, kinds=("next_words",), max_suggestions=3)
    assert (first.text, first.insert_text, first.replace_chars) == ("jumps over", "mps over", 2)
    (word, *_) = client.suggest("wa-sharp", text, max_suggestions=3)
    assert first.text.split(" ")[0] == word.text  # the likeliest completion, then the word after it
    probabilities = [s.absolute_probability for s in (first, *rest)]
    assert probabilities == sorted(probabilities, reverse=True) and 0 < probabilities[0] < word.absolute_probability
    for s in (first, *rest):
        assert s.kind == "next_words" and s.text.count(" ") == 1
        _agrees_with_the_proto(text, s)


@pytest.mark.parametrize("text", ["the quick brown fox ju", "the quick brown", "the quick brown ",
                                  "the quick brown fox jumps over the lazy dog.", ""])
def test_text_insert_text_and_replace_chars_agree_with_the_proto_for_every_kind(client: Client, text: str) -> None:
    found = client.suggest("wa", text, kinds=("word", "next_words", "phrase"), max_suggestions=3)
    assert {s.kind for s in found} >= {"word", "next_words"}
    for s in found:
        _agrees_with_the_proto(text, s)


def test_phrases_end_at_a_clause_end_or_the_length_bound(client: Client) -> None:
    phrases = client.suggest("wa", "the quick brown fox jumps over the lazy ", kinds=("phrase",),
                             max_suggestions=2, max_phrase_chars=30)
    assert phrases
    for p in phrases:
        assert p.kind == "phrase" and len(p.text) <= 30
        assert p.text[-1] in ".,;:!?\n" or len(p.text) == 30


def test_unknown_language_model_fails_the_assistant_with_the_reason(client: Client) -> None:
    orphan = client.get_model("wa-orphan")
    assert orphan.state == "failed" and "'missing' is not configured" in orphan.reason
    assert client.get_model("wa").state == "ready"


def test_prefix_cache_reuses_the_longest_cached_prefix() -> None:
    model = TinyGRULM()
    cache = PrefixCache(model, capacity=8)
    with torch.inference_mode():
        first = cache.state("it is a truth univ")
        second = cache.state("it is a truth unive")
        assert (cache.misses, cache.hits) == (1, 1)
        assert cache.chars_read == len("it is a truth unive")  # one more character, not the whole text
        scratch = read(model, start_state(model), "it is a truth unive")
        assert torch.allclose(second.state[0], scratch.state[0], atol=1e-5)
        assert torch.allclose(second.logits, scratch.logits, atol=1e-5)
        assert cache.state("it is a truth univ") is first
        for i in range(20):
            cache.state(f"text {i}")
    assert len(cache) == 8


def test_cached_states_hold_one_row_of_logits_not_the_whole_read() -> None:
    """A cache entry costs the state plus [vocab] logits however long the text it read (a view
    into the read's [len(text), vocab] logits kept 80 KB per 200-character entry alive)."""
    model = TinyGRULM()
    cache = PrefixCache(model, capacity=4)
    ring = CheckpointRing(model, every=8, size=4)
    with torch.inference_mode():
        entry = cache.state("a long text, " * 20)
        ring.append("another long text " * 10)
    row_bytes = model.vocab.size * entry.logits.element_size()
    for text_state in (entry, ring.current, *(state for _, state in ring._ring)):
        assert text_state.logits.untyped_storage().nbytes() == row_bytes


def test_session_state_after_edits_equals_reading_the_final_text() -> None:
    model = TinyGRULM(seed=3)
    with torch.inference_mode():
        ring = CheckpointRing(model, every=4, size=3)
        ring.append("the quick brown fox ")
        ring.delete(7)
        reads_before = ring.chars_read
        ring.append("jumps over")
        ring.delete(3)
        assert ring.chars_read - reads_before < len("jumps over") + 4  # no re-read of the document
        ring.append(" the lazy dog")
        final = "the quick brojumps o the lazy dog"
        assert ring.text == final
        scratch = read(model, start_state(model), final)
        assert torch.allclose(ring.current.state[0], scratch.state[0], atol=1e-5)
        assert torch.allclose(ring.current.logits, scratch.logits, atol=1e-5)
        for n in (0, 5, 17, len(final)):
            assert torch.allclose(ring.state_at(n).state[0], read(model, start_state(model), final[:n]).state[0],
                                  atol=1e-5)
        ring.delete(1000)  # past the ring's reach: re-read from the start
        assert ring.text == "" and torch.allclose(ring.current.logits, start_state(model).logits)


def test_typing_keeps_recent_states_so_word_starts_and_backspace_need_no_read() -> None:
    """Keystroke by keystroke, the state at the start of the word being typed and the state one
    backspace back are kept, not re-read from a checkpoint (and they equal reading from scratch)."""
    model = TinyGRULM(seed=5)
    with torch.inference_mode():
        ring = CheckpointRing(model, every=32, size=4, recent=16)
        for ch in "it is a truth universally":
            ring.append(ch)
        before = ring.chars_read
        word_start = ring.state_at(len("it is a truth "))
        ring.delete(1)
        assert ring.chars_read == before  # neither needed a read
        assert ring.text == "it is a truth universall"
        for got, text in ((word_start, "it is a truth "), (ring.current, ring.text)):
            scratch = read(model, start_state(model), text)
            assert torch.allclose(got.state[0], scratch.state[0], atol=1e-5)
            assert torch.allclose(got.logits, scratch.logits, atol=1e-5)
        ring.append("y known")
        scratch = read(model, start_state(model), "it is a truth universally known")
        assert torch.allclose(ring.current.logits, scratch.logits, atol=1e-5)


def test_casings_read_in_one_batch_match_reading_each() -> None:
    model = TinyGRULM(seed=6)
    with torch.inference_mode():
        start = read(model, start_state(model), "the ")
        texts = ["eli", "Eli", "ELI"]
        state, logits, logprob = read_variants(model, start, texts)
        for i, text in enumerate(texts):
            alone = read(model, start, text)
            assert torch.allclose(logits[i], alone.logits, atol=1e-5)
            assert torch.allclose(state[0][:, i], alone.state[0][:, 0], atol=1e-5)
            assert logprob[i].item() == pytest.approx(_logprob(model, "the ", text), abs=1e-5)


def _same(a: list, b: list) -> bool:  # type: ignore[type-arg]
    """Same suggestions; probabilities equal to float tolerance (states come by different paths)."""
    return [(s.text, s.kind, s.insert_text, s.replace_chars) for s in a] == \
        [(s.text, s.kind, s.insert_text, s.replace_chars) for s in b] and \
        all(math.isclose(x.absolute_probability, y.absolute_probability, rel_tol=1e-4)
            for x, y in zip(a, b, strict=True))


def test_session_over_loopback_matches_suggest(client: Client) -> None:
    kinds = ("word", "next_words")
    with client.session("wa-gru", kinds=kinds, max_suggestions=3) as session:
        session.append("the qu")
        session.append("ick br")
        after_delete = session.delete(1)
        assert _same(after_delete, client.suggest("wa-gru", "the quick b", kinds=kinds, max_suggestions=3))
        typed = session.append("rown fox ju")
        assert _same(typed, client.suggest("wa-gru", "the quick brown fox ju", kinds=kinds, max_suggestions=3))
        assert typed[0].replace_chars == 2
        assert _same(session.reset(), client.suggest("wa-gru", "", kinds=kinds, max_suggestions=3))


def test_concurrent_sessions_get_what_they_would_alone(server: ServerThread, client: Client) -> None:
    """Four people typing at once (their searches batched on the language model's thread):
    each keystroke's suggestions equal the ones for that text alone. GetModel counts the
    steps lent to the searches (how they are batched: tests/test_step_programs.py)."""
    from concurrent.futures import ThreadPoolExecutor

    texts = ["the quick brown fox", "over the lazy dog", "a quiet brook", "the lazy fox jumps"]
    kinds = ("word", "next_words")

    def type_out(text: str) -> list[list[Suggestion]]:
        with Client(server.target, timeout=30) as c, c.session("wa-gru", kinds=kinds, max_suggestions=3) as session:
            return [session.append(ch) for ch in text]

    before = client.get_model("gru").stats.lent_steps_total
    with ThreadPoolExecutor(len(texts)) as pool:
        typed = list(pool.map(type_out, texts))
    lent = client.get_model("gru").stats
    assert lent.lent_steps_total > before and lent.mean_lent_rows >= 1
    for text, per_key in zip(texts, typed, strict=True):
        for n, got in enumerate(per_key, start=1):
            assert _same(got, client.suggest("wa-gru", text[:n], kinds=kinds, max_suggestions=3)), text[:n]


def test_disconnected_session_is_freed_at_once(server: ServerThread, client: Client) -> None:
    sessions = _assistant_service(server)
    session = client.session("wa")
    session.open()
    session.append("the")
    assert sessions.open_sessions == 1
    session.cancel()
    wait_until(lambda: sessions.open_sessions == 0, 5, "the cancelled session to be freed")


def test_idle_session_expires(server: ServerThread, client: Client) -> None:
    sessions = _assistant_service(server)
    with client.session("wa") as session:
        opened = time.monotonic()
        assert sessions.open_sessions == 1
        # the server ends the session itself after session_idle_timeout_s (1 s here) without an event
        wait_until(lambda: sessions.open_sessions == 0, 10, "the idle session to expire on the server")
        assert time.monotonic() - opened >= 0.9  # not before its idle limit
        with pytest.raises(errors.DeadlineExceeded, match="idle"):
            session.append("x")


def test_suggester_completes_the_typed_word_with_a_raw_state_function() -> None:
    model = TinyGRULM()
    with torch.inference_mode():
        suggester = Suggester(model)
        state = start_state(model)
        options = SuggestOptions(kinds=(SuggestionKind.WORD,), max_suggestions=2)
        found = run_alone(model, suggester.suggest("abc", options, lambda n: read(model, state, "abc"[:n])))
    assert len(found) <= 2 and all(s.text.startswith("abc") for s in found)


def _assistant_service(server: ServerThread):  # type: ignore[no-untyped-def]
    from rnnserve.edge.services.assistant import AssistantService

    for service in server.app.services:
        if isinstance(service, AssistantService):
            return service
    raise AssertionError("no assistant service")


def test_prefix_cache_counters_are_exposed(client: Client) -> None:
    before = client.get_model("wa").stats.backend_counters
    client.suggest("wa", "the quick brown f")
    client.suggest("wa", "the quick brown fo")
    after = client.get_model("wa").stats.backend_counters
    assert after["prefix_cache_hits"] - before.get("prefix_cache_hits", 0) >= 1
    assert after["prefix_cache_entries"] >= 1


def test_a_lexicon_keeps_only_real_words() -> None:
    model = RecitingLM()
    free = _word_suggestions(Suggester(model), "the quick brown fox ju")
    strict = _word_suggestions(Suggester(model, lexicon=frozenset({"jumps", "jump"})), "the quick brown fox ju")
    assert {s.text for s in free} - {"jumps", "jump"}  # the bare model also ends words elsewhere
    assert {s.text for s in strict} <= {"jumps", "jump"} and strict[0].text == "jumps"
    assert sum(s.probability for s in strict) == pytest.approx(1.0, abs=1e-6)


def test_lexicon_answers_prefix_questions_in_any_case() -> None:
    tokens = ["j", "J", "u", "m", "M", "p", "s", "n", "e", "x", " "]
    lexicon = Lexicon(["Jump", "jumps", "june"], tokens)
    assert lexicon.has_prefix("JU") and lexicon.has_prefix("") and not lexicon.has_prefix("jx")
    assert "JUMP" in lexicon and "jum" not in lexicon
    allowed = {tokens[i] for i in lexicon.continuations("ju").nonzero().flatten().tolist()}
    assert allowed == {"m", "M", "n"}
    assert not lexicon.continuations("jumps").any()


def test_lexicon_next_letters_match_testing_every_letter() -> None:
    words = ["a", "an", "and", "ant", "anti", "antique", "apple", "b", "be", "bee", "been", "beer", "zoo", "zoom",
             "naïve", "café", "can't", "cant", "o'clock"]
    lexicon = Lexicon(words, ["a"])
    letters = sorted({c for w in words for c in w})
    for prefix in ["", "a", "an", "ant", "anti", "b", "be", "bee", "zo", "zoo", "zoom", "na", "caf", "can", "o", "q"]:
        expected = {c for c in letters if lexicon.has_prefix(prefix + c)}
        assert set(lexicon.next_letters(prefix)) == expected, prefix
        assert len(lexicon.next_letters(prefix)) == len(expected)  # each letter once


def test_a_prefix_no_lexicon_word_starts_is_completed_by_the_model_alone() -> None:
    found = _word_suggestions(Suggester(RecitingLM(), lexicon={"cat", "dog"}), "the quick brown fox ju")
    assert found and found[0].text == "jumps"


def test_document_cache_is_the_relative_frequency_of_the_documents_words() -> None:
    document = "Sir Walter Elliot, of Kellynch Hall. Elliot! elliot's Ellis, and Walter."
    completions = cache_distribution(document, "ell", fold_case=True)
    assert completions == {"elliot": (pytest.approx(2 / 4), "Elliot"), "elliot's": (pytest.approx(1 / 4), "elliot's"),
                           "ellis": (pytest.approx(1 / 4), "Ellis")}
    assert "walter" not in cache_distribution(document, "walter", fold_case=True)  # never the bare prefix
    words = cache_distribution(document, fold_case=False)
    assert words["Walter"][0] == pytest.approx(2 / 11) and "walter" not in words  # 11 words
    known = cache_distribution(document, "ell", fold_case=True, exclude=frozenset({"elliot"}))
    assert known == {"elliot's": (pytest.approx(1 / 4), "elliot's"), "ellis": (pytest.approx(1 / 4), "Ellis")}


def test_document_cache_of_a_long_document_counts_every_word_once() -> None:
    """A long document is counted as a cached head plus the rest: every word once, none split."""
    import collections

    names = ["Elliot", "Ellis", "Elmira", "elegant", "Walter", "else", "Eleanor"]
    document = " ".join(f"{names[i % 7]} {names[i % 3]}, and {names[i % 5]}." for i in range(300))
    assert len(document) > 4 * document_cache.BLOCK
    words = collections.Counter(w.lower() for w in document_cache.WORD.findall(document))
    expected = {w: n for w, n in words.items() if w.startswith("el")}
    found = cache_distribution(document, "El", fold_case=True)
    assert {k: p for k, (p, _) in found.items()} == pytest.approx({k: n / sum(expected.values())
                                                                   for k, n in expected.items()})
    assert found["elliot"][1] == "Elliot"


def test_document_cache_puts_the_documents_names_among_the_completions() -> None:
    """The reciting model never saw "juliet"; typed twice, it is offered after "ju"."""
    model, text = RecitingLM(), "juliet, juliet. the quick brown fox ju"
    plain = _word_suggestions(Suggester(model), text, k=2)
    cached = _word_suggestions(Suggester(model, cache_weight=0.3), text, k=2)
    assert "juliet" not in {s.text for s in plain}
    assert "juliet" in {s.text for s in cached}
    assert sum(s.absolute_probability for s in cached) <= 1.0 + 1e-9


def test_document_cache_scoped_to_unknown_words_offers_only_words_outside_the_lexicon() -> None:
    """With a lexicon, the default scope leaves the lexicon's words to the language model."""
    model, text = RecitingLM(), "juliet, juliet. jumble, jumble, jumble. the quick brown fox ju"
    lexicon = ["jumps", "jumble", "quick", "the", "brown", "fox"]
    unknown = Suggester(model, lexicon=lexicon, cache_weight=0.3)
    everything = Suggester(model, lexicon=lexicon, cache_weight=0.3, cache_scope="all")
    assert unknown._cached(text[:-2], "ju", fold_case=True).keys() == {"juliet"}
    assert everything._cached(text[:-2], "ju", fold_case=True).keys() == {"juliet", "jumble"}
    assert "juliet" in {s.text for s in _word_suggestions(unknown, text, k=2)}
    with pytest.raises(ValueError, match="cache_scope"):
        Suggester(model, cache_scope="some")


class _CountingGRU(TinyGRULM):
    """TinyGRULM counting its model calls (reads and the searches' steps, which call forward)."""

    calls = 0

    def forward(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        self.calls += 1
        return super().forward(tokens, state)


def _local_assistant(model: LanguageModel, **options: object) -> WritingAssistant:
    return WritingAssistant(LocalContext(language_models={"lm": model}).language_model("lm"), **options)


def test_word_nodes_carry_a_search_into_the_next_keystroke() -> None:
    """A session keeps the states its searches reached in the word being typed: keystroke by
    keystroke it suggests what a session without them does, in fewer model steps, and reads
    no typed letter a search already reached."""
    text = "the quick brown fox jumps over the lazy dog, and the quiet brook"
    options = SuggestOptions(kinds=(SuggestionKind.WORD,), max_suggestions=3)
    typed: dict[int, list[list[Suggestion]]] = {}
    cost: dict[int, tuple[int, int]] = {}
    for capacity in (1024, 0):
        model = _CountingGRU(seed=7)
        assistant = _local_assistant(model, word_nodes=capacity, lexicon_words=0, cache_weight=0.0,
                                     expect_next=False)
        with torch.inference_mode():
            session = assistant.open_session(options)
            typed[capacity] = []
            for ch in text:
                session.append(ch)
                typed[capacity].append(session.suggestions())
            cost[capacity] = (model.calls, session.ring.chars_read)
            session.delete(4)  # leaves the word: its nodes go, and what follows is still right
            after_delete = session.suggestions()
            assert _same(after_delete, assistant.suggest(text[:-4], options))
    for n, (with_nodes, without) in enumerate(zip(typed[1024], typed[0], strict=True), start=1):
        assert _same(with_nodes, without), text[:n]
    (calls, reads), (calls_off, reads_off) = cost[1024], cost[0]
    assert calls < calls_off, (calls, calls_off)
    assert reads < reads_off, (reads, reads_off)


def test_word_nodes_belong_to_one_word_start_and_the_typed_prefix() -> None:
    node = Node((torch.zeros(1, 1, 2),), torch.zeros(4), 0.0)
    nodes = WordNodes(capacity=3).at((5, " "))
    for key in ("", "e", "El", "x"):
        nodes.put(key, node)
    assert len(nodes) == 3 and nodes.get("") is None  # the least recently used went first
    nodes.keep_under("E")  # the typed word left "x" behind; "e" and "El" extend "E" in some case
    assert nodes.get("x") is None and nodes.get("e") is node and nodes.get("El") is node
    assert nodes.at((5, " ")).get("El") is node  # the same word start keeps them
    assert len(nodes.at((5, ","))) == 0  # another word start at the same place does not


class _CountingReciter(RecitingLM):
    """RecitingLM counting its model calls (reads and steps)."""

    calls = 0

    def forward(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        self.calls += 1
        return super().forward(tokens, state)


@pytest.mark.parametrize("kinds", [(SuggestionKind.WORD,), (SuggestionKind.WORD, SuggestionKind.PHRASE),
                                   (SuggestionKind.NEXT_WORDS,)], ids=["word", "word+phrase", "next-words"])
def test_a_session_searches_ahead_for_the_expected_keystroke_in_idle_time(kinds: tuple[SuggestionKind, ...]) -> None:
    """After each keystroke a session searches, in the model's idle time, for the character the
    model expects next; when it is typed, its suggestions need no model call, and they equal
    those of a session that does not search ahead (for every kind: phrases and next words
    continue from the state after the expected letter, which the ring does not hold yet). A
    keystroke that overtakes a search ahead stops it before its next step."""
    model = _CountingReciter()
    idle: list[Callable[[], StepProgram[Any]]] = []

    def run_idle(make: Callable[[], StepProgram[Any]]) -> Future[Any]:
        idle.append(make)  # run below, between keystrokes: the model's idle time
        return Future()

    shared = SharedLanguageModel("lm", model, lambda fn: fn(), lambda make: run_alone(model, make()), run_idle)
    ahead = WritingAssistant(shared, lexicon_words=0, cache_weight=0.0)
    plain = _local_assistant(model, lexicon_words=0, cache_weight=0.0, expect_next=False)
    options = SuggestOptions(kinds=kinds, max_suggestions=3)
    text = TEXT[:24] + "x" + TEXT[25:50]  # the reciting model expects TEXT: one keystroke it does not
    with torch.inference_mode():
        session, reference = ahead.open_session(options), plain.open_session(options)
        calls_per_keystroke = []
        for n, ch in enumerate(text, start=1):
            session.append(ch)
            reference.append(ch)
            calls = model.calls
            got = session.suggestions()
            calls_per_keystroke.append(model.calls - calls)
            assert _same(got, reference.suggestions()), text[:n]
            while idle:
                run_alone(model, idle.pop()())
        # Answered from the search ahead, with no model call: all but the first keystroke, the
        # odd one and its neighbours.
        assert ahead.expected_hits == calls_per_keystroke.count(0) >= len(text) - 4
        assert ahead.expected_searches == len(text)

        # A search ahead overtaken by a keystroke: it stops before its next step.
        program = idle_search = None
        session.append("q")
        session.suggestions()
        idle_search = idle.pop()
        program = idle_search()
        request = next(program)
        session.append("u")
        after = session.suggestions()
        with pytest.raises(StopIteration) as stopped:
            program.send(model.step(*request))
        assert stopped.value.value is None
        reference.append("qu")
        assert _same(after, reference.suggestions())

        # Closing the session lets go of its states; its queued search ahead then does nothing.
        pending = idle.pop()
        searches = ahead.expected_searches
        session.close()
        assert session.ring.text == "" and session.nodes is None
        assert run_alone(model, pending()) is None and ahead.expected_searches == searches


@pytest.mark.parametrize(("options", "message"), [
    ({"word_nodes": 2}, "word_nodes must be 0 \\(off\\) or at least 64"),
    ({"concurrent_calls": 0}, "concurrent_calls must be >= 1"),
    ({"beams": 4}, "unknown writing-assistant option\\(s\\) \\['beams'\\]"),
])
def test_bad_options_are_refused_when_the_assistant_loads(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _local_assistant(TinyGRULM(seed=1), **options)


def test_a_keystroke_that_waited_past_close_searches_nothing() -> None:
    """A client that goes away mid-keystroke: the servicer closes the session on another
    thread, possibly before the keystroke's search reaches the model's thread. That search
    then answers nothing, reads nothing and lends no search ahead."""
    model = _CountingReciter()
    idle: list[Callable[[], StepProgram[Any]]] = []

    def run_idle(make: Callable[[], StepProgram[Any]]) -> Future[Any]:
        idle.append(make)
        return Future()

    shared = SharedLanguageModel("lm", model, lambda fn: fn(), lambda make: run_alone(model, make()), run_idle)
    assistant = WritingAssistant(shared, lexicon_words=0, cache_weight=0.0)
    with torch.inference_mode():
        session = assistant.open_session(SuggestOptions(kinds=(SuggestionKind.WORD, SuggestionKind.PHRASE)))
        session.append(TEXT[:10])
        session.close()
        calls = model.calls
        assert session.suggestions() == []
        assert model.calls == calls and idle == [] and session.ring.text == ""


def test_prefix_cache_finds_a_prefix_ending_anywhere_in_a_long_document() -> None:
    """An edit far back in a long document (here mid-word, 2,000 characters before the end)
    reuses the state cached there. Only the cached texts' lengths are tried (at most
    ``capacity`` lookups), not every word boundary of a document of up to 100,000 characters
    (0.24 s a miss before)."""
    model = TinyGRULM()
    cache = PrefixCache(model, capacity=4)
    document = ("It is a truth universally acknowledged " * 60)[:2300]
    cut = 300 + document[300:].index("niv") + 2  # inside "universally"
    with torch.inference_mode():
        cache.state(document[:cut])
        cache.state(document)
        read_before = cache.chars_read
        edited = cache.state(document[:cut] + "ersal")
        assert cache.chars_read - read_before == len("ersal")
        scratch = read(model, start_state(model), document[:cut] + "ersal")
        assert torch.allclose(edited.state[0], scratch.state[0], atol=1e-5)
        for i in range(6):  # evictions keep the length index in step with the entries
            cache.state(f"text number {i:03d}")
        assert sorted(cache._lengths.elements()) == sorted(len(t) for t in cache._entries)
        assert cache._sorted_lengths == sorted(set(cache._lengths))
