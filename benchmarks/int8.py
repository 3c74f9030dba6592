"""int8 paths for the char model's decoding step, measured against each other in one run.

* ``float32``: the fused step (``CharRNN.fused_step``), the reference;
* ``int8``: what the server runs for ``quantize = true``, ``rnnserve.int8.quantize_linears``
  (int8 per-channel weights, per-row dynamic int8 activations, ``torch._int_mm``);
* ``int8 (deprecated)``: the path it replaced, ``torch.ao.quantization.quantize_dynamic``
  (fbgemm, one activation scale per tensor), deprecated since torch 2.10 and measured only
  as the baseline.

For each: milliseconds per step at each batch size (best of a few rounds), chars/s, and the
largest logit difference from float32 on the same random states.

    python -m benchmarks.int8 [--batches 1,16,64] [--torch-threads 1] [--model-dir DIR]
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from benchmarks.common import parse_args, print_machine, table
from rnnserve.int8 import quantize_linears
from rnnserve_plugins.char_lstm.checkpoint import load_model
from rnnserve_plugins.char_lstm.plugin import SHIPPED_DIR


def deprecated_int8(module: nn.Module) -> nn.Module:
    """The baseline: ``quantize_dynamic`` over the step's Linear layers (its warnings silenced)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(module, {nn.Linear}, dtype=torch.qint8)


def best_ms(call: Callable[[], object], steps: int, rounds: int = 3) -> float:
    """Best-of-``rounds`` milliseconds per call, after a warm-up."""
    for _ in range(5):
        call()
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(steps):
            call()
        best = min(best, (time.perf_counter() - start) / steps * 1e3)
    return best


@torch.no_grad()
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=SHIPPED_DIR, help="char-lstm checkpoint (default: shipped)")
    parser.add_argument("--batches", default="1,16,64")
    parser.add_argument("--steps", type=int, default=200, help="steps per timing round")
    parser.add_argument("--torch-threads", type=int, default=1)
    args = parse_args(parser, argv, quick={"batches": "1,4", "steps": 5})
    torch.set_num_threads(args.torch_threads)
    print_machine()
    model, _, _ = load_model(args.model_dir)
    reference = model.eval().fused_step()
    steps = {"float32": reference, "int8": quantize_linears(reference), "int8 (deprecated)": deprecated_int8(reference)}
    generator = torch.Generator().manual_seed(0)
    rows = []
    for batch in (int(b) for b in args.batches.split(",")):
        tokens = torch.randint(0, model.config.vocab_size, (batch,), generator=generator)
        state = tuple(torch.randn(s.shape, generator=generator) * 0.5 for s in model.initial_state(batch))
        want = reference(tokens, state)[0]
        for name, step in steps.items():
            ms = best_ms(lambda step=step, tokens=tokens, state=state: step(tokens, state), args.steps)
            error = (step(tokens, state)[0] - want).abs().max().item()
            rows.append((name, batch, ms, batch / ms * 1e3, error))
    print(f"model {args.model_dir.name}, {torch.get_num_threads()} torch thread(s)")
    print(table(["step", "batch", "ms/step", "chars/s", "max |logit - float32|"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
