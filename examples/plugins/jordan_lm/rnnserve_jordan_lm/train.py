"""``rnnserve train jordan-lm``: train a JordanRNN on a text with one paragraph per line.

The last ``--val-fraction`` of the paragraphs is held out for validation. Training reads
random windows of ``--seq-len`` tokens from the training paragraphs (each paragraph is
``<bos> tokens <eos>``), every window from the zero state, and minimises the cross-entropy
of the next token with Adam. The output directory gets the checkpoint and a
``model_card.json`` that rnnserve shows in ``Models.GetModel`` (written by ``card.py``).
"""

from __future__ import annotations

import argparse
import hashlib
import math
import time
from functools import partial
from pathlib import Path

import torch
from torch.nn import functional as F

from rnnserve.plugin_api import Command, ModelCard
from rnnserve.training import optimizer_step, warmup_cosine_lr

from .card import write_card
from .model import JordanConfig, JordanRNN, save_model
from .vocab import WordVocab

DEFAULT_TEXT = Path(__file__).resolve().parent / "data" / "pride-and-prejudice-1-4.txt"
HYPERPARAMETERS = ("steps", "batch_size", "seq_len", "lr", "embedding_dim", "hidden_size", "min_count",
                   "val_fraction", "seed")


def paragraph_ids(vocab: WordVocab, paragraphs: list[str]) -> list[list[int]]:
    return [[vocab.bos_id, *vocab.encode(p)[0], vocab.eos_id] for p in paragraphs]


@torch.no_grad()
def evaluate(model: JordanRNN, paragraphs: list[list[int]]) -> float:
    """Mean cross-entropy (nats per token) of predicting each token after <bos>, <eos> included."""
    total, count = 0.0, 0
    for ids in paragraphs:
        tokens = torch.tensor([ids])
        logits, _ = model(tokens[:, :-1], model.initial_state(1))
        total += F.cross_entropy(logits[0], tokens[0, 1:], reduction="sum").item()
        count += len(ids) - 1
    return total / count


def window_loss(model: JordanRNN, window: torch.Tensor) -> float:
    """Cross-entropy of each next token of ``window`` [B, T + 1], read from the zero state; backpropagated."""
    logits, _ = model(window[:, :-1], model.initial_state(window.shape[0]))
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), window[:, 1:].reshape(-1))
    loss.backward()
    return loss.item()


def train(args: argparse.Namespace) -> ModelCard:
    started = time.perf_counter()
    torch.manual_seed(args.seed)
    text = Path(args.text).read_text(encoding="utf-8")
    paragraphs = [line for line in text.splitlines() if line.strip()]
    held_out = max(1, round(len(paragraphs) * args.val_fraction))
    train_text, val_text = paragraphs[:-held_out], paragraphs[-held_out:]
    vocab = WordVocab.build(train_text, min_count=args.min_count)
    stream = torch.tensor([i for ids in paragraph_ids(vocab, train_text) for i in ids])
    val = paragraph_ids(vocab, val_text)
    model = JordanRNN(JordanConfig(vocab.size, args.embedding_dim, args.hidden_size))
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    offsets = torch.arange(args.seq_len + 1)
    for step in range(1, args.steps + 1):
        starts = torch.randint(0, len(stream) - args.seq_len - 1, (args.batch_size, 1))
        window = stream[starts + offsets]  # [B, seq_len + 1]
        # cosine decay from --lr to 0, no warm-up; gradients clipped to norm 1
        lr = warmup_cosine_lr(step - 1, lr=args.lr, min_lr=0.0, warmup_steps=0, max_steps=args.steps)
        loss, _ = optimizer_step(optimizer, list(model.parameters()), lr, 1.0, partial(window_loss, model, window))
        if step % args.log_every == 0 or step == args.steps:
            print(f"step {step}/{args.steps}  train loss {loss:.3f}  val loss {evaluate(model, val):.3f}", flush=True)
    model.eval()
    val_loss = evaluate(model, val)
    unknown = sum(i == vocab.unk_id for ids in val for i in ids) / sum(len(ids) for ids in val)
    seconds = time.perf_counter() - started
    out = Path(args.out)
    training = {"text": Path(args.text).name, "text_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
                **{name: getattr(args, name) for name in HYPERPARAMETERS}}
    save_model(out, model, vocab, training)
    card = write_card(out, args, vocab_size=vocab.size, paragraphs=len(paragraphs),
                      tokens=len(stream) + sum(map(len, val)), text_sha256=training["text_sha256"],
                      held_out=held_out, val_loss=val_loss, unknown_rate=unknown,
                      parameters=sum(p.numel() for p in model.parameters()), seconds=seconds)
    (out / "manifest.json").unlink(missing_ok=True)  # stale now; `rnnserve manifest DIR` writes a new one
    print(f"wrote {out}: validation {val_loss:.3f} nats/token (perplexity {math.exp(val_loss):.1f}) in {seconds:.0f} s")
    return card


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="model directory to write")
    parser.add_argument("--text", default=str(DEFAULT_TEXT), help="UTF-8 text, one paragraph per line "
                        "(default: the shipped first four chapters of Pride and Prejudice)")
    parser.add_argument("--steps", type=int, default=300, help="about 6 s; more overfits 5,000 words")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--embedding-dim", type=int, default=32)
    parser.add_argument("--hidden-size", type=int, default=64)
    parser.add_argument("--min-count", type=int, default=2, help="rarer tokens become <unk>")
    parser.add_argument("--val-fraction", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--log-every", type=int, default=100)


def run(args: argparse.Namespace) -> int:
    torch.set_num_threads(1)  # tiny matrices: threads cost more than they give
    train(args)
    return 0


COMMAND = Command(name="jordan-lm", group="train", help="train a Jordan network language model on a text",
                  add_arguments=add_arguments, run=run)
