"""Writing assistant: keystroke savings and per-keystroke latency, against baselines in the same run.

Keystroke savings rate (KSR): a simulated typist types held-out text (the data directory's
test split, e.g. Persuasion for ``runs/austen/data`` or the modern test split of
``runs/english/data``, or any ``--text FILE``) left to right through an ``Assistant.Session``;
whenever one of the top-k word suggestions is exactly the word being typed, it accepts it for
one keystroke. KSR = 1 - keystrokes / characters. Two context-free baselines type the same
text under the same acceptance rule: ``unigram`` completes words from the unigram
frequencies of the data directory's training split, ``wordfreq`` from the English word list
of PyPI ``wordfreq`` (modern frequencies from many genres, independent of any training data).

Latency: per-keystroke time through a Session on a long document, against re-sending the
whole text to ``Suggest`` at every keystroke (with the prefix cache, as shipped, and with
it switched off); and with 1, 16 and 64 sessions typing at once, as shipped (the sessions'
searches share batched model steps) and with the assistant's calls run one at a time
(``concurrent_calls = 1``), without a session's search ahead for the keystroke it expects
(``expect_next = false``) and without that and the states a session keeps from its searches
(``word_nodes = 0``), people typing every 150 ms and in a closed loop.
``--variants`` picks among these. Paced latency moves a lot from run to run (whether a
session's search ahead finishes before its next keystroke is a race), so ``--repeats N``
runs each cell N times and shows the range of the runs' medians beside the pooled figures,
with the share of keystrokes the search ahead answered.

    python -m benchmarks.assistant --data runs/austen/data --model austen-writing-assistant \
        --language-model austen-char-lstm-int8 [--chars 20000] [--doc-chars 20000]
    python -m benchmarks.assistant --data runs/english/data   # writing-assistant on the modern test split
    python -m benchmarks.assistant --data runs/austen/data --text FILE   # any held-out text

``--model`` takes several assistants (comma-separated): each types the text for the KSR table;
the latency tables time the first. ``--ksr-only`` skips the latency tables. Both assistants on
both held-out texts::

    both=writing-assistant,austen-writing-assistant
    python -m benchmarks.assistant --data runs/english/data --model $both --ksr-only
    python -m benchmarks.assistant --data runs/austen/data --model $both --ksr-only

``--quick``: seconds, the same path at small sizes on the committed Austen slice
(``tests/data/austen_slice``) with ``austen-writing-assistant``, serving only the shipped models
it uses (the test suite runs it).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import collections
import functools
import heapq
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import QUICK_DATA, parse_args, percentile, print_machine, shipped_config, shipped_specs, table
from benchmarks.server_process import serve
from rnnserve_client import AsyncClient, Client
from rnnserve_client.client import Session
from rnnserve_client.results import ModelStats
from rnnserve_plugins.writing_assistant.suggest import is_word_char, typed_word

#: Keystrokes each concurrent session types, from SKIP + i * 997 characters into the text (past
#: the title page, "Persuasion / by / Jane Austen / (1818) / Chapter 1").
KEYSTROKES = 80
SKIP = 1000


def simulate(text: str, k: int, start: Callable[[], tuple[list[str], Callable[[str], list[str]]]]) -> float:
    """KSR of a typist with top-``k`` suggestions; ``start()`` -> (initial words, append(text) -> words)."""
    suggestions, append = start()
    keystrokes, pos = 0, 0
    while pos < len(text):
        if is_word_char(text[pos]):
            begin = pos
            while begin > 0 and is_word_char(text[begin - 1]):
                begin -= 1
            end = pos
            while end < len(text) and is_word_char(text[end]):
                end += 1
            if text[begin:end] in suggestions[:k]:
                keystrokes += 1
                suggestions = append(text[pos:end])
                pos = end
                continue
        keystrokes += 1
        suggestions = append(text[pos])
        pos += 1
    return 1 - keystrokes / len(text)


class UnigramCompleter:
    """Baseline: the k most frequent training words that start with the typed prefix."""

    def __init__(self, corpus: str) -> None:
        counts = collections.Counter(re.findall(r"[A-Za-z']+", corpus))
        self.words = [w for w, _ in counts.most_common()]

    def complete(self, prefix: str, k: int) -> list[str]:
        """The ``k`` most frequent words that start with ``prefix`` (case as typed) and are longer than it."""
        found = []
        for w in self.words:
            if w.startswith(prefix) and w != prefix:
                found.append(w)
                if len(found) == k:
                    break
        return found

    def start(self, k: int) -> tuple[list[str], Callable[[str], list[str]]]:
        """A fresh typist's (initial suggestions, append) pair."""
        return _typist(self.complete, k)


class WordfreqCompleter:
    """Baseline: the k most frequent English words of a frequency-ordered list (PyPI ``wordfreq``'s ``best``
    English list by default) that start with the typed prefix, whatever the context.

    The list is lower case (as wordfreq stores it); the prefix is matched case-insensitively and
    each word is offered with the typed characters as typed (``Pyt`` -> ``Python``), so a
    capitalised word can be accepted. Only words of word characters (letters and ``'``, the
    assistant's ``is_word_char``) are offered.
    """

    def __init__(self, words: Iterable[str] | None = None) -> None:
        if words is None:
            from wordfreq import iter_wordlist

            words = iter_wordlist("en", wordlist="best")
        ranked = list(dict.fromkeys(w for w in (w.lower() for w in words) if w and all(map(is_word_char, w))))
        self._rank = {w: i for i, w in enumerate(ranked)}
        self._sorted = sorted(ranked)
        self._cached = functools.lru_cache(maxsize=200_000)(self._matches)

    def _matches(self, lower: str, k: int) -> tuple[str, ...]:
        lo = bisect.bisect_left(self._sorted, lower)
        hi = bisect.bisect_left(self._sorted, lower + "\U0010ffff")
        candidates = (w for w in self._sorted[lo:hi] if w != lower)
        return tuple(heapq.nsmallest(k, candidates, key=self._rank.__getitem__))

    def complete(self, prefix: str, k: int) -> list[str]:
        """The ``k`` most frequent listed words that extend ``prefix`` (case-insensitively), typed part as typed."""
        return [prefix + w[len(prefix):] for w in self._cached(prefix.lower(), k)]

    def start(self, k: int) -> tuple[list[str], Callable[[str], list[str]]]:
        """A fresh typist's (initial suggestions, append) pair."""
        return _typist(self.complete, k)


def _typist(complete: Callable[[str, int], list[str]], k: int) -> tuple[list[str], Callable[[str], list[str]]]:
    """(initial suggestions, append) of a context-free completer: only the word being typed matters."""
    typed: list[str] = []

    def append(chunk: str) -> list[str]:
        typed.append(chunk)
        return complete(typed_word("".join(typed[-64:])), k)

    return append(""), append


def assistant_typist(client: Client, model: str, k: int,
                     opened: list[Session]) -> Callable[[], tuple[list[str], Callable[[str], list[str]]]]:
    """``start`` for :func:`simulate` through a Session; it goes into ``opened``, for the caller to close."""

    def start() -> tuple[list[str], Callable[[str], list[str]]]:
        session = client.session(model, kinds=("word",), max_suggestions=k).open()
        opened.append(session)
        return [s.text for s in session.suggestions], lambda chunk: [s.text for s in session.append(chunk)]

    return start


def latency(client: Client, model: str, document: str, keystrokes: int, *,
            suggest: bool = True) -> dict[str, list[float]]:
    """Per-keystroke seconds: through a Session, and (``suggest``) re-sending the whole text to Suggest."""
    typed = document[-keystrokes:]
    base = document[:-keystrokes]
    out: dict[str, list[float]] = {"session": [], "suggest": []}
    with client.session(model, kinds=("word",), max_suggestions=3, text=base) as session:
        for ch in typed:
            t = time.perf_counter()
            session.append(ch)
            out["session"].append(time.perf_counter() - t)
    for i in range(1, len(typed) + 1 if suggest else 0):
        t = time.perf_counter()
        client.suggest(model, base + typed[:i], kinds=("word",), max_suggestions=3)
        out["suggest"].append(time.perf_counter() - t)
    return out


async def concurrent_sessions(target: str, model: str, sessions: int, text: str, keystrokes: int,
                              pace: float = 0.0, skip: int = SKIP) -> list[float]:
    """Per-keystroke seconds with ``sessions`` sessions typing at once (each its own slice of
    ``text``, past its first ``skip`` characters).

    ``pace`` 0: each typist sends its next keystroke as soon as the last is answered (closed
    loop, a throughput test). ``pace`` > 0: one keystroke every ``pace`` seconds per typist,
    as people type (150 ms is a fast 80 words per minute), starting at random offsets.
    """
    times: list[float] = []
    async with AsyncClient(target, timeout=600) as client:

        async def typist(i: int) -> None:
            start = skip + (i * 997) % max(1, len(text) - keystrokes - skip)
            async with client.session(model, kinds=("word",), max_suggestions=3) as session:
                await asyncio.sleep(pace * (i * 0.618 % 1))
                due = time.perf_counter()
                for ch in text[start : start + keystrokes]:
                    t = time.perf_counter()
                    await session.append(ch)
                    times.append(time.perf_counter() - t)
                    due += pace
                    await asyncio.sleep(max(0.0, due - time.perf_counter()))

        await asyncio.gather(*(typist(i) for i in range(sessions)))
    return times


@dataclass
class Cell:
    """One concurrent-session cell over its runs: per-keystroke seconds (pooled), each run's
    median, the share of keystrokes the search ahead answered, and mean rows per lent step."""

    times: list[float]
    run_p50s: list[float]
    answered_ahead: float
    rows_per_step: float


def _concurrent_cell(client: Client, target: str, model: str, args: argparse.Namespace, text: str, sessions: int,
                     pace: float) -> Cell:
    """``args.repeats`` runs of ``sessions`` sessions of assistant ``model`` typing ``text`` at ``pace``."""
    times: list[float] = []
    run_p50s: list[float] = []
    before, hits_before = client.get_model(args.language_model).stats, _hits(client, model)
    for _ in range(args.repeats):
        run = asyncio.run(concurrent_sessions(target, model, sessions, text, args.session_keystrokes, pace,
                                              args.skip))
        times += run
        run_p50s.append(percentile(run, 50))
    after = client.get_model(args.language_model).stats
    steps = after.lent_steps_total - before.lent_steps_total
    rows = _lent_rows(after) - _lent_rows(before)
    return Cell(times, run_p50s, (_hits(client, model) - hits_before) / len(times),
                rows / steps if steps else float("nan"))


def _hits(client: Client, model: str) -> float:
    """Keystrokes an assistant answered from its sessions' search ahead, so far."""
    return client.get_model(model).stats.backend_counters.get("expected_hits", 0.0)


def _lent_rows(stats: ModelStats) -> float:
    """Rows of all the steps a language model has run for lent searches."""
    return stats.mean_lent_rows * stats.lent_steps_total


#: The concurrent-session variants: the timed assistant as shipped, and configured beside it
#: (``--variants``) without the search ahead, without it and the word nodes, and one call at a time.
VARIANTS = ("shipped", "no-ahead", "previous", "serial")


def language_model_of(assistant: str) -> str:
    """The language model a shipped assistant borrows (its ``language_model`` option)."""
    specs = shipped_specs()
    if assistant not in specs:
        raise SystemExit(f"no shipped assistant {assistant!r}; pass --language-model for a configured one")
    return specs[assistant].options.get("language_model", "austen-char-lstm-int8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="output of `rnnserve data austen` or `rnnserve data english`: its "
                        "train split feeds the unigram baseline, its test split is typed (required unless --quick)")
    parser.add_argument("--text", type=Path, help="type this held-out text instead of the data directory's test split")
    parser.add_argument("--config", help="server config (default: the installed plugins' models)")
    parser.add_argument("--model", default="writing-assistant",
                        help="assistant(s), comma-separated: each types the KSR text; the first is timed")
    parser.add_argument("--ksr-only", action="store_true", help="keystroke savings only, no latency tables")
    parser.add_argument("--chars", type=int, default=20000, help="characters of test text to type")
    parser.add_argument("--doc-chars", type=int, default=20000, help="document length for the latency test")
    parser.add_argument("--keystrokes", type=int, default=100, help="keystrokes timed per latency variant")
    parser.add_argument("--sessions", default="1,16,64", help="concurrent sessions for the keystroke latency table")
    parser.add_argument("--language-model",
                        help="the language model the timed assistant borrows (its batching counters; the variants "
                             "timed beside it borrow it too); default: the timed assistant's own")
    parser.add_argument("--pace-ms", type=float, default=150.0,
                        help="also time sessions typing one keystroke per this many ms (0: closed loop only)")
    parser.add_argument("--session-keystrokes", type=int, default=KEYSTROKES,
                        help="keystrokes each concurrent session types")
    parser.add_argument("--skip", type=int, default=SKIP, help="characters of the text the concurrent sessions skip")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help=f"concurrent-session variants to time, comma-separated, of {', '.join(VARIANTS)}")
    parser.add_argument("--repeats", type=int, default=1,
                        help="runs of each concurrent-session cell (paced latency moves a lot from run to run: the "
                             "table pools the runs and shows the range of their medians)")
    args = parse_args(parser, argv, quick={"data": QUICK_DATA, "model": "austen-writing-assistant", "chars": 60,
                                           "doc_chars": 300, "keystrokes": 4,
                                           "sessions": "2", "pace_ms": 0.0, "session_keystrokes": 4, "skip": 0})
    print_machine()
    if args.data is None:
        parser.error("--data is required (or --quick, which types the committed test slice)")
    assistants = args.model.split(",")
    if args.language_model is None:
        args.language_model = language_model_of(assistants[0])
    if args.quick and not args.config:  # only the models this run uses: a faster start
        args.config = "quick"
        base_config = shipped_config(*dict.fromkeys([*map(language_model_of, assistants), *assistants]))
    else:
        base_config = Path(args.config).read_text() if args.config else ""

    test_file = args.text or args.data / "test.txt"
    test = test_file.read_text()
    train = (args.data / "train.txt").read_text()
    text = test[: args.chars]
    baselines = {"unigram": UnigramCompleter(train), "wordfreq": WordfreqCompleter()}
    variant = f'backend = "writing-assistant"\noptions.language_model = "{args.language_model}"\n'
    config = base_config + (
        f'\n[[models]]\nname = "assistant-no-cache"\n{variant}options.cache_entries = 0\n'
        f'\n[[models]]\nname = "assistant-serial"\n{variant}options.concurrent_calls = 1\n'
        f'\n[[models]]\nname = "assistant-no-ahead"\n{variant}options.expect_next = false\n'
        f'\n[[models]]\nname = "assistant-previous"\n{variant}options.expect_next = false\n'
        'options.word_nodes = 0\n')
    with serve(config) as srv, Client(srv.target, timeout=600) as client:
        rows = []
        for k in (1, 3):
            base = {name: simulate(text, k, lambda c=completer, k=k: c.start(k))
                    for name, completer in baselines.items()}
            for assistant in assistants:
                t = time.perf_counter()
                opened: list[Session] = []
                lm = simulate(text, k, assistant_typist(client, assistant, k, opened))
                elapsed = time.perf_counter() - t
                for session in opened:  # an open session keeps its server-side state (and search ahead)
                    session.close()
                rows.append((f"KSR@{k}", assistant, f"{lm:.4f}", *(f"{b:.4f}" for b in base.values()),
                             *(f"{lm / b:.3f}" if b else "nan" for b in base.values()), elapsed))
        print(f"Keystroke savings on {len(text):,} characters of {test_file} (held out); baselines: unigram = "
              f"{args.data / 'train.txt'} word frequencies, wordfreq = PyPI wordfreq's English list (both "
              "context-free)")
        print(table(["metric", "assistant", "KSR", "unigram", "wordfreq", "vs unigram", "vs wordfreq", "assistant s"],
                    rows))
        if args.ksr_only:
            return 0
        timed = assistants[0]
        document = (test * (args.doc_chars // len(test) + 1))[: args.doc_chars]
        times = latency(client, timed, document, args.keystrokes)
        for model, label in (("assistant-no-ahead", "no search ahead"), ("assistant-previous", "no word nodes")):
            times[f"session, {label}"] = latency(client, model, document, args.keystrokes, suggest=False)["session"]
        # Re-reading the whole document per keystroke is slow: a few keystrokes tell the story.
        cold = latency(client, "assistant-no-cache", document, max(2, args.keystrokes // 10))
        times["suggest, no prefix cache"] = cold["suggest"]
        paces = [0.0] + ([args.pace_ms / 1000] if args.pace_ms > 0 else [])
        models = {"shipped": timed, "no-ahead": "assistant-no-ahead", "previous": "assistant-previous",
                  "serial": "assistant-serial"}
        labels = {"shipped": "shipped", "no-ahead": "no search ahead", "previous": "neither (previous)",
                  "serial": "one at a time"}
        concurrent = {}
        for name in args.variants.split(","):
            if name not in models:
                parser.error(f"unknown variant {name!r}; choose from {', '.join(VARIANTS)}")
            for pace in paces:
                for n in (int(x) for x in args.sessions.split(",")):
                    concurrent[labels[name], n, pace] = _concurrent_cell(client, srv.target, models[name],
                                                                         args, test, n, pace)
    base_p50 = percentile(times["session"], 50)
    print(f"\nPer-keystroke latency on a {len(document):,}-character document ({args.keystrokes} keystrokes)")
    print(table(["path", "p50 ms", "p99 ms", "p50 vs session"],
                [(name, percentile(v, 50) * 1e3, percentile(v, 99) * 1e3, percentile(v, 50) / base_p50)
                 for name, v in times.items()]))
    print(f"\nPer-keystroke latency with concurrent sessions ({args.session_keystrokes} keystrokes each): as shipped "
          "(searches batched into shared model steps, word nodes, search ahead), without the search ahead, without "
          "it and the word nodes (the previous release), and the assistant's calls one at a time")
    if args.repeats > 1:
        print(f"{args.repeats} runs per row, pooled; 'run p50s' is the range of the runs' medians")
    print(table(["assistant", "sessions", "typing", "p50 ms", "p99 ms", "run p50s ms", "answered ahead",
                 "rows/step"],
                [(label, n, f"every {pace * 1e3:.0f} ms" if pace else "closed loop",
                  percentile(cell.times, 50) * 1e3, percentile(cell.times, 99) * 1e3,
                  f"{min(cell.run_p50s) * 1e3:.1f}-{max(cell.run_p50s) * 1e3:.1f}",
                  f"{cell.answered_ahead:.0%}", cell.rows_per_step)
                 for (label, n, pace), cell in concurrent.items()]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
