"""Held-out loss of a served language model, measured through the ``Score`` RPC of a real server.

Scores a text file (default: Persuasion, the char-LSTM's test novel) in chunks of
``--chunk`` characters, each conditioned on the ``--context`` characters before it, and
prints nats and bits per character next to the model card's figure.

    python -m benchmarks.lm_eval --data runs/austen/data [--model austen-char-lstm]

``--quick``: seconds, the committed Austen slice (``tests/data/austen_slice``) in small
chunks, serving only the model it scores (the test suite runs it).
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

from benchmarks.common import QUICK_DATA, parse_args, print_machine, shipped_config
from benchmarks.server_process import serve
from rnnserve_client import Client


def score_file(client: Client, model: str, text: str, chunk: int, context: int) -> tuple[float, int]:
    """Total log-probability (nats) of ``text`` and the number of characters scored."""
    total, count = 0.0, 0
    for start in range(0, len(text), chunk):
        piece = text[start : start + chunk]
        result = client.score(model, piece, context=text[max(0, start - context) : start])
        total += result.total_logprob
        count += len(result.logprobs)
    return total, count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path,
                        help="folder with test.txt (`rnnserve data austen`; required unless --quick)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--model", default="austen-char-lstm")
    parser.add_argument("--config", type=Path, help="server config (default: the installed plugins' models)")
    parser.add_argument("--chunk", type=int, default=2000)
    parser.add_argument("--context", type=int, default=500)
    args = parse_args(parser, argv, quick={"data": QUICK_DATA, "chunk": 100, "context": 50})
    print_machine()
    if args.data is None:
        parser.error("--data is required (or --quick, which scores the committed test slice)")
    if args.chunk + args.context > 8192:
        parser.error("--chunk + --context must fit the server's max_prompt_chars (8192)")
    text = (args.data / f"{args.split}.txt").read_text()
    # default: the installed plugins' models; only the scored one under --quick (a faster start)
    config = args.config.read_text() if args.config else shipped_config(args.model) if args.quick else ""
    if "torch_threads" not in config:  # one thread: no OpenMP oversubscription; batch-1 reads gain nothing from two
        config = "[server]\ntorch_threads = 1\n" + config if "[server]" not in config else \
            config.replace("[server]", "[server]\ntorch_threads = 1", 1)
    with serve(config) as server, Client(server.target, timeout=600) as client:
        card = client.get_model(args.model).card
        t = time.perf_counter()
        total, count = score_file(client, args.model, text, args.chunk, args.context)
        seconds = time.perf_counter() - t
    nats = -total / count
    print(f"{args.model} on {args.split}.txt ({count:,} characters, chunks of {args.chunk} after {args.context} "
          f"characters of context) through Score: {nats:.4f} nats/char = {nats / math.log(2):.4f} bits/char "
          f"({count / seconds:,.0f} chars/s)")
    if card.metrics:
        print("model card:", ", ".join(f"{k}={v:.4f}" for k, v in sorted(card.metrics.items())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
