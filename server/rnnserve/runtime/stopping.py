"""Stop sequences in a stream: never emit a stop sequence, even when it arrives split across steps.

Text that might be the start of a stop sequence is held back until the next token shows
whether it is one (hold back at most ``len(stop) - 1`` characters).
"""

from __future__ import annotations


class StopMatcher:
    """Feeds generated text through the stop sequences of one sample."""

    def __init__(self, stops: tuple[str, ...]) -> None:
        self.stops = tuple(s for s in stops if s)
        self.pending = ""

    def feed(self, text: str) -> tuple[str, str | None]:
        """Add new text; returns (text safe to emit, the stop sequence matched or None).

        After a match the sample is over: the returned text is everything before the
        stop sequence, and the rest is discarded.
        """
        buf = self.pending + text
        if not self.stops:
            self.pending = ""
            return buf, None
        first: tuple[int, str] | None = None
        for stop in self.stops:
            at = buf.find(stop)
            if at >= 0 and (first is None or at < first[0]):
                first = (at, stop)
        if first is not None:
            self.pending = ""
            return buf[: first[0]], first[1]
        hold = self._partial_match(buf)
        self.pending = buf[len(buf) - hold :] if hold else ""
        return buf[: len(buf) - hold], None

    def flush(self) -> str:
        """The held-back text, released when the sample ends for another reason."""
        text, self.pending = self.pending, ""
        return text

    def _partial_match(self, buf: str) -> int:
        """Length of the longest suffix of ``buf`` that is a proper prefix of a stop sequence."""
        longest = 0
        for stop in self.stops:
            for size in range(min(len(stop) - 1, len(buf)), longest, -1):
                if buf.endswith(stop[:size]):
                    longest = size
                    break
        return longest
