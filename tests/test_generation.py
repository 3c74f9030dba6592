"""Generation and Score end to end: real server on loopback, toy reciting model, the client library."""

from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
import torch

from rnnserve.testing.server import ServerThread
from rnnserve.testing.waiting import wait_until
from rnnserve_client import Client, errors
from tests.conftest import backend
from tests.support.toy_plugin import TEXT, RecitingLM


def test_greedy_recites_the_text_after_the_prompt(client: Client) -> None:
    result = client.generate("toy", "the qu", temperature=0, max_new_tokens=20)
    assert result.text == TEXT[6:26]
    assert result.finish_reason == "length"
    assert result.completions[0].generated_tokens == 20


def test_end_of_text_finishes_the_sample(client: Client) -> None:
    result = client.generate("toy", TEXT[:-5], temperature=0, max_new_tokens=100)
    assert result.text == TEXT[-5:]
    assert result.finish_reason == "end_of_text"


def test_stream_concatenates_to_the_unary_result(client: Client) -> None:
    unary = client.generate("toy", "the", max_new_tokens=60, seed=11)
    chunks = list(client.generate_stream("toy", "the", max_new_tokens=60, seed=11))
    assert "".join(c.text for c in chunks) == unary.text
    assert [c.finish_reason for c in chunks[:-1]] == [None] * (len(chunks) - 1)
    assert chunks[-1].finish_reason == "length"
    assert all(c.seed == 11 for c in chunks)


def test_stop_sequence_split_across_steps_never_reaches_the_stream(client: Client) -> None:
    chunks = list(client.generate_stream("toy", "the ", temperature=0, max_new_tokens=100, stop=["fox"]))
    text = "".join(c.text for c in chunks)
    assert text == "quick brown "
    assert chunks[-1].finish_reason == "stop_sequence"
    unary = client.generate("toy", "the ", temperature=0, max_new_tokens=100, stop=["jumps", "own f"])
    assert unary.text == "quick br"
    assert unary.completions[0].stop_sequence == "own f"


def test_seed_is_echoed_and_reproducible(client: Client) -> None:
    a = client.generate("toy", "", max_new_tokens=40, seed=123)
    b = client.generate("toy", "", max_new_tokens=40, seed=123)
    c = client.generate("toy", "", max_new_tokens=40, seed=124)
    assert a.seed == 123 and a.text == b.text and a.text != c.text
    drawn = client.generate("toy", "", max_new_tokens=5)
    assert isinstance(drawn.seed, int)
    again = client.generate("toy", "", max_new_tokens=5, seed=drawn.seed)
    assert again.text == drawn.text


def test_seeded_output_does_not_depend_on_batch_neighbours(server: ServerThread, client: Client) -> None:
    alone = client.generate("toy-slow", "the", max_new_tokens=30, seed=99, top_p=0.9).text
    with ThreadPoolExecutor(8) as pool:
        noise = [pool.submit(client.generate, "toy-slow", "x" * i, max_new_tokens=10 + 3 * i, temperature=0.5 + i / 8)
                 for i in range(7)]
        crowded = pool.submit(client.generate, "toy-slow", "the", max_new_tokens=30, seed=99, top_p=0.9)
        for f in noise:
            f.result()
        assert crowded.result().text == alone
    assert max(backend(server, "toy-slow").step_batch_sizes) > 1  # it really was batched


def test_n_samples_use_consecutive_seeds(client: Client) -> None:
    result = client.generate("toy", "the", max_new_tokens=25, n=3, seed=40)
    assert [c.seed for c in result.completions] == [40, 41, 42]
    assert [c.index for c in result.completions] == [0, 1, 2]
    for c in result.completions:
        assert c.text == client.generate("toy", "the", max_new_tokens=25, seed=c.seed).text
    assert len({c.text for c in result.completions}) == 3


def test_logprobs_are_the_model_distribution(client: Client) -> None:
    result = client.generate("toy", "the qu", temperature=0, max_new_tokens=5, logprobs=True)
    lps = result.completions[0].logprobs
    assert "".join(lp.token for lp in lps) == result.text
    model = RecitingLM()
    ids = [model.vocab.bos_id, *model.vocab.encode("the qu" + result.text)[0]]
    logits, _ = model.forward(torch.tensor([ids[:-1]]), model.initial_state(1))
    expected = torch.log_softmax(logits[0], -1)[torch.arange(len(ids) - 1), torch.tensor(ids[1:])][-5:]
    assert [lp.logprob for lp in lps] == pytest.approx(expected.tolist(), abs=1e-5)


def test_unknown_characters_are_reported(client: Client) -> None:
    result = client.generate("toy", "thé quÏck", temperature=0, max_new_tokens=3)
    assert result.unknown_characters == ["é", "Ï"]


def test_score_matches_the_model_and_reports_bits(client: Client) -> None:
    scored = client.score("toy", "the quick")
    model = RecitingLM()
    ids = [model.vocab.bos_id, *model.vocab.encode("the quick")[0]]
    logits, _ = model.forward(torch.tensor([ids[:-1]]), model.initial_state(1))
    expected = torch.log_softmax(logits[0], -1)[torch.arange(len(ids) - 1), torch.tensor(ids[1:])]
    assert [lp.token for lp in scored.logprobs] == list("the quick")
    assert [lp.logprob for lp in scored.logprobs] == pytest.approx(expected.tolist(), abs=1e-5)
    assert scored.total_logprob == pytest.approx(float(expected.sum()), abs=1e-4)
    assert scored.nats_per_char == pytest.approx(-float(expected.mean()), abs=1e-5)
    assert scored.bits_per_char == pytest.approx(scored.nats_per_char / math.log(2))


def test_score_with_context_scores_only_the_text(client: Client) -> None:
    full = client.score("toy", "the quick")
    tail = client.score("toy", "quick", context="the ")
    assert [lp.logprob for lp in tail.logprobs] == pytest.approx([lp.logprob for lp in full.logprobs[4:]], abs=1e-5)


def _assert_no_more_steps_for_it(server: ServerThread, name: str) -> None:
    """Nothing of an ended call is left on ``name``'s thread: once the batch is empty, a short
    generation runs alone (every step of it has batch size 1) and the step counter moves by its steps only.

    Waits on the counters themselves (no sleep): a sequence still stepping would share the
    probe's steps or add its own."""
    stats = server.app.registry.find(name).stats
    model = backend(server, name)
    wait_until(lambda: stats.active_sequences == 0 and stats.queue_depth == 0, 10,
               f"{name}'s batch and queue to empty")
    steps, sizes = stats.steps_total, len(model.step_batch_sizes)
    with Client(server.target, timeout=30) as probe:
        assert probe.generate(name, "the qu", temperature=0, max_new_tokens=4).text == "ick "
    assert model.step_batch_sizes[sizes:] == [1] * (stats.steps_total - steps), "another sequence shared a step"
    assert stats.steps_total - steps <= 4


def test_cancelling_a_stream_stops_the_model_work(server: ServerThread, client: Client) -> None:
    stats = server.app.registry.find("toy-slow").stats
    before = stats.steps_total
    stream = client.generate_stream("toy-slow", "", max_new_tokens=2000, temperature=0)
    next(stream)
    next(stream)
    stream.cancel()
    wait_until(lambda: stats.active_sequences == 0, 5, "the cancelled sequence to leave the batch")
    assert stats.steps_total - before < 100  # the full recitation is 136 steps
    _assert_no_more_steps_for_it(server, "toy-slow")


def test_deadline_expiry_stops_the_model_work(server: ServerThread, client: Client) -> None:
    stats = server.app.registry.find("toy-slow").stats
    before = stats.steps_total
    with pytest.raises(errors.DeadlineExceeded):
        client.generate("toy-slow", "", max_new_tokens=2000, temperature=0, timeout=0.3)
    wait_until(lambda: stats.active_sequences == 0, 5, "the expired call's sequence to leave the batch")
    assert stats.steps_total - before < 100  # the full recitation is 136 steps
    _assert_no_more_steps_for_it(server, "toy-slow")


def test_bad_parameters_are_invalid_argument_naming_the_limit(client: Client) -> None:
    cases = [
        ({"temperature": -1.0}, "temperature"),
        ({"top_p": 0.0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
        ({"repetition_penalty": 0.0}, "repetition_penalty"),
        ({"max_new_tokens": 10**6}, "max_new_tokens"),
        ({"n": 1000}, "max_n"),
        ({"stop": [""]}, "stop"),
        ({"stop": ["x" * 1000]}, "max_stop_chars"),
    ]
    for params, needle in cases:
        with pytest.raises(errors.InvalidArgument) as info:
            client.generate("toy", "the", **params)
        assert needle in info.value.details, (params, info.value.details)
    with pytest.raises(errors.InvalidArgument, match="max_prompt_chars"):
        client.generate("toy", "x" * 100_000)
    with pytest.raises(errors.InvalidArgument, match="model is required"):
        client.generate("", "the")


def test_unknown_model_is_not_found_naming_the_available_ones(client: Client) -> None:
    with pytest.raises(errors.NotFound) as info:
        client.generate("no-such-model", "the")
    assert "toy" in info.value.details and "toy-slow" in info.value.details
    assert info.value.code == grpc.StatusCode.NOT_FOUND
    with pytest.raises(errors.NotFound, match="language-model"):
        client.generate("toy-tr", "the")  # a translator is not a language model
    with pytest.raises(errors.NotFound, match="toy-tr"):
        client.translate("toy", ["hello"])


def test_failed_model_is_failed_precondition_with_its_reason(client: Client) -> None:
    with pytest.raises(errors.FailedPrecondition, match="weights are corrupt"):
        client.generate("toy-broken", "the")


def test_backend_crash_fails_only_its_requests_and_leaks_nothing(server: ServerThread, client: Client) -> None:
    with pytest.raises(errors.Internal) as info:
        client.generate("toy-crash", "the", max_new_tokens=50, temperature=0)
    assert "request id" in info.value.details
    assert "/secret/path" not in info.value.details and "Traceback" not in info.value.details
    assert client.generate("toy", "the qu", temperature=0, max_new_tokens=5).text == "ick b"
    # the crashed model still answers calls that need no failing step
    assert client.score("toy-crash", "the").nats_per_char > 0


def test_model_math_runs_on_the_scheduler_thread(server: ServerThread, client: Client) -> None:
    client.generate("toy-slow", "a", max_new_tokens=3)
    assert backend(server, "toy-slow").thread_names == {"scheduler:toy-slow"}


def test_concurrent_streams_are_all_served(client: Client) -> None:
    def run(i: int) -> str:
        return "".join(c.text for c in client.generate_stream("toy", "the", max_new_tokens=40, seed=i))

    with ThreadPoolExecutor(16) as pool:
        texts = list(pool.map(run, range(16)))
    assert all(texts)
    assert texts == [client.generate("toy", "the", max_new_tokens=40, seed=i).text for i in range(16)]


def test_threads_do_not_leak_between_servers(toy_host) -> None:  # type: ignore[no-untyped-def]
    from rnnserve.ops.config import ServerConfig
    from rnnserve.testing.server import running_server

    before = {t.name for t in threading.enumerate()}
    with running_server(ServerConfig(), toy_host) as srv, Client(srv.target) as c:
        assert c.generate("toy", "the", max_new_tokens=3, temperature=0.0).text  # greedy: the recited text
    leaked = {t.name for t in threading.enumerate()} - before
    assert "scheduler:toy" not in leaked, leaked  # running_server joined it on close
