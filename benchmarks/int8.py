"""The two int8 implementations of ``quantize = true`` against float32, in one run.

* ``float32``: the char-lstm backend as ``dtype = "float32"`` loads it, the reference;
* ``int8 fbgemm``: ``quantize = true`` with torch's dynamic quantization (deprecated API,
  what runs where torch has it);
* ``int8 onednn``: ``quantize = true`` with ``rnnserve.host.int8.Int8Linear`` (``torch._int_mm``
  on plain tensors, no deprecated API; recurrence over whole sequences in float32).

For each: milliseconds per decoding step at each batch size (best of a few rounds) with its
chars/s and the largest logit difference from float32 on the same random states, and the
milliseconds to read a prompt of ``--read-chars`` characters at batch 1 and at the largest
batch (``forward``, as the server reads prompts).

    python -m benchmarks.int8 [--batches 1,16,64] [--torch-threads 1] [--model-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path

import torch

from benchmarks.common import parse_args, print_machine, table
from rnnserve.host.int8 import KERNELS_ENV
from rnnserve_plugins.char_lstm.backend import CharRNNBackend
from rnnserve_plugins.char_lstm.plugin import SHIPPED_DIR


def load(directory: Path, kernels: str | None) -> CharRNNBackend:
    """The backend as the server loads it: float32 (``kernels`` None) or int8 with those kernels."""
    if kernels is None:
        return CharRNNBackend.load(directory)
    previous = os.environ.get(KERNELS_ENV)
    os.environ[KERNELS_ENV] = kernels
    try:
        return CharRNNBackend.load(directory, quantized=True)
    finally:
        if previous is None:
            del os.environ[KERNELS_ENV]
        else:
            os.environ[KERNELS_ENV] = previous


def best_ms(call: Callable[[], object], calls: int, rounds: int = 3) -> float:
    """Best-of-``rounds`` milliseconds per call, after a warm-up call."""
    call()
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            call()
        best = min(best, (time.perf_counter() - start) / calls * 1e3)
    return best


@torch.inference_mode()
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=SHIPPED_DIR, help="char-lstm checkpoint (default: shipped)")
    parser.add_argument("--batches", default="1,16,64")
    parser.add_argument("--steps", type=int, default=200, help="steps per timing round")
    parser.add_argument("--read-chars", type=int, default=200, help="prompt length of the read timing")
    parser.add_argument("--torch-threads", type=int, default=1)
    args = parse_args(parser, argv, quick={"batches": "1,4", "steps": 5, "read_chars": 10})
    torch.set_num_threads(args.torch_threads)
    print_machine()
    backends = {"float32": load(args.model_dir, None), "int8 fbgemm": load(args.model_dir, "fbgemm"),
                "int8 onednn": load(args.model_dir, "onednn")}
    reference = backends["float32"]
    vocab_size = reference.vocab.size
    generator = torch.Generator().manual_seed(0)
    batches = [int(b) for b in args.batches.split(",")]
    steps, reads = [], []
    for batch in batches:
        tokens = torch.randint(2, vocab_size, (batch,), generator=generator)
        state = tuple(torch.randn(s.shape, generator=generator) * 0.5 for s in reference.initial_state(batch))
        want = reference.step(tokens, state)[0]
        for name, backend in backends.items():
            ms = best_ms(lambda b=backend, t=tokens, s=state: b.step(t, s), args.steps)
            error = (backend.step(tokens, state)[0] - want).abs().max().item()
            steps.append((name, batch, ms, batch / ms * 1e3, error))
    for batch in sorted({batches[0], batches[-1]}):
        prompt = torch.randint(2, vocab_size, (batch, args.read_chars), generator=generator)
        for name, backend in backends.items():
            start = backend.initial_state(batch)
            reads.append((name, batch, best_ms(lambda b=backend, p=prompt, s=start: b.forward(p, s), 1)))
    print(f"model {args.model_dir.name}, {torch.get_num_threads()} torch thread(s)")
    print(table(["step", "batch", "ms/step", "chars/s", "max |logit - float32|"], steps))
    print(f"\nprompt of {args.read_chars} characters, read by forward as the server reads prompts")
    print(table(["read", "batch", "ms"], reads))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
