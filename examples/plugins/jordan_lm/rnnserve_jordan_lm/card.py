"""The jordan-lm model card: ``model_card.json`` beside a trained checkpoint, shown by ``Models.GetModel``."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from pathlib import Path

from rnnserve.plugin_api import ModelCard


def write_card(out: Path, args: argparse.Namespace, *, vocab_size: int, paragraphs: int, tokens: int,
               text_sha256: str, held_out: int, val_loss: float, unknown_rate: float, parameters: int,
               seconds: float) -> ModelCard:
    """Write ``out/model_card.json`` for a model trained by ``rnnserve train jordan-lm`` with ``args``."""
    card = ModelCard(
        description=f"Word-level Jordan network language model (h_t = tanh(W x_t + U y_t-1 + b), "
                    f"E={args.embedding_dim}, H={args.hidden_size}, {vocab_size} tokens): the rnnserve "
                    "plugin tutorial's example.",
        data=f"{Path(args.text).name}: {paragraphs} paragraphs, {tokens} tokens "
             f"with <bos>/<eos> (sha256 {text_sha256[:16]}...).",
        split=f"validation: the last {held_out} paragraphs; training: the other {paragraphs - held_out}; tokens seen "
              f"fewer than {args.min_count} times in training are <unk>.",
        training_command=f"rnnserve train jordan-lm --text {Path(args.text).name} --steps {args.steps} "
                         f"--seed {args.seed} --out {out.name}",
        metrics={"val_nats_per_token": round(val_loss, 4), "val_perplexity": round(math.exp(val_loss), 2),
                 "val_unknown_token_rate": round(unknown_rate, 4), "train_steps": args.steps,
                 "parameters": parameters, "wall_time_s": round(seconds, 1)},
        license="Code and weights: MIT. Text: public domain (Jane Austen, Pride and Prejudice).",
        limitations="A toy trained on 5,000 words of one novel: Austen-flavoured word salad. Words outside its "
                    "vocabulary are <unk> (reported by the server; generated as nothing).",
    )
    (out / "model_card.json").write_text(json.dumps(dataclasses.asdict(card), indent=2) + "\n")
    return card
