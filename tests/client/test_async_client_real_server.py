"""``AsyncClient`` against a real rnnserve server on loopback (the other client tests use a fake).

The server hosts real tiny models: a seeded char-lstm checkpoint (the char-lstm plugin),
the writing assistant over it, and the toy test plugin's reciting model (exact expected
text), its slow twin (to cancel and to time out) and translator. Every RPC goes through
``AsyncClient`` and is checked against what the model or the sync ``Client`` gives;
cancellation and deadlines are checked by the server's own counters, not by timing.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest

from rnnserve.ops.config import Limits, ModelSpec, ServerConfig
from rnnserve.testing import plugin_host, running_server
from rnnserve.testing.server import ServerThread
from rnnserve.testing.waiting import wait_until_async
from rnnserve_client import AsyncClient, Client, errors
from rnnserve_client.results import Suggestion
from tests.scaleout.conftest import make_tiny_model
from tests.support import toy_plugin
from tests.support.toy_plugin import TEXT

T = TypeVar("T")

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    lstm = make_tiny_model(tmp_path_factory.mktemp("async-client") / "tiny-lstm")
    config = ServerConfig(default_models=False, limits=Limits(max_queue=64), models=(
        ModelSpec("lstm", "char-lstm", path=str(lstm)),
        ModelSpec("lstm-assist", "writing-assistant", options={"language_model": "lstm"}),
        ModelSpec("toy", "toy-lm"),
        ModelSpec("toy-slow", "toy-lm", options={"step_delay": 0.01}),
        ModelSpec("toy-tr", "toy-translator"),
        ModelSpec("toy-assist", "toy-assistant"),
    ))
    with running_server(config, plugin_host("char-lstm", "writing-assistant", toy_plugin)) as srv:
        yield srv


@pytest.fixture(scope="module")
def sync_client(server: ServerThread) -> Iterator[Client]:
    with Client(server.target, timeout=30) as client:
        yield client


def run(server: ServerThread, body: Callable[[AsyncClient], Awaitable[T]]) -> T:
    """Run ``body(client)`` in a fresh event loop, with an AsyncClient created inside it."""

    async def main() -> T:
        async with AsyncClient(server.target, timeout=30) as client:
            return await body(client)

    return asyncio.run(asyncio.wait_for(main(), 60))


def _same(a: list[Suggestion], b: list[Suggestion]) -> bool:
    return [(s.text, s.kind, s.insert_text, s.replace_chars) for s in a] == \
        [(s.text, s.kind, s.insert_text, s.replace_chars) for s in b] and \
        all(math.isclose(x.absolute_probability, y.absolute_probability, rel_tol=1e-4)
            for x, y in zip(a, b, strict=True))


def test_list_and_get_models(server: ServerThread) -> None:
    async def body(client: AsyncClient) -> Any:
        return (await client.list_models(), await client.list_models("translator"), await client.get_model("lstm"),
                await client.get_model("toy"))

    every, translators, lstm, toy = run(server, body)
    assert sorted(m.name for m in every) == ["lstm", "lstm-assist", "toy", "toy-assist", "toy-slow", "toy-tr"]
    assert all(m.state == "ready" for m in every)
    assert [m.name for m in translators] == ["toy-tr"]
    assert (lstm.kind, lstm.backend) == ("language-model", "char-lstm")
    assert lstm.parameter_count > 0
    assert (toy.backend, toy.parameter_count) == ("toy-lm", 42)


def test_generate_recites_and_matches_the_sync_client(server: ServerThread, sync_client: Client) -> None:
    async def body(client: AsyncClient) -> Any:
        return (await client.generate("toy", "the qu", temperature=0, max_new_tokens=20),
                await client.generate("lstm", "It is", max_new_tokens=30, seed=7, n=2))

    toy, lstm = run(server, body)
    assert toy.text == TEXT[6:26] and toy.finish_reason == "length"
    assert [c.seed for c in lstm.completions] == [7, 8]
    expected = sync_client.generate("lstm", "It is", max_new_tokens=30, seed=7, n=2)
    assert [c.text for c in lstm.completions] == [c.text for c in expected.completions]
    assert all(c.generated_tokens == 30 for c in lstm.completions)


def test_generate_stream_concatenates_to_the_unary_result(server: ServerThread) -> None:
    async def body(client: AsyncClient) -> Any:
        unary = await client.generate("lstm", "a truth", max_new_tokens=40, seed=3)
        chunks = [c async for c in client.generate_stream("lstm", "a truth", max_new_tokens=40, seed=3)]
        return unary, chunks

    unary, chunks = run(server, body)
    assert "".join(c.text for c in chunks) == unary.text
    assert chunks[-1].finish_reason == unary.finish_reason == "length"
    assert all(c.finish_reason is None for c in chunks[:-1]) and all(c.seed == 3 for c in chunks)


def test_score_matches_the_sync_client(server: ServerThread, sync_client: Client) -> None:
    scored = run(server, lambda client: client.score("lstm", "universally", context="a truth "))
    expected = sync_client.score("lstm", "universally", context="a truth ")
    assert [t.token for t in scored.logprobs] == list("universally")
    assert [t.logprob for t in scored.logprobs] == pytest.approx([t.logprob for t in expected.logprobs], abs=1e-6)
    assert scored.bits_per_char == pytest.approx(scored.nats_per_char / math.log(2))


def test_translate(server: ServerThread) -> None:
    async def body(client: AsyncClient) -> Any:
        return (await client.translate("toy-tr", "good morning", n_best=2),
                await client.translate("toy-tr", ["a b", "c"]))

    one, two = run(server, body)
    assert [h.text for h in one[0].hypotheses] == ["GOOD MORNING", "GOOD MORNING !"]
    assert [r.hypotheses[0].text for r in two] == ["A B", "C"]


def test_suggest_matches_the_sync_client(server: ServerThread, sync_client: Client) -> None:
    async def body(client: AsyncClient) -> Any:
        return (await client.suggest("toy-assist", "Eli", max_suggestions=2),
                await client.suggest("lstm-assist", "It is a tr", kinds=("word", "next_words")))

    toy, lstm = run(server, body)
    assert [(s.text, s.insert_text, s.replace_chars) for s in toy] == [("Elizabeth", "zabeth", 3),
                                                                      ("Elinor", "nor", 3)]
    assert lstm and _same(lstm, sync_client.suggest("lstm-assist", "It is a tr", kinds=("word", "next_words")))


def test_session_edits_match_suggest(server: ServerThread, sync_client: Client) -> None:
    kinds = ("word", "next_words")

    async def body(client: AsyncClient) -> Any:
        async with client.session("lstm-assist", kinds=kinds, text="It is a") as session:
            opened = (session.session_id, session.document_chars, session.suggestions)
            typed = await session.append(" tr")
            deleted = await session.delete(2)
            chars = session.document_chars
            cleared = await session.reset()
        return opened, typed, deleted, chars, cleared

    (session_id, opened_chars, opened), typed, deleted, chars, cleared = run(server, body)
    assert session_id and opened_chars == len("It is a")
    expect = lambda text: sync_client.suggest("lstm-assist", text, kinds=kinds)  # noqa: E731
    assert _same(opened, expect("It is a"))
    assert _same(typed, expect("It is a tr"))
    assert chars == len("It is a ") and _same(deleted, expect("It is a "))
    assert _same(cleared, expect(""))
    assert _assistant(server).open_sessions == 0  # closed by the context manager


def _stats(server: ServerThread, name: str) -> Any:
    return server.app.registry.find(name).stats


async def _assert_work_stopped(client: AsyncClient, server: ServerThread, before: int) -> None:
    """The toy-slow model's batch empties (as GetModel reports it), it stopped well before the
    full recitation (136 steps), and a short probe then runs alone: no step is left for the ended call."""

    async def idle() -> bool:
        stats = (await client.get_model("toy-slow")).stats
        return stats.active_sequences == 0 and stats.queue_depth == 0

    await wait_until_async(idle, 10, "toy-slow's batch to empty")
    stats = _stats(server, "toy-slow")
    assert stats.steps_total - before < 100, "the generation ran (nearly) to its end"
    model = server.app.registry.find("toy-slow").backend
    steps, sizes = stats.steps_total, len(model.step_batch_sizes)
    assert (await client.generate("toy-slow", "the qu", temperature=0, max_new_tokens=4)).text == "ick "
    assert model.step_batch_sizes[sizes:] == [1] * (stats.steps_total - steps), "another sequence shared a step"


def test_cancelled_stream_stops_the_server_work(server: ServerThread) -> None:
    before = _stats(server, "toy-slow").steps_total

    async def body(client: AsyncClient) -> list[str]:
        stream = client.generate_stream("toy-slow", "", max_new_tokens=2000, temperature=0)
        got = [(await anext(stream)).text, (await anext(stream)).text]
        stream.cancel()
        await _assert_work_stopped(client, server, before)
        return got

    got = "".join(run(server, body))
    assert got and got == TEXT[:len(got)]


def test_reading_a_cancelled_stream_raises_cancelled(server: ServerThread) -> None:
    """As in the sync client: not a bare asyncio.CancelledError, which would read as the task's own."""
    async def body(client: AsyncClient) -> None:
        stream = client.generate_stream("toy", "", max_new_tokens=100, temperature=0)
        await anext(stream)
        stream.cancel()
        with pytest.raises(errors.Cancelled, match="cancelled by its cancel"):
            await anext(stream)

    run(server, body)


def test_a_cancelled_read_cancels_the_call_and_the_server_work(server: ServerThread) -> None:
    """``asyncio.wait_for`` around a read cancels the gRPC call: the server stops, the stream says why."""
    before = _stats(server, "toy-slow").steps_total

    async def body(client: AsyncClient) -> None:
        stream = client.generate_stream("toy-slow", "", max_new_tokens=2000, temperature=0)
        await anext(stream)
        while True:  # chunks come every emit interval; one read will outlast the short timeout
            try:
                await asyncio.wait_for(anext(stream), 0.001)
            except TimeoutError:
                break
        with pytest.raises(errors.Cancelled, match="earlier read of this stream was cancelled"):
            await anext(stream)
        await _assert_work_stopped(client, server, before)

    run(server, body)


def test_deadline_ends_the_call_and_the_server_work(server: ServerThread) -> None:
    before = _stats(server, "toy-slow").steps_total

    async def body(client: AsyncClient) -> None:
        with pytest.raises(errors.DeadlineExceeded):
            await client.generate("toy-slow", "", max_new_tokens=2000, temperature=0, timeout=0.3)
        await _assert_work_stopped(client, server, before)
        chunks = []
        with pytest.raises(errors.DeadlineExceeded):  # a stream's deadline, after some chunks
            async for chunk in client.generate_stream("toy-slow", "", max_new_tokens=2000, temperature=0,
                                                      timeout=0.3):
                chunks.append(chunk)
        assert chunks, "the stream ended before its first chunk"
        await _assert_work_stopped(client, server, before)

    run(server, body)


def test_session_deadline_covers_the_whole_session(server: ServerThread) -> None:
    """``timeout`` of a session is its whole lifetime, not each edit's: once it passes the server
    frees the session and the next edit raises DeadlineExceeded."""

    async def body(client: AsyncClient) -> None:
        async with client.session("toy-assist", timeout=0.5) as session:
            assert [s.text for s in await session.append("Eli")] == ["Elizabeth", "Elinor"]
            assert _assistant(server).open_sessions == 1
            await wait_until_async(lambda: _assistant(server).open_sessions == 0, 10,
                                   "the server to end the session at its deadline")
            with pytest.raises(errors.DeadlineExceeded):
                await session.append("z")

    run(server, body)


def test_an_edit_racing_the_session_deadline_raises_deadline_exceeded(server: ServerThread) -> None:
    """Edits sent back to back until the deadline: the one it interrupts (its write may be in
    flight) raises DeadlineExceeded, not the INTERNAL error grpc.aio gives the failed write."""

    async def body(client: AsyncClient) -> int:
        edits = 0
        async with client.session("toy-assist", timeout=0.5) as session:
            with pytest.raises(errors.DeadlineExceeded):
                while edits < 1_000_000:
                    await session.append("l")
                    edits += 1
        await wait_until_async(lambda: _assistant(server).open_sessions == 0, 10, "the server to free the session")
        return edits

    assert run(server, body) > 1


def test_errors_are_typed(server: ServerThread) -> None:
    async def body(client: AsyncClient) -> None:
        with pytest.raises(errors.NotFound, match="toy-slow"):
            await client.generate("no-such-model", "x")
        with pytest.raises(errors.NotFound):
            await client.get_model("no-such-model")
        with pytest.raises(errors.InvalidArgument, match="temperature"):
            await client.generate("toy", "x", temperature=-1.0)
        with pytest.raises(errors.InvalidArgument):
            async for _ in client.generate_stream("toy", "x", top_p=1.5):
                pass
        with pytest.raises(errors.NotFound):
            await client.translate("toy", "x")  # a language model is no translator

    run(server, body)


def test_client_round_trips_many_concurrent_calls(server: ServerThread, sync_client: Client) -> None:
    async def body(client: AsyncClient) -> list[str]:
        results = await asyncio.gather(*(client.generate("lstm", "It", max_new_tokens=20, seed=i) for i in range(12)))
        return [r.text for r in results]

    texts = run(server, body)
    assert texts == [sync_client.generate("lstm", "It", max_new_tokens=20, seed=i).text for i in range(12)]


def _assistant(server: ServerThread) -> Any:
    """The server's Assistant service (it counts open sessions)."""
    from rnnserve.edge.services.assistant import AssistantService

    return next(s for s in server.app.services if isinstance(s, AssistantService))
