"""A parameter the wire cannot carry is refused by the client, naming it, before anything is sent
(issue 15, 5j): protobuf's own ``ValueError: Value out of range: -5`` named nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from rnnserve.testing.server import ServerThread
from rnnserve_client import AsyncClient, Client, errors

CASES: list[tuple[str, Callable[[Client], Any], str]] = [
    ("top_k", lambda c: c.generate("toy", "the", top_k=-5), "top_k must be in [0, 4294967295], got -5"),
    ("max_new_tokens", lambda c: c.generate("toy", "the", max_new_tokens=2**32),
     "max_new_tokens must be in [0, 4294967295], got 4294967296"),
    ("seed", lambda c: c.generate("toy", "the", seed=-1), "seed must be in [0, 18446744073709551615], got -1"),
    ("n", lambda c: c.generate("toy", "the", n="2"), "n must be an int in [0, 4294967295], got str '2'"),
    ("temperature", lambda c: c.generate("toy", "the", temperature="hot"), "temperature must be a number"),
    ("stop", lambda c: c.generate("toy", "the", stop=["ok", 3]), "stop must be a str, got int 3"),
    ("text", lambda c: c.score("toy", 42), "text must be a str, got int 42"),
    ("n_best", lambda c: c.translate("toy-tr", ["a"], n_best=-2), "n_best must be in [0, 4294967295], got -2"),
    ("max_suggestions", lambda c: c.suggest("toy-assist", "x", max_suggestions=-1),
     "max_suggestions must be in [0, 4294967295], got -1"),
    ("kinds", lambda c: c.suggest("toy-assist", "x", kinds="wrod"), "unknown SuggestionKind 'wrod'"),
    ("kind", lambda c: c.list_models(kind="lm"),
     "kind must be one of 'language-model', 'translator', 'assistant' or None, got 'lm'"),
]


def _requests(client: Client, model: str) -> int:
    return client.get_model(model).stats.requests_total


@pytest.mark.parametrize(("parameter", "call", "message"), CASES, ids=[c[0] for c in CASES])
def test_client_refuses_a_parameter_naming_it(client: Client, parameter: str, call: Callable[[Client], Any],
                                              message: str) -> None:
    before = _requests(client, "toy")
    with pytest.raises(errors.InvalidParameter) as info:
        call(client)
    assert info.value.parameter == parameter
    assert message in info.value.details
    # The same family as the server's refusals, and still a ValueError for code that caught that.
    assert isinstance(info.value, errors.InvalidArgument) and isinstance(info.value, ValueError)
    assert info.value.code.name == "INVALID_ARGUMENT"
    assert _requests(client, "toy") == before  # nothing was sent


def test_session_delete_is_refused_naming_chars(client: Client) -> None:
    with client.session("toy-assist", text="the") as session, \
            pytest.raises(errors.InvalidParameter, match=r"chars must be in \[0, 4294967295\], got -1"):
        session.delete(-1)


def test_async_client_refuses_the_same_way(server: ServerThread) -> None:
    async def main() -> None:
        async with AsyncClient(server.target, timeout=30) as client:
            with pytest.raises(errors.InvalidParameter, match=r"top_k must be in \[0, 4294967295\], got -5") as info:
                await client.generate("toy", "the", top_k=-5)
            assert info.value.parameter == "top_k"
            # In range, the value reaches the server, which checks it against its own limits.
            assert (await client.generate("toy", "the", top_k=5, max_new_tokens=2)).text

    asyncio.run(main())
