"""Soak test: bounded mixed traffic against a real ``rnnserve serve`` process, watching for leaks.

Starts ``rnnserve serve`` (loopback, free port) with the installed plugins' models plus
those of ``--config``, waits until every model has loaded, then runs ``--concurrency``
closed-loop workers for ``--minutes`` (default 10) mixing every RPC of the three
backends it finds READY: the language model (Generate, GenerateStream, some streams
cancelled part-way, Score), the translator (Translate) and the writing assistant
(Suggest, Session), plus ListModels and deliberately invalid requests. A backend that is
not READY is skipped with a note.

Reports requests ok / refused (RESOURCE_EXHAUSTED) / failed per RPC with p50/p99 latency
(after the warm-up), the server's RSS, thread and file-descriptor counts (from /proc) at
start, after warm-up and at the end, and a leak check once traffic stops (batch slots,
queues, health). Exits 1 if any call failed unexpectedly or something leaked.

    python -m benchmarks.soak [--minutes 10] [--concurrency 8] [--config rnnserve.toml]
           [--lm austen-char-lstm] [--translator en-de-gru] [--assistant writing-assistant]

``--quick``: seconds of traffic against only the shipped models it uses (the test suite runs it).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import math
import os
import random
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.assistant import language_model_of
from benchmarks.common import config_toml, parse_args, percentile, print_machine, shipped_models, table
from benchmarks.server_process import ServerProcess, serve
from rnnserve.ops.config import ServerConfig, load_config
from rnnserve_client import AsyncClient, Client, errors

PARAGRAPH = ("It is a truth universally acknowledged, that a single man in possession of a good fortune, must be "
             "in want of a wife. However little known the feelings or views of such a man may be on his first "
             "entering a neighbourhood, this truth is so well fixed in the minds of the surrounding families, that "
             "he is considered the rightful property of some one or other of their daughters.")
SENTENCES = ["Good morning.", "The house is small.", "Where is the station?", "I would like a cup of tea.",
             "She reads a book in the garden.", "We are going home now."]
CALL_TIMEOUT = 60.0


@dataclass
class Tally:
    """Outcomes and latencies of one RPC."""

    ok: int = 0
    refused: int = 0
    failed: int = 0
    expected: int = 0  # deliberate: invalid requests answered INVALID_ARGUMENT, streams cancelled on purpose
    latencies: list[float] = field(default_factory=list)
    errors: collections.Counter[str] = field(default_factory=collections.Counter)


@dataclass
class Snapshot:
    label: str
    rss_mb: float
    threads: int
    fds: int


def snapshot(proc: ServerProcess, label: str) -> Snapshot:
    pid = proc.proc.pid
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    rss_kb = int(status["VmRSS"].split()[0])
    return Snapshot(label, rss_kb / 1024, int(status["Threads"]), len(os.listdir(f"/proc/{pid}/fd")))


#: ``config_text(config)``: the config for the server process (kept under its old name).
config_text = config_toml


class Traffic:
    """Closed-loop workers issuing a weighted mix of calls until a deadline."""

    def __init__(self, client: AsyncClient, lm: str | None, translator: str | None, assistant: str | None,
                 seed: int) -> None:
        self.client = client
        self.rng = random.Random(seed)
        self.tallies: dict[str, Tally] = collections.defaultdict(Tally)
        self.recording = False
        ops: list[tuple[str, int, Callable[[], Awaitable[str]]]] = [("ListModels", 1, self.list_models)]
        if lm:
            self.lm = lm
            ops += [("Generate", 4, self.generate), ("GenerateStream", 5, self.generate_stream),
                    ("Score", 2, self.score), ("Generate(invalid)", 1, self.invalid_generate)]
        if translator:
            self.translator = translator
            ops += [("Translate", 4, self.translate)]
        if assistant:
            self.assistant = assistant
            ops += [("Suggest", 4, self.suggest), ("Session", 2, self.session)]
        self.ops = ops

    # -- operations: each returns "ok" or "expected" and raises errors.RnnserveError otherwise -----

    async def list_models(self) -> str:
        await self.client.list_models(timeout=CALL_TIMEOUT)
        return "ok"

    def _prompt(self, low: int, high: int) -> str:
        start = self.rng.randrange(0, len(PARAGRAPH) // 2)
        return PARAGRAPH[start : start + self.rng.randint(low, high)]

    async def generate(self) -> str:
        await self.client.generate(self.lm, self._prompt(10, 120), max_new_tokens=self.rng.randint(16, 96),
                                   temperature=0.8, n=self.rng.choice([1, 1, 1, 2]), timeout=CALL_TIMEOUT)
        return "ok"

    async def generate_stream(self) -> str:
        cancel_after = self.rng.randint(1, 10) if self.rng.random() < 0.15 else None
        stream = self.client.generate_stream(self.lm, self._prompt(0, 200), max_new_tokens=self.rng.randint(32, 192),
                                             temperature=0.9, top_p=0.95, stop=["\n\n"], timeout=CALL_TIMEOUT)
        chunks = 0
        async with stream:
            async for _ in stream:
                chunks += 1
                if cancel_after is not None and chunks >= cancel_after:
                    stream.cancel()
                    return "expected"
        return "ok"

    async def score(self) -> str:
        await self.client.score(self.lm, self._prompt(50, 300), timeout=CALL_TIMEOUT)
        return "ok"

    async def invalid_generate(self) -> str:
        try:
            await self.client.generate(self.lm, "x", temperature=math.nan, timeout=CALL_TIMEOUT)
        except errors.InvalidArgument:
            return "expected"
        raise errors.Unknown("an invalid request (temperature NaN) was accepted")

    async def translate(self) -> str:
        texts = self.rng.sample(SENTENCES, self.rng.randint(1, 4))
        await self.client.translate(self.translator, texts, beam_size=self.rng.choice([1, 4]), timeout=CALL_TIMEOUT)
        return "ok"

    async def suggest(self) -> str:
        await self.client.suggest(self.assistant, self._prompt(5, 150), kinds=("word", "next_words"),
                                  timeout=CALL_TIMEOUT)
        return "ok"

    async def session(self) -> str:
        text = self._prompt(20, 120)
        async with self.client.session(self.assistant, text=text[:10], timeout=CALL_TIMEOUT) as session:
            for ch in text[10 : 10 + self.rng.randint(3, 15)]:
                await session.append(ch)
            if self.rng.random() < 0.3:
                await session.delete(2)
        return "ok"

    # -- the loop ------------------------------------------------------------------------

    async def worker(self, deadline: float) -> None:
        names = [name for name, _, _ in self.ops]
        weights = [weight for _, weight, _ in self.ops]
        calls = {name: call for name, _, call in self.ops}
        while time.monotonic() < deadline:
            name = self.rng.choices(names, weights)[0]
            start = time.perf_counter()
            try:
                outcome = await calls[name]()
            except errors.ResourceExhausted as exc:
                outcome = "refused"
                if exc.retry_after:
                    await asyncio.sleep(min(exc.retry_after, 2.0))
            except errors.RnnserveError as exc:
                outcome = f"failed:{exc.code.name}: {exc.details[:120]}"
            except Exception as exc:  # a client-side surprise is a failure too
                outcome = f"failed:{type(exc).__name__}: {exc}"[:160]
            if not self.recording:
                continue
            tally = self.tallies[name]
            if outcome == "ok":
                tally.ok += 1
                tally.latencies.append(time.perf_counter() - start)
            elif outcome == "expected":
                tally.expected += 1
            elif outcome == "refused":
                tally.refused += 1
            else:
                tally.failed += 1
                tally.errors[outcome.removeprefix("failed:")] += 1


async def sample_rss(proc: ServerProcess, started: float, series: list[tuple[float, float]],
                     every: float = 30.0) -> None:
    """Append (seconds since traffic began, RSS MB) to ``series`` every ``every`` seconds until cancelled."""
    while True:
        series.append((time.monotonic() - started, snapshot(proc, "").rss_mb))
        await asyncio.sleep(every)


async def wait_loaded(client: AsyncClient, timeout: float = 600) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        models = {m.name: m for m in await client.list_models(timeout=30)}
        if all(m.state != "loading" for m in models.values()) or time.monotonic() > deadline:
            return models
        await asyncio.sleep(1)


def pick(models: dict[str, Any], name: str, kind: str, notes: list[str]) -> str | None:
    model = models.get(name)
    if model is None:
        notes.append(f"skipped {kind} {name!r}: the server has no such model")
    elif model.state != "ready":
        notes.append(f"skipped {kind} {name!r}: {model.state}" + (f" ({model.reason})" if model.reason else ""))
    elif model.kind != kind:
        notes.append(f"skipped {name!r}: it is a {model.kind}, not a {kind}")
    else:
        return name
    return None


async def soak(proc: ServerProcess, args: argparse.Namespace) -> int:
    snapshots = [snapshot(proc, "start (listening)")]
    notes: list[str] = []
    async with AsyncClient(proc.target, timeout=CALL_TIMEOUT) as client:
        models = await wait_loaded(client)
        snapshots.append(snapshot(proc, "models loaded"))
        lm = pick(models, args.lm, "language-model", notes)
        translator = pick(models, args.translator, "translator", notes)
        assistant = pick(models, args.assistant, "assistant", notes)
        if not (lm or translator or assistant):
            notes.append("no backend READY: only ListModels traffic")
        traffic = Traffic(client, lm, translator, assistant, args.seed)
        duration = args.minutes * 60
        warmup = min(60.0, duration * 0.1)
        started = time.monotonic()
        deadline = started + duration
        workers = [asyncio.ensure_future(traffic.worker(deadline)) for _ in range(args.concurrency)]
        rss_series: list[tuple[float, float]] = []
        sampler = asyncio.ensure_future(sample_rss(proc, started, rss_series, every=min(30.0, max(1.0, duration / 10))))
        await asyncio.sleep(warmup)
        traffic.recording = True
        snapshots.append(snapshot(proc, f"after warm-up ({warmup:.0f} s)"))
        print(f"warm-up done; measuring for {duration - warmup:.0f} s", file=sys.stderr, flush=True)
        await asyncio.gather(*workers)
        sampler.cancel()
        measured = time.monotonic() - started - warmup
        snapshots.append(snapshot(proc, f"end ({time.monotonic() - started:.0f} s)"))
        # leak check: once traffic stops, no batch slot or queue entry stays taken
        leaks: list[str] = []
        for _ in range(50):
            leaks = [f"{m.name}: active_sequences={m.stats.active_sequences} queue_depth={m.stats.queue_depth}"
                     for m in await client.list_models(timeout=30)
                     if m.state == "ready" and (m.stats.active_sequences or m.stats.queue_depth)]
            if not leaks:
                break
            await asyncio.sleep(0.2)
        final = {m.name: m for m in await client.list_models(timeout=30)}
    with Client(proc.target, timeout=10) as sync_client:
        healthy = sync_client.list_models() is not None
    snapshots.append(snapshot(proc, "idle after traffic"))

    print(f"\nrnnserve soak: {args.minutes:g} min, {args.concurrency} concurrent workers, seed {args.seed}, "
          f"target {proc.target} (pid {proc.proc.pid})")
    for note in notes:
        print(f"note: {note}")
    rows = []
    for name, tally in sorted(traffic.tallies.items()):
        lat = [x * 1000 for x in tally.latencies]
        rows.append([name, tally.ok, tally.expected, tally.refused, tally.failed,
                     percentile(lat, 50) if lat else "-", percentile(lat, 99) if lat else "-"])
    total = [sum(r[i] for r in rows) for i in range(1, 5)]
    rows.append(["total", *total, "-", "-"])
    print(table(["rpc", "ok", "expected", "refused", "failed", "p50 ms", "p99 ms"], rows))
    print(f"throughput: {total[0] / measured:.1f} ok calls/s over {measured:.0f} s measured "
          "('expected': invalid requests answered INVALID_ARGUMENT and streams cancelled on purpose)")
    for name, tally in sorted(traffic.tallies.items()):
        for error, count in tally.errors.most_common(5):
            print(f"  failed {name}: {count} x {error}")
    print()
    print(table(["server process", "RSS MB", "threads", "fds"], [[s.label, s.rss_mb, s.threads, s.fds]
                                                                 for s in snapshots]))
    base = snapshots[2]
    end = snapshots[3]
    print(f"growth after warm-up: RSS {end.rss_mb - base.rss_mb:+.1f} MB, threads {end.threads - base.threads:+d}, "
          f"fds {end.fds - base.fds:+d}")
    print("RSS during traffic (s: MB): " + ", ".join(f"{t:.0f}: {mb:.0f}" for t, mb in rss_series))
    for name in (lm, translator, assistant):
        if name:
            s = final[name].stats
            counters = "".join(f", {k} {v:g}" for k, v in sorted(s.backend_counters.items()))
            print(f"model {name}: {final[name].state}, requests {s.requests_total}, rejected {s.rejected_total}, "
                  f"steps {s.steps_total}, mean batch {s.mean_batch_size:.2f}{counters}")
    print(f"leak check: {'none' if not leaks else '; '.join(leaks)}; server answering: {healthy}")
    print(f"server log lines: {dict(proc.log_levels)}")
    for line in proc.problems:
        print(f"  {line}")
    return 1 if total[3] or leaks or not healthy else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="traffic duration (default %(default)s)")
    parser.add_argument("--concurrency", type=int, default=8, help="closed-loop client workers")
    parser.add_argument("--config", help="rnnserve TOML config: extra models and limits (paths as usual)")
    parser.add_argument("--lm", default="austen-char-lstm", help="language model to use")
    parser.add_argument("--translator", default="en-de-gru", help="translator to use")
    parser.add_argument("--assistant", default="writing-assistant", help="writing assistant to use")
    parser.add_argument("--seed", type=int, default=1)
    args = parse_args(parser, argv, quick={"minutes": 0.1, "concurrency": 4})
    print_machine()
    if args.config:
        config = load_config(args.config)
    elif args.quick:  # only the models the traffic uses: a faster start
        assistant_lm = language_model_of(args.assistant)
        config = shipped_models(*dict.fromkeys((args.lm, assistant_lm, args.translator, args.assistant)))
    else:
        config = ServerConfig()
    with serve(config_text(config)) as proc:
        return asyncio.run(soak(proc, args))


if __name__ == "__main__":
    sys.exit(main())
