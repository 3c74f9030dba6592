"""Long documents and long reads (issue 17, points 6 and 7), on real servers over loopback.

* A bounded read (the last ``window_chars`` of a long document, from a line or word start,
  from the start state) equals reading the whole document on a model whose memory is
  shorter than the window, and it is what a Session open, a ``Suggest`` with no cached
  prefix and a delete past the checkpoint ring read.
* No valid request takes a model down: a request at every documented limit, while other
  calls run, keeps every model call far inside ``step_timeout_s`` (long reads are chunked
  and other users' steps run between the chunks), and a model the watchdog marks FAILED is
  reloaded in the background.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator

import grpc
import pytest
import torch
from prometheus_client import generate_latest

from rnnserve.host.plugins import PluginHost, load_plugins
from rnnserve.ops.config import Limits, ModelSpec, ServerConfig
from rnnserve.ops.metrics import Metrics
from rnnserve.runtime import prompt_reading
from rnnserve.testing.server import ServerThread, running_server
from rnnserve.testing.waiting import wait_until
from rnnserve_client import Client
from rnnserve_client.v1 import generation_pb2, generation_pb2_grpc
from rnnserve_plugins.writing_assistant import plugin as writing_assistant
from rnnserve_plugins.writing_assistant.states import CheckpointRing, PrefixCache, read, start_state, window_start
from tests.support import long_reads_plugin, toy_plugin
from tests.support.long_reads_plugin import ShiftLM, SlowReadLM
from tests.support.toy_plugin import TEXT, RecitingLM

pytestmark = pytest.mark.timeout(180)

#: A long document in the toy alphabet: lines of words.
DOCUMENT = "".join(f"{TEXT.strip()} line {i}\n" for i in range(40)).replace("0", "o").replace("1", "l")
DOCUMENT = "".join(ch if ch.isalpha() or ch in " .\n" else " " for ch in DOCUMENT)


@pytest.fixture(scope="module")
def host() -> PluginHost:
    return load_plugins(extra=[("toy", toy_plugin), ("long", long_reads_plugin), ("wa", writing_assistant)],
                        discover=False)


def _same_state(a: torch.Tensor, b: torch.Tensor) -> bool:
    return torch.equal(a, b)


# -- the bounded read ------------------------------------------------------------------


def test_the_window_starts_at_a_line_or_word_start_within_the_last_w_characters() -> None:
    assert window_start("short text", 64) == 0
    assert window_start("x" * 500, 0) == 0  # 0: no bound
    text = "alpha beta gamma\ndelta epsilon zeta eta theta iota kappa"
    start = window_start(text, 45)
    assert len(text) - start <= 45 and text[start - 1] == "\n" and text[start:].startswith("delta")
    start = window_start(text, 20)  # no line start near: a word start
    assert len(text) - start <= 20 and text[start - 1] == " " and text[start] != " "
    assert window_start("y" * 100, 10) == 90  # no boundary at all: the last W characters


def test_a_bounded_read_equals_the_full_read_on_a_model_with_a_shorter_memory() -> None:
    """The ring (open, paste, delete past the ring, state far back) and the prefix cache read at
    most the window, and get the state of reading everything, on a model with memory < W."""
    model = ShiftLM(memory=8)
    window = 64
    with torch.inference_mode():
        def full(text: str) -> torch.Tensor:
            return read(model, start_state(model), text).logits

        ring = CheckpointRing(model, every=4, size=3, window=window)
        ring.append(DOCUMENT)  # opening a Session on a long document
        assert ring.chars_read <= window
        assert _same_state(ring.current.logits, full(DOCUMENT))
        before = ring.chars_read
        ring.delete(500)  # far past the ring's 12 characters
        assert ring.text == DOCUMENT[:-500] and ring.chars_read - before <= window
        assert _same_state(ring.current.logits, full(DOCUMENT[:-500]))
        before = ring.chars_read
        far = ring.state_at(300)
        assert ring.chars_read - before <= window and _same_state(far.logits, full(DOCUMENT[:300]))
        ring.append(DOCUMENT)  # a long paste
        assert _same_state(ring.current.logits, full(DOCUMENT[:-500] + DOCUMENT))

        cache = PrefixCache(model, 16, window=window)
        assert _same_state(cache.state(DOCUMENT).logits, full(DOCUMENT)) and cache.chars_read <= window

        unbounded = CheckpointRing(model, every=4, size=3)  # the control: window 0 reads it all
        unbounded.append(DOCUMENT)
        assert unbounded.chars_read == len(DOCUMENT)
        longer_memory = ShiftLM(memory=2 * window)  # and a model that remembers more than W differs
        ring = CheckpointRing(longer_memory, every=4, size=3, window=window)
        ring.append(DOCUMENT)
        assert not _same_state(ring.current.logits, read(longer_memory, start_state(longer_memory), DOCUMENT).logits)


@pytest.fixture(scope="module")
def window_server(host: PluginHost) -> Iterator[ServerThread]:
    small_ring = {"checkpoint_every": 4, "checkpoints": 3, "lexicon_words": 0, "expect_next": False}
    config = ServerConfig(default_models=False, limits=Limits(max_document_chars=len(DOCUMENT)), models=(
        ModelSpec("shift", "shift-lm", options={"memory": 8}),
        ModelSpec("wa-window", "writing-assistant", options={"language_model": "shift", "window_chars": 64,
                                                             **small_ring}),
        ModelSpec("wa-full", "writing-assistant", options={"language_model": "shift", "window_chars": 0,
                                                           **small_ring}),
    ))
    with running_server(config, host) as srv:
        yield srv


def _texts(suggestions: list) -> list[tuple[str, str, float]]:  # type: ignore[type-arg]
    return [(s.text, s.insert_text, round(s.absolute_probability, 5)) for s in suggestions]


def test_sessions_and_suggest_on_a_long_document_read_the_window_and_suggest_as_if_they_read_it_all(
        window_server: ServerThread) -> None:
    kinds = ("word", "next_words")
    text = DOCUMENT[:-3]  # mid-word
    with Client(window_server.target, timeout=60) as client:
        before = client.get_model("wa-window").stats.backend_counters["prefix_cache_chars_read"]
        windowed = client.suggest("wa-window", text, kinds=kinds)
        read_chars = client.get_model("wa-window").stats.backend_counters["prefix_cache_chars_read"] - before
        assert 0 < read_chars <= 64 + 2  # the window (and the typed word's casings' start)
        assert _texts(windowed) == _texts(client.suggest("wa-full", text, kinds=kinds))
        with client.session("wa-window", kinds=kinds, text=text) as bounded, \
                client.session("wa-full", kinds=kinds, text=text) as whole:
            assert _texts(bounded.suggestions) == _texts(whole.suggestions) == _texts(windowed)
            assert _texts(bounded.delete(700)) == _texts(whole.delete(700))  # past the ring
            assert _texts(bounded.append("the la")) == _texts(whole.append("the la"))
            assert bounded.document_chars == len(text) - 700 + 6


# -- no valid request takes a model down ------------------------------------------------

TOKEN_DELAY = 0.001  # seconds per token read: a 2,048-character prompt in one read would take 2 s
STEP_TIMEOUT = 1.0
CHUNK = 256  # tokens per chunk: ~0.26 s


@pytest.fixture
def slow_server(host: PluginHost, monkeypatch: pytest.MonkeyPatch) -> Iterator[ServerThread]:
    monkeypatch.setattr(prompt_reading, "PREFILL_CHUNK_TOKENS", CHUNK)
    limits = Limits(max_prompt_chars=2048, max_document_chars=4000, max_n=4, max_new_tokens=64,
                    default_max_new_tokens=16, step_timeout_s=STEP_TIMEOUT)
    config = ServerConfig(default_models=False, limits=limits, models=(
        ModelSpec("slow", "slow-read-lm", options={"token_delay": TOKEN_DELAY, "step_delay": 0.002}),
        ModelSpec("wa-slow", "writing-assistant", options={"language_model": "slow", "window_chars": CHUNK,
                                                           "lexicon_words": 0}),
    ))
    with running_server(config, host) as srv:
        yield srv


def test_a_request_at_every_documented_limit_leaves_every_model_serving_while_other_calls_run(
        slow_server: ServerThread) -> None:
    """Generate (max_prompt_chars, max_n, max_new_tokens), Score (max_prompt_chars), Suggest and a
    Session at max_document_chars with a delete past the ring, all at once, beside a stream and a
    person typing: each finishes, no model call reaches step_timeout_s (no model is marked
    FAILED), and the stream's tokens keep coming while the long prompts are read."""
    limits = slow_server.app.config.limits
    prompt = (TEXT * 100)[: limits.max_prompt_chars]
    document = (TEXT * 100)[: limits.max_document_chars]
    lm = slow_server.app.registry.find("slow").backend
    assert isinstance(lm, SlowReadLM)
    errors: list[BaseException] = []
    done = threading.Event()
    arrivals: list[float] = []
    results: dict[str, object] = {}

    def run(name: str, fn) -> threading.Thread:  # type: ignore[no-untyped-def]
        def body() -> None:
            try:
                results[name] = fn()
            except BaseException as exc:
                errors.append(exc)
        thread = threading.Thread(target=body, name=name)
        thread.start()
        return thread

    with Client(slow_server.target, timeout=120) as client:
        def stream() -> int:  # short generations, one after another, until the requests at the limits end
            streams = 0
            while not done.is_set():
                for _ in client.generate_stream("slow", "the quick", max_new_tokens=8, temperature=0):
                    arrivals.append(time.monotonic())
                streams += 1
            return streams

        def typing() -> int:
            with client.session("wa-slow", text="the quick brown ") as session:
                for ch in "fox jumps":
                    session.append(ch)
            return len("fox jumps")

        def session_at_the_limit() -> int:
            with client.session("wa-slow", text=document) as session:
                session.delete(limits.max_document_chars)  # past the ring, to the start
                return session.append("the qu")[0].replace_chars

        other = [run("stream", stream), run("typing", typing)]
        started = time.monotonic()
        at_limits = [
            run("generate", lambda: client.generate("slow", prompt, n=limits.max_n,
                                                    max_new_tokens=limits.max_new_tokens, temperature=0)),
            run("score", lambda: client.score("slow", prompt[limits.max_prompt_chars // 2:],
                                              context=prompt[: limits.max_prompt_chars // 2])),
            run("suggest", lambda: client.suggest("wa-slow", document)),
            run("session", session_at_the_limit),
        ]
        for thread in at_limits:
            thread.join(150)
        elapsed = time.monotonic() - started
        done.set()
        for thread in other:
            thread.join(30)
        assert not errors, errors
        assert len(results["generate"].completions) == limits.max_n  # type: ignore[attr-defined]
        scored = results["score"]
        assert len(scored.logprobs) == limits.max_prompt_chars // 2  # type: ignore[attr-defined]
        # read in chunks, scored as one read would: the same model without delays, in one forward
        ids = [lm.vocab.bos_id, *lm.vocab.encode(prompt)[0]]
        logits, _ = RecitingLM().forward(torch.tensor([ids[:-1]]), lm.initial_state(1))
        whole = torch.log_softmax(logits[0].double(), -1)[torch.arange(len(ids) - 1), torch.tensor(ids[1:])]
        assert scored.total_logprob == pytest.approx(  # type: ignore[attr-defined]
            float(whole[limits.max_prompt_chars // 2:].sum()), rel=1e-4)
        assert results["session"] == 2 and results["typing"] == 9 and results["stream"]
        states = {m.name: m.state for m in client.list_models()}
        assert states == {"slow": "ready", "wa-slow": "ready"}, states
    registry = slow_server.app.registry
    assert all(registry.find(name).hangs == 0 for name in ("slow", "wa-slow"))
    # The prompt of 2,048 characters was read in pieces: one read in full takes 2 s, twice the timeout.
    assert lm.longest_read <= CHUNK, lm.longest_read
    assert elapsed > limits.max_prompt_chars * TOKEN_DELAY  # the long reads did happen
    # New short generations kept starting and streaming while the long prompts were read: no
    # wait as long as one unchunked read of the longest prompt.
    gaps = [b - a for a, b in itertools.pairwise(arrivals) if started <= a <= started + elapsed]
    assert len(gaps) > 10 and max(gaps) < limits.max_prompt_chars * TOKEN_DELAY, \
        (len(gaps), elapsed, [round(a - started, 2) for a in arrivals])


@pytest.fixture
def hang_once_server(host: PluginHost) -> Iterator[ServerThread]:
    config = ServerConfig(default_models=False, models=(
        ModelSpec("hang-once", "hang-once-lm", options={"key": f"hang-{time.monotonic_ns()}", "hang_after": 3,
                                                        "hang_seconds": 3.0}, step_timeout_s=0.5),
        ModelSpec("wa-hang", "writing-assistant", options={"language_model": "hang-once", "lexicon_words": 0}),
        ModelSpec("bystander", "toy-lm"),
    ))
    with running_server(config, host) as srv:
        srv.app.registry.reload_backoff = (0.2, 1.0)
        yield srv


def test_a_model_the_watchdog_marks_failed_is_reloaded_with_the_assistant_built_on_it(
        hang_once_server: ServerThread) -> None:
    registry = hang_once_server.app.registry
    with grpc.insecure_channel(hang_once_server.target) as channel:  # a plain stub: no client retries
        stub = generation_pb2_grpc.GenerationStub(channel)
        with pytest.raises(grpc.RpcError) as hung:
            stub.Generate(generation_pb2.GenerateRequest(model="hang-once", prompt="the", max_new_tokens=20,
                                                         temperature=0), timeout=30)
    assert hung.value.code() == grpc.StatusCode.UNAVAILABLE and "step_timeout_s" in (hung.value.details() or "")
    lm, assistant = registry.find("hang-once"), registry.find("wa-hang")
    assert lm.hangs == 1
    # Failed, and said to be reloading; the assistant on it failed with it.
    assert assistant.state in ("failed", "loading", "ready")
    with Client(hang_once_server.target, timeout=30) as client:
        wait_until(lambda: client.get_model("hang-once").state == "ready" and client.get_model("wa-hang").state
                   == "ready", timeout=30, what="the hung model and its assistant READY again")
        assert client.generate("hang-once", "the", max_new_tokens=5, temperature=0).text == " quic"
        assert client.suggest("wa-hang", "the quick brown fox ju")
        assert client.generate("bystander", "the", max_new_tokens=3, temperature=0).text
    assert (lm.reloads, lm.reload_failures, assistant.reloads) == (1, 0, 1)
    scraped = generate_latest(Metrics(registry).registry).decode()
    assert 'rnnserve_model_reloads_total{model="hang-once",outcome="ready"} 1.0' in scraped
    assert 'rnnserve_model_hangs_total{model="hang-once"} 1.0' in scraped


def test_a_failed_model_says_it_is_reloading_until_it_is_back(hang_once_server: ServerThread) -> None:
    registry = hang_once_server.app.registry
    registry.reload_backoff = (2.0, 2.0)
    with grpc.insecure_channel(hang_once_server.target) as channel:
        stub = generation_pb2_grpc.GenerationStub(channel)
        with pytest.raises(grpc.RpcError):
            stub.Generate(generation_pb2.GenerateRequest(model="hang-once", prompt="the", max_new_tokens=20,
                                                         temperature=0), timeout=30)
    with Client(hang_once_server.target, timeout=30) as client:
        failed = {m.name: m for m in client.list_models()}
        assert failed["hang-once"].state == "failed" and "reloading in 2 s" in failed["hang-once"].reason
        assert failed["wa-hang"].state == "failed" and "hang-once" in failed["wa-hang"].reason
        assert failed["bystander"].state == "ready"
        wait_until(lambda: client.get_model("wa-hang").state == "ready", timeout=30, what="wa-hang READY again")
