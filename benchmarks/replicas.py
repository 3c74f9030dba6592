"""Replicas on one host: ``rnnserve serve --workers N`` against one server process.

Each configuration serves the same shipped model with the same cores: one process with
``cores`` torch threads (the baseline, run first), then N replica processes with ``cores
// N`` threads each (as docs/scaling.md advises: N x threads <= cores). C closed-loop
clients share one ``rnnserve_client.AsyncClient`` channel, which balances per call over
the replicas' addresses (``round_robin``), as a user's client does. Reported per
configuration: calls/s, latency p50/p99, the ratio to the baseline, and each replica's
share of the CPU time the replicas used (how evenly round_robin spread the work).

    python -m benchmarks.replicas [--workload translate|generate] [--workers 2] [--concurrency 1,32]

Workloads: ``translate`` (en-de-gru, beam 5, one sentence per call: the decoder's Python
per step makes it the workload most bound by one interpreter) and ``generate``
(austen-char-lstm-int8, 64 characters after a 200-character prompt, greedy).

``--quick``: seconds, one process and two replicas at small sizes (the test suite runs it).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

from benchmarks.common import parse_args, percentile, print_machine, table
from benchmarks.server_process import ServerProcess, cpu_seconds, serve
from benchmarks.translation import FALLBACK, default_model_dir
from rnnserve_client import AsyncClient

PROMPT = ("It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in "
          "want of a wife. However little known the feelings or views of such a man may be on his first entering")


def config_text(workload: str, torch_threads: int) -> str:
    if workload == "translate":
        model = f'name = "en-de-gru"\nbackend = "gru-seq2seq"\npath = "{default_model_dir()}"\n'
    else:
        from rnnserve_plugins.char_lstm.plugin import SHIPPED_DIR

        model = (f'name = "austen-char-lstm-int8"\nbackend = "char-lstm"\npath = "{SHIPPED_DIR}"\n'
                 'options.quantize = true\n')
    return f"[server]\ndefault_models = false\ntorch_threads = {torch_threads}\n\n[[models]]\n{model}"


async def load(target: str, workload: str, concurrency: int, calls: int,
               new_tokens: int = 64) -> tuple[float, list[float]]:
    """(calls/s, per-call latencies) for ``calls`` calls spread over ``concurrency`` workers."""
    latencies: list[float] = []
    async with AsyncClient(target, timeout=600) as client:

        async def call(i: int) -> None:
            if workload == "translate":
                await client.translate("en-de-gru", [FALLBACK[i % len(FALLBACK)]], beam_size=5)
            else:
                await client.generate("austen-char-lstm-int8", PROMPT, max_new_tokens=new_tokens, temperature=0.0)

        for i in range(2 * concurrency):  # warm up every replica's connection and kernels
            await call(i)
        counter = iter(range(calls))
        start = time.perf_counter()

        async def worker() -> None:
            for i in counter:
                t = time.perf_counter()
                await call(i)
                latencies.append(time.perf_counter() - t)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return calls / (time.perf_counter() - start), latencies


def measure(server: ServerProcess, workload: str, concurrency: int, calls: int,
            new_tokens: int = 64) -> tuple[float, list[float], str]:
    """Throughput, latencies and the replicas' CPU shares ("62/38") of one closed-loop run."""
    before = [cpu_seconds(pid) for pid in server.pids]
    rate, latencies = asyncio.run(load(server.target, workload, concurrency, calls, new_tokens))
    used = [cpu_seconds(pid) - b for pid, b in zip(server.pids, before, strict=True)]
    shares = "/".join(f"{100 * u / sum(used):.0f}" for u in used) if len(used) > 1 else "-"
    return rate, latencies, shares


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", choices=("translate", "generate"), default="translate")
    parser.add_argument("--workers", default="2", help="replica counts to compare with one process")
    parser.add_argument("--concurrency", default="1,32")
    parser.add_argument("--calls", type=int, default=320, help="calls per measurement")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1, help="torch threads in all (default: cores)")
    parser.add_argument("--new-tokens", type=int, default=64, help="characters generated per call (generate)")
    args = parse_args(parser, argv, quick={"concurrency": "2", "calls": 6, "cores": 2, "new_tokens": 16})
    print_machine()
    levels = [int(c) for c in args.concurrency.split(",")]
    rows, baseline = [], {}
    for workers in [1, *(int(w) for w in args.workers.split(",") if int(w) > 1)]:
        threads = max(1, args.cores // workers)
        with serve(config_text(args.workload, threads), workers=workers) as server:
            for c in levels:
                rate, latencies, shares = measure(server, args.workload, c, args.calls, args.new_tokens)
                baseline.setdefault(c, rate)
                label = "one process" if workers == 1 else f"{workers} replicas"
                rows.append((f"{label} x {threads} torch threads", c, rate, percentile(latencies, 50) * 1e3,
                             percentile(latencies, 99) * 1e3, rate / baseline[c], shares))
                print(f"  {label} c={c}: {rate:.1f} calls/s", flush=True)
    unit = "sentences/s (beam 5)" if args.workload == "translate" else f"calls/s ({args.new_tokens} chars)"
    print(table(["server", "concurrency", unit, "latency p50 ms", "latency p99 ms", "x one process",
                 "replicas' CPU %"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
