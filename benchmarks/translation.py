"""Translator throughput through the gRPC server: batched across calls vs one call at a time.

Starts ``rnnserve serve`` with the translator twice: as rnnserve serves it (texts from
concurrent calls with equal options batched into one beam search) and as the baseline
(``max_batch_size = 1``: one sentence at a time, as a per-request server would). C
closed-loop clients each translate one sentence per call.

    python -m benchmarks.translation [--model-dir DIR] [--sentences FILE] [--concurrency 1,8,32]
                                     [--dtype bfloat16]

``--dtype`` serves both (batched and baseline) in that dtype, so the ratio compares like
with like. ``--bleu DATA`` (the output of ``rnnserve data en-de``) then translates the whole
test split through the running server, one sentence per call from 32 concurrent clients
(beam 5, the model's other defaults), and prints sacreBLEU and chrF per part next to the
figures of the model card the server reports (``GetModel``): the card's numbers
reproduced through the serving path, cross-call batching included.

    python -m benchmarks.translation --concurrency 1,8,32 --bleu runs/en-de/data

``--quick``: seconds, the same path at small sizes (the test suite runs it).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

from benchmarks.common import parse_args, percentile, print_machine, table
from benchmarks.server_process import serve
from rnnserve_client import AsyncClient

FALLBACK = [
    "The weather is nice today.", "Where is the train station?", "I would like a cup of coffee, please.",
    "He did not know what to say.", "We have to leave early tomorrow morning.", "Can you help me?",
    "The book is on the table.", "She has lived in this town for ten years.",
    "In the beginning God created the heavens and the earth.", "Blessed are the poor in spirit.",
]


async def load(target: str, model: str, sentences: list[str], concurrency: int, calls: int,
               beam: int) -> tuple[float, list[float]]:
    """(sentences/s, per-call latencies) for ``calls`` calls spread over ``concurrency`` workers."""
    latencies: list[float] = []
    async with AsyncClient(target, timeout=600) as client:
        await client.translate(model, sentences[:1], beam_size=beam)  # warm up
        counter = iter(range(calls))
        start = time.perf_counter()

        async def worker() -> None:
            for i in counter:
                t = time.perf_counter()
                await client.translate(model, [sentences[i % len(sentences)]], beam_size=beam)
                latencies.append(time.perf_counter() - t)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return calls / (time.perf_counter() - start), latencies


def default_model_dir() -> Path:
    from rnnserve_plugins.gru_translator.plugin import SHIPPED_DIR

    return SHIPPED_DIR


async def translate_split(target: str, model: str, texts: list[str], concurrency: int = 32,
                          beam: int = 5) -> list[str]:
    """The best translation of each text, one call per text from ``concurrency`` workers."""
    out = [""] * len(texts)
    pending = iter(range(len(texts)))
    async with AsyncClient(target, timeout=600) as client:

        async def worker() -> None:
            for i in pending:
                out[i] = (await client.translate(model, texts[i], beam_size=beam))[0].hypotheses[0].text

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return out


def bleu_through_server(target: str, model: str, data: Path) -> list[tuple[object, ...]]:
    """Rows (part, pairs, BLEU, card BLEU, chrF, card chrF) for every test part ``data`` holds (each
    domain, the combined split) and their macro average, translated through ``target``."""
    from rnnserve_client import Client
    from rnnserve_plugins.gru_translator.data import read_parallel
    from rnnserve_plugins.gru_translator.evaluate import MACRO, available_parts, macro_average, score

    with Client(target) as client:
        card = client.get_model(model).card.metrics
    parts = available_parts(data)
    sources = sorted({s for part in parts for s in read_parallel(data, part)[0]}, key=len)
    translated = dict(zip(sources, asyncio.run(translate_split(target, model, sources)), strict=True))
    rows, results = [], {}
    for part in parts:
        part_sources, references = read_parallel(data, part)
        results[part] = result = score([translated[s] for s in part_sources], references)
        rows.append((part, len(part_sources), result["bleu"], card.get(f"{part}_bleu_beam5", float("nan")),
                     result["chrf"], card.get(f"{part}_chrf_beam5", float("nan"))))
    macro = macro_average(results)
    rows.append((MACRO, "", macro["bleu"], card.get(f"{MACRO}_bleu_beam5", float("nan")), macro["chrf"],
                 card.get(f"{MACRO}_chrf_beam5", float("nan"))))
    print(f"signatures: BLEU {result['bleu_signature']}; chrF {result['chrf_signature']}")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=None, help="gru-seq2seq checkpoint (default: shipped)")
    parser.add_argument("--sentences", type=Path, help="English sentences, one per line (default: a built-in set)")
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--calls", type=int, default=192, help="calls per measurement")
    parser.add_argument("--dtype", default="float32", help="model dtype for both servers (float32 or bfloat16)")
    parser.add_argument("--quantize", action="store_true", help="both servers serve the int8 dynamic-quantized model")
    parser.add_argument("--torch-threads", type=int, default=None, help="server torch threads (default: per core)")
    parser.add_argument("--bleu", type=Path, metavar="DATA",
                        help="also score the test split of DATA (rnnserve data en-de) through the server")
    parser.add_argument("--beams", default="1,5", help="beam sizes to measure")
    args = parse_args(parser, argv, quick={"concurrency": "1,4", "calls": 8, "beams": "1,3"})
    print_machine()
    model_dir = (args.model_dir or default_model_dir()).resolve()
    sentences = args.sentences.read_text().splitlines() if args.sentences else FALLBACK
    levels = [int(c) for c in args.concurrency.split(",")]
    threads = f"torch_threads = {args.torch_threads}\n" if args.torch_threads else ""
    config = "[server]\ndefault_models = false\n" + threads + "".join(
        f'[[models]]\nname = "{name}"\nbackend = "gru-seq2seq"\npath = "{model_dir}"\nmax_batch_size = {batch}\n'
        + ('options.quantize = true\n' if args.quantize else f'options.dtype = "{args.dtype}"\n')
        for name, batch in (("batched", 128), ("one-at-a-time", 1)))
    rows = []
    with serve(config) as server:
        for beam in (int(b) for b in args.beams.split(",")):
            base, _ = asyncio.run(load(server.target, "one-at-a-time", sentences, max(levels), args.calls, beam))
            rows.append((f"one-at-a-time, beam {beam}", max(levels), base, float("nan"), float("nan"), 1.0))
            for c in levels:
                rate, lat = asyncio.run(load(server.target, "batched", sentences, c, args.calls, beam))
                rows.append((f"rnnserve, beam {beam}", c, rate, percentile(lat, 50) * 1e3, percentile(lat, 99) * 1e3,
                             rate / base))
                print(f"  beam {beam} c={c}: {rate:.1f} sentences/s", flush=True)
        bleu_rows = bleu_through_server(server.target, "batched", args.bleu) if args.bleu else []
    print(table(["server", "concurrency", "sentences/s", "latency p50 ms", "latency p99 ms", "x one-at-a-time"],
                rows))
    if bleu_rows:
        print(f"\nTest split through the server (beam 5, {'int8' if args.quantize else args.dtype}, 32 concurrent "
              "calls) against the model card")
        print(table(["part", "pairs", "BLEU", "card BLEU", "chrF", "card chrF"], bleu_rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
