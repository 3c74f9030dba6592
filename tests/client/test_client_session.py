"""Typing sessions: the open event first, then one event per edit, in order, over one stream."""

from __future__ import annotations

import asyncio
import threading

import grpc
import pytest

from rnnserve_client import AsyncClient, Client, errors
from rnnserve_client.v1 import assistant_pb2 as AS
from tests.client.fake_rnnserve import FakeServer, wait_until_cancelled


class Typist:
    """A fake Session handler: keeps the document and suggests ``document + "!"``.

    ``events`` records each event as received, then ``("closed",)`` when the client
    half-closes the stream; ``ended`` is set when the handler returns for any reason.
    """

    def __init__(self) -> None:
        self.events: list[tuple] = []
        self.ended = threading.Event()

    def __call__(self, requests, context):
        document = ""
        try:
            for index, request in enumerate(requests):
                kind = request.WhichOneof("event")
                event = getattr(request, kind)
                if kind == "open":
                    document = event.text
                    options = event.options
                    self.events.append(
                        (
                            kind,
                            event.model,
                            event.text,
                            list(options.kinds),
                            options.max_suggestions,
                            options.max_phrase_chars,
                        )
                    )
                elif kind == "append":
                    document += event.text
                    self.events.append((kind, event.text))
                elif kind == "delete":
                    document = document[: max(0, len(document) - event.chars)]
                    self.events.append((kind, event.chars))
                else:
                    document = ""
                    self.events.append((kind,))
                suggestion = AS.Suggestion(text=document + "!", kind=AS.SUGGESTION_KIND_PHRASE, probability=1.0)
                yield AS.SessionResponse(
                    session_id="sess-1",
                    event_index=index,
                    suggestions=[suggestion],
                    document_chars=len(document),
                )
            self.events.append(("closed",))
        finally:
            self.ended.set()


EXPECTED_EVENTS = [
    ("open", "austen-assistant", "Dear ", [AS.SUGGESTION_KIND_WORD, AS.SUGGESTION_KIND_PHRASE], 2, 30),
    ("append", "Eliz"),
    ("delete", 2),
    ("reset",),
    ("append", "Mr"),
    ("closed",),
]


def test_session_sends_events_in_order(fake: FakeServer) -> None:
    typist = Typist()
    fake.on("Session", typist)
    with Client(fake.target, token="t") as client:
        with client.session(
            "austen-assistant", kinds=("word", "phrase"), max_suggestions=2, max_phrase_chars=30, text="Dear "
        ) as session:
            assert session.session_id == "sess-1"
            assert [s.text for s in session.suggestions] == ["Dear !"]
            assert session.document_chars == 5
            assert [s.text for s in session.append("Eliz")] == ["Dear Eliz!"]
            assert [s.text for s in session.delete(2)] == ["Dear El!"]
            assert session.document_chars == 7
            assert [(s.text, s.kind) for s in session.reset()] == [("!", "phrase")]
            assert [s.text for s in session.append("Mr")] == ["Mr!"]
            assert session.suggestions[0].text == "Mr!"
        assert typist.events == EXPECTED_EVENTS
        with pytest.raises(RuntimeError, match="not open"):
            session.append("x")
    assert len(fake.calls["Session"]) == 1


def _refuse_edits(requests, context):
    next(requests)
    yield AS.SessionResponse(session_id="s")
    next(requests)
    context.abort(grpc.StatusCode.FAILED_PRECONDITION, "document over max_document_chars")


def test_error_mid_session_ends_it_once(fake: FakeServer) -> None:
    fake.on("Session", _refuse_edits)
    with Client(fake.target) as client, client.session("as") as session:
        with pytest.raises(errors.FailedPrecondition) as caught:
            session.append("x" * 10)
        assert caught.value.details == "document over max_document_chars"
        with pytest.raises(RuntimeError, match="not open"):
            session.append("y")
    # Leaving the block neither raises the error a second time nor hangs.


def test_leaving_with_an_exception_cancels_the_stream(fake: FakeServer) -> None:
    # The handler outlives the request stream until the call is cancelled (or 2 s pass), so
    # only a cancellation, not a half-close, ends the call promptly with the context inactive.
    active_at_end: list[bool] = []
    ended = threading.Event()

    def hold_open(requests, context):
        try:
            for _ in requests:
                yield AS.SessionResponse(session_id="s")
        finally:
            wait_until_cancelled(context, limit=2)
            active_at_end.append(context.is_active())
            ended.set()

    fake.on("Session", hold_open)
    with Client(fake.target) as client, pytest.raises(KeyError), client.session("as") as session:
        session.append("a")
        raise KeyError("editor crashed")
    assert ended.wait(5)
    assert active_at_end == [False]


def test_server_ending_the_session_early_is_an_error(fake: FakeServer) -> None:
    def end_after_open(requests, context):
        next(requests)
        yield AS.SessionResponse(session_id="s")

    fake.on("Session", end_after_open)
    with Client(fake.target) as client, client.session("as") as session, pytest.raises(errors.Internal):
        session.append("a")


def test_async_session_sends_events_in_order(fake: FakeServer) -> None:
    typist = Typist()
    fake.on("Session", typist)

    async def main() -> None:
        async with AsyncClient(fake.target) as client:
            async with client.session(
                "austen-assistant",
                kinds=["word", "phrase"],
                max_suggestions=2,
                max_phrase_chars=30,
                text="Dear ",
            ) as session:
                assert (session.session_id, session.suggestions[0].text) == ("sess-1", "Dear !")
                assert (await session.append("Eliz"))[0].text == "Dear Eliz!"
                assert (await session.delete(2))[0].text == "Dear El!"
                assert (await session.reset())[0].text == "!"
                assert (await session.append("Mr"))[0].text == "Mr!"
                assert session.document_chars == 2
            assert typist.events == EXPECTED_EVENTS
            with pytest.raises(RuntimeError, match="not open"):
                await session.append("x")

    asyncio.run(main())


def test_async_error_mid_session_ends_it_once(fake: FakeServer) -> None:
    fake.on("Session", _refuse_edits)

    async def main() -> None:
        async with AsyncClient(fake.target) as client, client.session("as") as session:
            with pytest.raises(errors.FailedPrecondition, match="max_document_chars"):
                await session.append("x")
            with pytest.raises(RuntimeError, match="not open"):
                await session.append("y")

    asyncio.run(main())


def _answer_open_then_stall(requests, context):  # type: ignore[no-untyped-def]
    """Answers the open event, then reads the next one and never answers it."""
    for index, _ in enumerate(requests):
        if index == 0:
            yield AS.SessionResponse(session_id="sess-1", event_index=0)
        else:
            wait_until_cancelled(context)
            return


def test_async_session_after_a_timed_out_edit_raises_a_typed_error(fake: FakeServer) -> None:
    """asyncio.wait_for cancelling an edit's read cancels the whole gRPC call; the session's
    next edit used to raise a bare asyncio.CancelledError (read as the task being cancelled)."""
    fake.on("Session", _answer_open_then_stall)

    async def main() -> None:
        async with AsyncClient(fake.target) as client, client.session("as") as session:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(session.append("x"), 0.3)
            with pytest.raises(errors.Cancelled, match="an earlier read of this stream was cancelled"):
                await session.append("y")

    asyncio.run(main())


def test_async_stream_after_a_timed_out_read_raises_a_typed_error(fake: FakeServer) -> None:
    from rnnserve_client.v1 import generation_pb2 as GS

    def one_chunk_then_stall(request, context):  # type: ignore[no-untyped-def]
        yield GS.GenerateStreamResponse(text="It")
        wait_until_cancelled(context)

    fake.on("GenerateStream", one_chunk_then_stall)

    async def main() -> None:
        async with AsyncClient(fake.target) as client:
            stream = client.generate_stream("lm", "x")
            assert (await stream.__anext__()).text == "It"
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(stream.__anext__(), 0.3)
            with pytest.raises(errors.Cancelled, match="an earlier read of this stream was cancelled"):
                await stream.__anext__()

    asyncio.run(main())
