"""CLI commands: ``rnnserve data austen|english``, ``rnnserve train char-lstm``, ``rnnserve eval char-lstm``."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import torch

from rnnserve.plugin_api import Command, write_manifest

from . import train
from .backend import CharRNNBackend
from .checkpoint import load_model, save_model
from .data import DataError, encode_documents, prepare, read_split
from .evaluate import NATS_TO_BITS, evaluate_loss


def _data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="directory for train/val/test.txt + manifest.json")
    parser.add_argument("--from-dir", type=Path, help="an already extracted r-cran-janeaustenr package "
                        "(skips apt-get download)")


def _data_run(args: argparse.Namespace) -> int:
    try:
        manifest = prepare(args.out, args.from_dir)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for name, info in manifest["files"].items():
        print(f"{args.out / name}: {info['chars']:,} chars, sha256 {info['sha256']}")
    return 0


def _english_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="directory for train/val/test.txt, "
                        "test.<source>.txt and manifest.json")
    parser.add_argument("--cache", type=Path, help="where downloaded .deb files are kept (default: OUT/../cache)")
    parser.add_argument("--sources", help="comma-separated source names to build (default: all; see "
                        "rnnserve_plugins.char_lstm.english.sources)")


def _english_run(args: argparse.Namespace) -> int:
    from rnnserve_plugins.debian_packages import DataError as PackageError

    from . import english

    try:
        manifest = english.prepare(args.out, args.cache, args.sources.split(",") if args.sources else None)
    except (DataError, PackageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for name, info in manifest["files"].items():
        print(f"{args.out / name}: {info['chars']:,} chars, {info['documents']:,} documents, sha256 {info['sha256']}")
    print("mix (train): " + ", ".join(f"{name} {share:.1%}" for name, share in manifest["mix"].items()))
    coverage = manifest["coverage"]
    print(f"character coverage: {coverage['in_charset_before_normalising']:.4%} of the prose's characters are "
          f"printable ASCII before normalising; {coverage['paragraphs_dropped_outside_charset']:,} paragraphs "
          f"dropped for other characters; wall time {manifest['wall_time_s']:.0f} s")
    return 0


def _eval_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, required=True, help="model directory (config.json, model.safetensors)")
    parser.add_argument("--data", type=Path, required=True,
                        help="directory from `rnnserve data austen` or `rnnserve data english`")
    parser.add_argument("--split", choices=("train", "val", "test"), default="test")
    parser.add_argument("--streams", type=int, default=32, help="text pieces read in parallel (1: exact, slow)")
    parser.add_argument("--quantize", action="store_true", help="evaluate the int8 dynamic-quantized model")
    parser.add_argument("--export", type=Path, help="copy the model here (see --storage), write its model card "
                        "and manifest.json")
    parser.add_argument("--storage", choices=("float32", "float16"), default="float32",
                        help="weight storage dtype of --export")
    parser.add_argument("--write-card", action="store_true", help="(re)write --model's model card")


def _eval_run(args: argparse.Namespace) -> int:
    from .card import write_card_for

    model, vocab, config = load_model(args.model)
    if args.export is not None:
        reference = evaluate_loss(model, encode_documents(vocab, read_split(args.data, "test")), vocab.bos_id,
                                  streams=args.streams)
        save_model(args.export, model, vocab, config.get("training"), dtype=getattr(torch, args.storage))
        for extra in ("loss.png",):
            if (args.model / extra).exists():
                shutil.copy(args.model / extra, args.export / extra)
        run_state = args.model.parent / "last" / "trainer_state.json"
        wall = json.loads(run_state.read_text())["elapsed_s"] if run_state.exists() else None
        card = write_card_for(args.export, args.data, wall_time_s=wall,
                              extra_metrics={"test_nats_per_char_float32": round(reference, 4)},
                              streams=args.streams)
        write_manifest(args.export)  # sha256 of every file, verified by the server when it loads the model
        print(json.dumps(card.metrics, indent=1))
        return 0
    if args.write_card:
        print(json.dumps(write_card_for(args.model, args.data, streams=args.streams).metrics, indent=1))
        return 0
    backend = CharRNNBackend(model, vocab, quantized=args.quantize)
    tokens = encode_documents(vocab, read_split(args.data, args.split))
    loss = evaluate_loss(backend, tokens, vocab.bos_id, streams=args.streams)
    print(f"{args.split}: {loss:.4f} nats/char, {loss * NATS_TO_BITS:.4f} bits/char "
          f"({tokens.numel():,} chars{', int8' if args.quantize else ''})")
    return 0


COMMANDS = (
    Command(group="data", name="austen", help="download and split Jane Austen's novels (r-cran-janeaustenr)",
            add_arguments=_data_arguments, run=_data_run),
    Command(group="data", name="english", help="build a modern-English prose corpus from Debian packages (man "
            "pages, Python docs, GNU manuals, help pages)", add_arguments=_english_arguments, run=_english_run),
    Command(group="train", name="char-lstm", help="train a character-level LSTM/GRU/RNN language model",
            add_arguments=train.COMMAND.add_arguments, run=train.COMMAND.run),
    Command(group="eval", name="char-lstm", help="evaluate a char-lstm model (loss per char), export it, "
            "write its model card", add_arguments=_eval_arguments, run=_eval_run),
)
