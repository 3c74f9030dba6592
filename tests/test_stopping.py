"""Stop sequences are never emitted, also when they arrive split across steps."""

from __future__ import annotations

from rnnserve.runtime.stopping import StopMatcher


def _run(stops: tuple[str, ...], pieces: list[str]) -> tuple[str, str | None]:
    matcher, out = StopMatcher(stops), ""
    for piece in pieces:
        emitted, stop = matcher.feed(piece)
        out += emitted
        if stop is not None:
            return out, stop
    return out + matcher.flush(), None


def test_stop_split_across_characters_is_not_leaked() -> None:
    assert _run(("END",), list("abcENDxyz")) == ("abc", "END")


def test_partial_stop_prefix_is_released_when_it_does_not_complete() -> None:
    matcher = StopMatcher(("END",))
    assert matcher.feed("aE") == ("a", None)
    assert matcher.feed("N") == ("", None)
    assert matcher.feed("x") == ("ENx", None)


def test_earliest_of_several_stops_wins() -> None:
    assert _run(("cd", "bcx"), list("abcd")) == ("ab", "cd")
    assert _run(("\n\n", "."), ["Hello", ".", " more"]) == ("Hello", ".")


def test_held_text_is_flushed_at_the_end() -> None:
    assert _run(("xyz",), list("abxy")) == ("abxy", None)


def test_no_stops_passes_everything() -> None:
    assert _run((), ["ab", "c"]) == ("abc", None)
