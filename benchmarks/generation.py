"""Char-LSTM generation throughput and latency through the gRPC server, against baselines.

Starts ``rnnserve serve`` in its own process with the model twice: as rnnserve serves it
(continuous batching, fused step) and as the **naive baseline** (one request at a time,
the default per-character ``nn.LSTM`` call, behind the same gRPC API). An asyncio load
generator opens C concurrent streams (closed loop) and measures aggregate chars/s, time
to first character and inter-character latency. The **roofline** is the measured fp32
matrix-product peak of this machine divided by the model's FLOPs per character.

    python -m benchmarks.generation --concurrency 1,8,32,64,128 [--variants int8,bfloat16] [--plot out.png]

``--quick``: seconds, the same path at small sizes (the test suite runs it).

``--variants`` adds the same model served other ways, each measured on the same load:
``int8`` (``quantize = true``), ``bfloat16`` (``dtype = "bfloat16"``) and ``every-step``
(float32 with ``emit_interval_ms = 0``: one message per stream per step, the
hand-over batching switched off).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from benchmarks.common import parse_args, percentile, table, toml_value
from benchmarks.server_process import ServerProcess, serve
from rnnserve_client import AsyncClient, Client

PROMPT = ("It is a truth universally acknowledged, that a single man in possession of a good fortune, "
          "must be in want of a wife. However little known the feelings or views of such a man may be on his "
          "first entering a neighbourhood, this truth is")[:200]


@dataclass
class Run:
    """What one load level measured."""

    concurrency: int
    chars: int = 0
    seconds: float = 0.0
    ttfc: list[float] = field(default_factory=list)
    inter_char: list[float] = field(default_factory=list)
    mean_batch: float = 0.0
    cpu: float = 0.0

    @property
    def chars_per_s(self) -> float:
        return self.chars / self.seconds if self.seconds else 0.0


async def _stream(client: AsyncClient, model: str, new_tokens: int, seed: int, run: Run) -> None:
    start = last = time.perf_counter()
    first = True
    async for chunk in client.generate_stream(model, PROMPT, max_new_tokens=new_tokens, temperature=0.8, seed=seed):
        if not chunk.text:
            continue
        now = time.perf_counter()
        if first:
            run.ttfc.append(now - start)
            first = False
        else:
            run.inter_char.extend([(now - last) / len(chunk.text)] * len(chunk.text))
        last = now
        run.chars += len(chunk.text)


async def load(server: ServerProcess, model: str, concurrency: int, new_tokens: int, rounds: int) -> Run:
    """``concurrency`` closed-loop workers, each running ``rounds`` streams one after another."""
    run = Run(concurrency)
    async with AsyncClient(server.target, timeout=600) as client:
        before = (await client.get_model(model)).stats
        cpu0, t0 = server.cpu_seconds(), time.perf_counter()

        async def worker(w: int) -> None:
            for r in range(rounds):
                await _stream(client, model, new_tokens, seed=w * rounds + r, run=run)

        await asyncio.gather(*(worker(w) for w in range(concurrency)))
        run.seconds = time.perf_counter() - t0
        run.cpu = (server.cpu_seconds() - cpu0) / run.seconds / (torch.get_num_threads() or 1)
        after = (await client.get_model(model)).stats
    steps = after.steps_total - before.steps_total
    run.mean_batch = (after.tokens_total - before.tokens_total) / steps if steps else 0.0
    return run


def matmul_peak_gflops(size: int = 1024, repeats: int = 20) -> float:
    """Measured fp32 matrix-product peak of this machine (GFLOP/s), best of a few rounds."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    best = 0.0
    for _ in range(3):
        torch.mm(a, b)
        t = time.perf_counter()
        for _ in range(repeats):
            torch.mm(a, b)
        best = max(best, 2 * size**3 * repeats / (time.perf_counter() - t) / 1e9)
    return best


def flops_per_char(model_dir: Path) -> float:
    """Multiply-adds x 2 of one decoding step: every recurrent and output weight is used once."""
    config = json.loads((model_dir / "config.json").read_text())
    config = config.get("model", config)
    gates = {"lstm": 4, "peephole-lstm": 4, "gru": 3, "rnn": 1}[config["cell"]]
    hidden, layers = config["hidden_size"], config["num_layers"]
    recurrent = sum(gates * hidden * ((config["embedding_dim"] if k == 0 else hidden) + hidden) for k in range(layers))
    return 2.0 * (recurrent + hidden * config["vocab_size"])


#: name -> (model options, other model-spec keys) of each ``--variants`` choice
VARIANTS: dict[str, tuple[dict[str, object], dict[str, object]]] = {
    "int8": ({"quantize": True}, {}),
    "bfloat16": ({"dtype": "bfloat16"}, {}),
    "every-step": ({}, {"emit_interval_ms": 0}),
}


def default_model_dir() -> Path:
    from rnnserve_plugins.char_lstm.plugin import SHIPPED_DIR

    return SHIPPED_DIR


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", default="1,8,32,64,128")
    parser.add_argument("--model-dir", type=Path, default=None, help="char-lstm checkpoint (default: shipped)")
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=2, help="streams per worker at each level")
    parser.add_argument("--baseline-concurrency", default="1,64")
    parser.add_argument("--variants", default="", help=f"also measure these, comma-separated: {', '.join(VARIANTS)}")
    parser.add_argument("--plot", type=Path, help="write throughput/latency vs concurrency here (PNG)")
    parser.add_argument("--torch-threads", type=int, default=None, help="server torch threads (default: per core)")
    parser.add_argument("--peak-size", type=int, default=1024, help="matrix size of the matmul peak measurement")
    args = parse_args(parser, argv, quick={"concurrency": "1,4", "new_tokens": 16, "rounds": 1,
                                           "baseline_concurrency": "1", "peak_size": 256})
    model_dir = (args.model_dir or default_model_dir()).resolve()
    levels = [int(c) for c in args.concurrency.split(",")]
    base_levels = [int(c) for c in args.baseline_concurrency.split(",")]

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    peak = matmul_peak_gflops(args.peak_size, repeats=5 if args.quick else 20)
    roofline = peak * 1e9 / flops_per_char(model_dir)
    models: dict[str, tuple[dict[str, object], dict[str, object]]] = {
        "rnnserve": ({}, {}), "naive": ({"naive_step": True}, {"max_batch_size": 1})}
    for variant in filter(None, args.variants.split(",")):
        if variant not in VARIANTS:
            parser.error(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")
        models[f"rnnserve {variant}"] = VARIANTS[variant]
    threads = f"torch_threads = {args.torch_threads}\n" if args.torch_threads else ""
    config = f"[server]\ndefault_models = false\n{threads}" + "".join(
        f'[[models]]\nname = "{name}"\nbackend = "char-lstm"\npath = "{model_dir}"\n'
        + "".join(f"options.{key} = {toml_value(value)}\n" for key, value in opts.items())
        + "".join(f"{key} = {toml_value(value)}\n" for key, value in keys.items())
        for name, (opts, keys) in models.items())
    results: dict[str, list[Run]] = {}
    with serve(config) as server:
        with Client(server.target) as client:
            client.generate("rnnserve", PROMPT, max_new_tokens=16)  # warm up
        for name in models:
            for c in base_levels if name == "naive" else levels:
                results.setdefault(name, []).append(
                    asyncio.run(load(server, name, c, args.new_tokens, args.rounds if name != "naive" else 1)))
                r = results[name][-1]
                print(f"  {name:<14} c={c:<4} {r.chars_per_s:10,.0f} chars/s", flush=True)
    naive = {r.concurrency: r.chars_per_s for r in results["naive"]}
    naive_best = max(naive.values())
    rows = []
    for name, runs in results.items():
        for r in runs:
            rows.append((name, r.concurrency, r.chars_per_s, percentile(r.ttfc, 50) * 1e3,
                         percentile(r.ttfc, 99) * 1e3, percentile(r.inter_char, 50) * 1e3,
                         percentile(r.inter_char, 99) * 1e3, r.mean_batch, r.cpu * 100,
                         r.chars_per_s / naive_best, 100 * r.chars_per_s / roofline))
    print(f"\nmodel {model_dir.name}: {flops_per_char(model_dir) / 1e6:.2f} MFLOP/char; matmul peak {peak:.0f} "
          f"GFLOP/s on {torch.get_num_threads()} threads -> fp32 roofline {roofline:,.0f} chars/s; "
          f"prompt {len(PROMPT)} chars, {args.new_tokens} new chars per stream")
    print(table(["server", "streams", "chars/s", "TTFC p50 ms", "TTFC p99 ms", "inter-char p50 ms",
                 "inter-char p99 ms", "batch", "CPU %", "x naive", "% roofline"], rows))
    if args.plot:
        _plot(results, args.plot)
    return 0


def _plot(results: dict[str, list[Run]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for name, runs in results.items():
        xs = [r.concurrency for r in runs]
        ax1.plot(xs, [r.chars_per_s for r in runs], marker="o", label=name)
        ax2.plot(xs, [percentile(r.inter_char, 50) * 1e3 for r in runs], marker="o", label=name)
    for ax, label in ((ax1, "aggregate chars/s"), (ax2, "inter-char latency p50 (ms)")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("concurrent streams")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    raise SystemExit(main())
