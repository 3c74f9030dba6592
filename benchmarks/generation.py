"""Char-LSTM generation throughput and latency through the gRPC server, against baselines.

Starts ``rnnserve serve`` in its own process with the model twice: as rnnserve serves it
(float32, continuous batching, fused step) and as the **naive baseline** (one request at a
time, the default per-character ``nn.LSTM`` call, behind the same gRPC API). An asyncio load
generator opens C concurrent streams (closed loop) and measures aggregate chars/s, time to
first character (TTFC) and inter-character latency.

    python -m benchmarks.generation --concurrency 1,8,32,64,128 [--variants default,int8,bfloat16] [--plot out.png]

``--quick``: seconds, the same path at small sizes (the test suite runs it).

``--variants`` adds the same model served other ways, each measured on the same load:

* ``default``: the shipped ``austen-char-lstm`` spec exactly as ``rnnserve serve`` with no
  options loads it (its registered options, e.g. ``dtype = "auto"``, and other keys; no
  ``torch_threads``, so it excludes ``--torch-threads``); the report says which precision
  it picked and why (``GetModel``'s ``precision`` and ``precision_choice``);
* ``int8`` (``quantize = true``), ``bfloat16`` (``dtype = "bfloat16"``);
* ``every-step``: float32 with ``emit_interval_ms = 0`` (one message per stream per step,
  the hand-over batching switched off).

The report opens with the machine (CPU model, cores, ISA flags, torch's kernels). Before
the server starts, it measures this machine's matrix-product peaks: float32, bfloat16
(``torch.mm``) and int8 (a large ``nn.Linear`` converted by the char-lstm backend's
``quantize``, the kernels the int8 model runs) on the server's torch threads (``--torch-threads``,
else what a server of these models picks with no ``torch_threads``: ``(cores - 1) // models``,
at least one, ``rnnserve.host.torch_runtime.default_threads``), and
float32 on all the machine's cores. A **roofline** is a peak divided by the model's FLOPs per
character: ``% roofline`` against float32 on the server's threads, ``% machine roofline``
against float32 on every core, ``% own roofline`` (bfloat16 and int8 rows) against the
peak of the row's own precision.

After the server has stopped (never while the load generator runs), the **bare step** is
timed in this process with the server's torch threads: the checkpoint loaded as each row's
server loaded it (the precision ``GetModel`` reports; the naive row's per-character call),
``backend.step`` on the batch each concurrency level runs, and its chars/s printed beside
the served rate (``served / bare``: the share of the step's speed the server delivers).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from benchmarks.common import parse_args, percentile, print_machine, shipped_specs, table, toml_value, usable_cores
from benchmarks.server_process import ServerProcess, serve
from rnnserve.host.torch_runtime import default_threads
from rnnserve.ops.config import Limits
from rnnserve.plugin_api import LanguageModel
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


async def load(server: ServerProcess, model: str, concurrency: int, new_tokens: int, rounds: int,
               threads: int) -> Run:
    """``concurrency`` closed-loop workers, each running ``rounds`` streams one after another;
    the server's CPU use as a share of ``threads`` cores (its torch threads)."""
    run = Run(concurrency)
    async with AsyncClient(server.target, timeout=600) as client:
        before = (await client.get_model(model)).stats
        cpu0, t0 = server.cpu_seconds(), time.perf_counter()

        async def worker(w: int) -> None:
            for r in range(rounds):
                await _stream(client, model, new_tokens, seed=w * rounds + r, run=run)

        await asyncio.gather(*(worker(w) for w in range(concurrency)))
        run.seconds = time.perf_counter() - t0
        run.cpu = (server.cpu_seconds() - cpu0) / run.seconds / threads
        after = (await client.get_model(model)).stats
    steps = after.steps_total - before.steps_total
    run.mean_batch = (after.tokens_total - before.tokens_total) / steps if steps else 0.0
    return run


#: The precisions whose matrix-product peak is measured (``GetModel``'s names).
PRECISIONS = ("float32", "bfloat16", "int8")
#: How ``CharRNNBackend.load`` loads a checkpoint in each precision.
LOAD_ARGS: dict[str, dict[str, Any]] = {
    "float32": {}, "bfloat16": {"dtype": torch.bfloat16}, "int8": {"quantized": True}}


def _best_rate(call: Callable[[], object], ops: float, seconds: float) -> float:
    """Giga-operations per second of ``call`` (``ops`` operations each): the best of three rounds
    of at least ``seconds`` (and two calls) each, after one warm-up call."""
    best = 0.0
    for _ in range(3):
        call()
        calls, t = 0, time.perf_counter()
        while calls < 2 or time.perf_counter() - t < seconds:
            call()
            calls += 1
        best = max(best, ops * calls / (time.perf_counter() - t) / 1e9)
    return best


def int8_linear(features: int) -> nn.Module:
    """A ``features`` x ``features`` ``nn.Linear`` converted by the char-lstm backend's ``quantize``:
    the int8 kernels the ``quantize = true`` model runs (whatever ``quantize`` builds, it takes
    a module holding ``nn.Linear`` layers and returns one computing the same function in int8)."""
    from rnnserve_plugins.char_lstm.backend import quantize

    return quantize(nn.Sequential(nn.Linear(features, features))).eval()


@torch.inference_mode()
def gemm_peak(precision: str, size: int, seconds: float) -> float:
    """Measured [size, size] x [size, size] matrix-product peak of ``precision`` on torch's
    current thread count: GFLOP/s (int8: GOP/s)."""
    if precision == "int8":
        layer, x = int8_linear(size), torch.randn(size, size)
        return _best_rate(lambda: layer(x), 2.0 * size**3, seconds)
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[precision]
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    return _best_rate(lambda: torch.mm(a, b), 2.0 * size**3, seconds)


def flops_per_char(model_dir: Path) -> float:
    """Multiply-adds x 2 of one decoding step: every recurrent and output weight is used once."""
    config = json.loads((model_dir / "config.json").read_text())
    config = config.get("model", config)
    gates = {"lstm": 4, "peephole-lstm": 4, "gru": 3, "rnn": 1}[config["cell"]]
    hidden, layers = config["hidden_size"], config["num_layers"]
    recurrent = sum(gates * hidden * ((config["embedding_dim"] if k == 0 else hidden) + hidden) for k in range(layers))
    return 2.0 * (recurrent + hidden * config["vocab_size"])


@torch.inference_mode()
def bare_step_rate(backend: LanguageModel, batch: int, seconds: float) -> float:
    """chars/s of ``backend.step`` alone at ``batch`` rows, the state carried from step to step
    (no sampling, no scheduler, no gRPC): at least ``seconds`` and ten steps, after three warm-up steps."""
    tokens = torch.randint(0, backend.vocab.size, (batch,))
    state = backend.initial_state(batch)
    for _ in range(3):
        _, state = backend.step(tokens, state)
    steps, t = 0, time.perf_counter()
    while steps < 10 or time.perf_counter() - t < seconds:
        _, state = backend.step(tokens, state)
        steps += 1
    return batch * steps / (time.perf_counter() - t)


#: A served model: its options and its other model-spec keys (:data:`SPEC_KEYS`).
Served = tuple[dict[str, Any], dict[str, Any]]
#: Each ``--variants`` choice but ``default`` (:func:`shipped_default`).
VARIANTS: dict[str, Served] = {
    "int8": ({"quantize": True}, {}),
    "bfloat16": ({"dtype": "bfloat16"}, {}),
    "every-step": ({}, {"emit_interval_ms": 0}),
}
#: The model-spec keys besides ``options`` that a config's ``[[models]]`` entry can set.
SPEC_KEYS = ("max_batch_size", "step_timeout_s", "emit_interval_ms")


def shipped_default() -> Served:
    """The options and other keys of the shipped ``austen-char-lstm`` spec, as ``rnnserve serve``
    with no options loads it."""
    from rnnserve_plugins.char_lstm.plugin import SHIPPED_MODEL

    spec = shipped_specs()[SHIPPED_MODEL]
    return dict(spec.options), {key: getattr(spec, key) for key in SPEC_KEYS if getattr(spec, key) is not None}


def default_model_dir() -> Path:
    from rnnserve_plugins.char_lstm.plugin import SHIPPED_DIR

    return SHIPPED_DIR


def bare_steps(model_dir: Path, served: dict[str, tuple[str, bool, list[int]]],
               seconds: float) -> dict[str, list[float]]:
    """The bare step's chars/s of each served model (name -> (precision, naive step, batches)) at
    each of its batches; each (precision, step kind, batch) is loaded and timed once."""
    from rnnserve_plugins.char_lstm.backend import CharRNNBackend

    backends: dict[tuple[str, bool], CharRNNBackend] = {}
    rates: dict[tuple[str, bool, int], float] = {}
    out: dict[str, list[float]] = {}
    for name, (precision, naive, batches) in served.items():
        if precision not in LOAD_ARGS:
            raise SystemExit(f"model {name!r}: the server reports precision {precision!r}; "
                             f"the bare step knows {', '.join(LOAD_ARGS)}")
        key = (precision, naive)
        if key not in backends:
            backends[key] = CharRNNBackend.load(model_dir, naive_step=naive, **LOAD_ARGS[precision])
        for batch in batches:
            if (*key, batch) not in rates:
                rates[(*key, batch)] = bare_step_rate(backends[key], batch, seconds)
        out[name] = [rates[(*key, batch)] for batch in batches]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", default="1,8,32,64,128")
    parser.add_argument("--model-dir", type=Path, default=None, help="char-lstm checkpoint (default: shipped)")
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=2, help="streams per worker at each level")
    parser.add_argument("--min-streams", type=int, default=32,
                        help="streams per level at least (workers run more rounds at low concurrency: a level of "
                             "two streams measures their start-up, not the steady state)")
    parser.add_argument("--baseline-concurrency", default="1,64")
    parser.add_argument("--variants", default="",
                        help=f"also measure these, comma-separated: default, {', '.join(VARIANTS)}")
    parser.add_argument("--plot", type=Path, help="write throughput/latency vs concurrency here (PNG)")
    parser.add_argument("--torch-threads", type=int, default=None,
                        help="server torch threads (default: what the server picks, (cores - 1) // models, at least 1)")
    parser.add_argument("--peak-size", type=int, default=1024, help="matrix size of the peak measurements")
    parser.add_argument("--peak-seconds", type=float, default=0.5, help="length of each peak measurement's rounds")
    parser.add_argument("--bare-seconds", type=float, default=1.0, help="time each bare step at least this long")
    args = parse_args(parser, argv, quick={"concurrency": "1,4", "new_tokens": 16, "rounds": 1, "min_streams": 1,
                                           "baseline_concurrency": "1", "peak_size": 256, "peak_seconds": 0.02,
                                           "bare_seconds": 0.05})
    print_machine()
    model_dir = (args.model_dir or default_model_dir()).resolve()
    levels = [int(c) for c in args.concurrency.split(",")]
    base_levels = [int(c) for c in args.baseline_concurrency.split(",")]
    models: dict[str, Served] = {"rnnserve": ({}, {}), "naive": ({"naive_step": True}, {"max_batch_size": 1})}
    for variant in filter(None, args.variants.split(",")):
        if variant not in ("default", *VARIANTS):
            parser.error(f"unknown variant {variant!r}; choose from default, {', '.join(VARIANTS)}")
        if variant == "default" and args.torch_threads:
            parser.error("the default variant is the server with no options: drop --torch-threads")
        models[f"rnnserve {variant}"] = shipped_default() if variant == "default" else VARIANTS[variant]

    # The server's torch threads: --torch-threads, else what a server of these models picks
    # (rnnserve.host.torch_runtime.default_threads). Peaks and bare steps run on as many.
    cores = usable_cores()
    threads = args.torch_threads or default_threads(cores, len(models))
    torch.set_num_threads(threads)
    peaks = {precision: gemm_peak(precision, args.peak_size, args.peak_seconds) for precision in PRECISIONS}
    if cores != threads:
        torch.set_num_threads(cores)
        machine_peak = gemm_peak("float32", args.peak_size, args.peak_seconds)
        torch.set_num_threads(threads)
    else:
        machine_peak = peaks["float32"]
    flops = flops_per_char(model_dir)
    roofline = {precision: peak * 1e9 / flops for precision, peak in peaks.items()}
    machine_roofline = machine_peak * 1e9 / flops

    config = "[server]\ndefault_models = false\n" + (
        f"torch_threads = {args.torch_threads}\n" if args.torch_threads else "") + "".join(
        f'[[models]]\nname = "{name}"\nbackend = "char-lstm"\npath = "{model_dir}"\n'
        + "".join(f"options.{key} = {toml_value(value)}\n" for key, value in opts.items())
        + "".join(f"{key} = {toml_value(value)}\n" for key, value in keys.items())
        for name, (opts, keys) in models.items())
    results: dict[str, list[Run]] = {}
    with serve(config) as server:
        with Client(server.target) as client:
            for name in models:  # warm up: each model's first call builds its kernels
                client.generate(name, PROMPT, max_new_tokens=16)
            infos = {name: client.get_model(name) for name in models}
        precisions = {name: info.precision for name, info in infos.items()}
        if "rnnserve default" in models:
            choice = infos["rnnserve default"].precision_choice
            print(f"  default: {models['rnnserve default'][0]} runs in {precisions['rnnserve default']}"
                  + (f" ({choice})" if choice else ""), flush=True)
        for name in models:
            for c in base_levels if name == "naive" else levels:
                rounds = max(args.rounds if name != "naive" else 1, math.ceil(args.min_streams / c))
                results.setdefault(name, []).append(asyncio.run(
                    load(server, name, c, args.new_tokens, rounds, threads)))
                r = results[name][-1]
                print(f"  {name:<18} c={c:<4} {r.chars_per_s:10,.0f} chars/s", flush=True)

    # The server has stopped: the bare steps have the machine to themselves, on its thread count.
    max_batch = {name: keys.get("max_batch_size") or Limits().max_batch_size for name, (_, keys) in models.items()}
    bare = bare_steps(model_dir, {name: (precisions[name], bool(models[name][0].get("naive_step")),
                                         [min(r.concurrency, max_batch[name]) for r in runs])
                                  for name, runs in results.items()}, args.bare_seconds)

    naive_best = max(r.chars_per_s for r in results["naive"])
    rows, versus = [], []
    for name, runs in results.items():
        precision = precisions[name]
        for r, step in zip(runs, bare[name], strict=True):
            rows.append((name, r.concurrency, r.chars_per_s, percentile(r.ttfc, 50) * 1e3,
                         percentile(r.ttfc, 99) * 1e3, percentile(r.inter_char, 50) * 1e3,
                         percentile(r.inter_char, 99) * 1e3, r.mean_batch, r.cpu * 100,
                         r.chars_per_s / naive_best))
            versus.append((name, r.concurrency, precision, r.chars_per_s, step, r.chars_per_s / step,
                           100 * r.chars_per_s / roofline["float32"], 100 * r.chars_per_s / machine_roofline,
                           "-" if precision == "float32" else 100 * r.chars_per_s / roofline[precision]))
    print(f"\ncheckpoint {model_dir.name}: {flops / 1e6:.2f} MFLOP/char; prompt {len(PROMPT)} chars, "
          f"{args.new_tokens} new chars per stream; server torch threads {threads} of {cores} cores")
    print(f"peaks ({args.peak_size}^2 matrix products): float32 {peaks['float32']:,.1f} GFLOP/s on {threads} "
          f"threads -> fp32 roofline {roofline['float32']:,.0f} chars/s; float32 {machine_peak:,.1f} GFLOP/s on "
          f"{cores} cores -> machine roofline {machine_roofline:,.0f} chars/s; bfloat16 {peaks['bfloat16']:,.1f} "
          f"GFLOP/s -> {roofline['bfloat16']:,.0f} chars/s; int8 {peaks['int8']:,.1f} GOP/s -> "
          f"{roofline['int8']:,.0f} chars/s")
    print(table(["server", "streams", "chars/s", "TTFC p50 ms", "TTFC p99 ms", "inter-char p50 ms",
                 "inter-char p99 ms", "batch", "CPU %", "x naive"], rows))
    print(f"\nserved against the bare step (this process, {threads} torch threads, after the server stopped; "
          "batch = streams, at most the model's max_batch_size) and the rooflines")
    print(table(["model", "streams", "precision", "served chars/s", "bare step chars/s", "served / bare",
                 "% roofline", "% machine roofline", "% own roofline"], versus))
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
