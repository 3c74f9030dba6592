"""Training: teacher forcing with label smoothing over token-budget batches, alone or under ``torchrun``.

Batching: training pairs are sorted by (target, source) length with a seeded random tie
order and cut into batches whose padded size ``pairs * max(source, target + 1)`` stays
within ``batch_tokens``; the batch order is reshuffled every epoch from (seed, epoch).
Under DDP (``torchrun``; gloo between CPU processes, nccl between GPUs) rank r takes batches
r, r + world, ... (equal counts), so an optimizer step sees ``world`` batches; with
``accumulate`` k each rank adds up the gradients of its next k batches first (no gradient
exchange until the last), so a step sees ``world * k`` consecutive batches and one process
with k = 2 takes the same steps as two ranks with k = 1. The gradient is the mean over those
batches of each batch's mean per target piece.

Optimisation: Adam, linear warm-up then cosine decay to ``min_lr`` at ``max_steps``,
label-smoothed cross-entropy summed over target pieces (padding ignored) divided by the
batch's piece count, gradient-norm clipping, dropout. Every ``eval_every`` steps rank 0
greedy-decodes the dev split, measures sacreBLEU and chrF, keeps the best model (by BLEU)
in ``OUT/best`` and redraws ``loss.png``; every ``checkpoint_every`` steps it writes
``OUT/last`` (model + optimizer + RNG + epoch position: the batches of the epoch that all
ranks together have used) so a killed run resumes exactly where it stopped (batch order is a
function of seed and epoch), also on another number of processes that divides that position.
``time_limit_min`` stops early (resumable) once that much training time has passed in this
process.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from rnnserve.plugin_api import cpu_flags
from rnnserve.training import (
    DEVICES,
    TrainingSetupError,
    add_config_flags,
    agree_on_resume,
    command_line,
    config_sections,
    hardware,
    placement,
    resume_source,
    resume_state,
    save_snapshot,
    save_training_state,
    start_process_group,
    time_is_up,
    warmup_cosine_lr,
)

from . import checkpoint
from .beam import greedy_search
from .data import PHRASES, DataError, read_parallel
from .model import Seq2Seq, Seq2SeqConfig
from .protect import has_masks, mask, mask_pairs, unmask
from .subwords import BOS_ID, EOS_ID, MODEL_FILE, PAD_ID, SubwordVocab

#: This module's import name (``__name__`` is "__main__" under ``python -m``), for the recorded command line.
MODULE = "rnnserve_plugins.gru_translator.train"


@dataclass
class TrainConfig:
    """Training hyper-parameters (``config.json`` ``"training"."train"``)."""

    #: Padded (pairs x longest side) tokens per batch and rank.
    batch_tokens: int = 4000
    #: Batches per optimizer step and rank (gradient accumulation).
    accumulate: int = 1
    lr: float = 2e-3
    min_lr: float = 1e-4
    warmup_steps: int = 200
    max_steps: int = 6000
    label_smoothing: float = 0.1
    grad_clip: float = 1.0
    #: Pairs with more pieces on either side are left out of training.
    max_pieces: int = 100
    eval_every: int = 500
    #: Dev pairs decoded per evaluation (0: all), evenly spaced over the dev file.
    dev_pairs: int = 0
    checkpoint_every: int = 100
    log_every: int = 10
    seed: int = 1234
    #: Stop (resumably) after this many minutes of training in this process (0: no limit).
    time_limit_min: float = 0.0
    #: torch intra-op threads per process (0: torch's default).
    threads: int = 0
    #: "auto" (a GPU when there is one: cuda:LOCAL_RANK, nccl between processes), "cpu" or "cuda".
    device: str = "auto"
    #: Also train on ``train.phrases`` (the Ding dictionary's multi-word phrase pairs).
    phrases: bool = False
    #: bfloat16 autocast of the forward pass on the CPU: "auto" (where the CPU has AMX, whose
    #: bfloat16 tiles make it pay), "bfloat16" or "off". Weights, Adam and the loss stay float32.
    autocast: str = "auto"

    def __post_init__(self) -> None:
        if self.accumulate < 1:
            raise TrainingSetupError(f"accumulate must be at least 1, got {self.accumulate}")
        if self.autocast not in AUTOCAST:
            raise TrainingSetupError(f"autocast must be one of {list(AUTOCAST)}, got {self.autocast!r}")


#: ``TrainConfig.autocast`` values.
AUTOCAST = ("auto", "bfloat16", "off")


def autocast_enabled(setting: str, device: torch.device) -> bool:
    """Whether the forward pass runs under bfloat16 autocast (CPU only; "auto": where there is AMX)."""
    if device.type != "cpu" or setting == "off":
        return False
    return setting == "bfloat16" or "amx_bf16" in cpu_flags()


def lr_at(step: int, config: TrainConfig) -> float:
    """Learning rate of optimizer step ``step`` (0-based): linear warm-up, then cosine to ``min_lr``."""
    return warmup_cosine_lr(step, lr=config.lr, min_lr=config.min_lr, warmup_steps=config.warmup_steps,
                            max_steps=config.max_steps)


def make_batches(src_lengths: list[int], tgt_lengths: list[int], batch_tokens: int, seed: int,
                 epoch: int) -> list[list[int]]:
    """Pair indices grouped by length into token-budget batches, in a (seed, epoch)-shuffled order."""
    generator = torch.Generator().manual_seed(seed * 1000 + epoch)
    tie = torch.randperm(len(src_lengths), generator=generator).tolist()
    order = sorted(range(len(src_lengths)), key=lambda i: (tgt_lengths[i], src_lengths[i], tie[i]))
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for i in order:
        size = max(src_lengths[i], tgt_lengths[i] + 1)
        if current and (len(current) + 1) * max(longest, size) > batch_tokens:
            batches.append(current)
            current, longest = [], 0
        current.append(i)
        longest = max(longest, size)
    if current:
        batches.append(current)
    shuffled = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in shuffled]


def collate(sources: list[list[int]], targets: list[list[int]]
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pieces → src [B, S], lengths [B], tgt_in [B, T] (BOS + target), tgt_out [B, T] (target + EOS)."""
    batch = len(sources)
    src = torch.full((batch, max(map(len, sources))), PAD_ID, dtype=torch.long)
    tgt_in = torch.full((batch, max(map(len, targets)) + 1), PAD_ID, dtype=torch.long)
    tgt_out = tgt_in.clone()
    for i, (s, t) in enumerate(zip(sources, targets, strict=True)):
        src[i, : len(s)] = torch.tensor(s)
        tgt_in[i, : len(t) + 1] = torch.tensor([BOS_ID, *t])
        tgt_out[i, : len(t) + 1] = torch.tensor([*t, EOS_ID])
    return src, torch.tensor([len(s) for s in sources]), tgt_in, tgt_out


def translate_greedy(model: Seq2Seq, vocab: SubwordVocab, texts: list[str], batch_size: int = 64,
                     max_length_ratio: float = 2.0, max_length: int = 256) -> list[str]:
    """Greedy translations of ``texts``, decoded in length-sorted batches (evaluation during training),
    protected spans masked as the backend masks them where the vocabulary has the mask tokens."""
    masked = [mask(t) for t in texts] if has_masks(vocab.pieces(range(vocab.size))) else None
    if masked is not None:
        texts = [m.text for m in masked]
    pieces = [vocab.encode(t) or [EOS_ID] for t in texts]
    order = sorted(range(len(texts)), key=lambda i: len(pieces[i]))
    out = [""] * len(texts)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            chunk = order[start: start + batch_size]
            limits = [min(max_length, math.ceil(max_length_ratio * len(pieces[i]))) for i in chunk]
            for i, hyp in zip(chunk, greedy_search(model, [pieces[i] for i in chunk], limits), strict=True):
                out[i] = vocab.decode(hyp.tokens)
    return [unmask(text, m.spans) for text, m in zip(out, masked, strict=True)] if masked is not None else out


def dev_scores(model: Seq2Seq, vocab: SubwordVocab, sources: list[str], references: list[str]) -> dict[str, float]:
    """sacreBLEU and chrF of greedy translations of the dev pairs."""
    import sacrebleu

    was_training = model.training
    model.eval()
    hypotheses = translate_greedy(model, vocab, sources)
    model.train(was_training)
    return {"bleu": round(sacrebleu.corpus_bleu(hypotheses, [references]).score, 2),
            "chrf": round(sacrebleu.corpus_chrf(hypotheses, [references]).score, 2)}


def plot_history(history: dict, paths: list[Path]) -> None:
    """Train loss (per log interval) and dev BLEU against the step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, loss_ax = plt.subplots(figsize=(7, 4), dpi=100)
    if history["train"]:
        loss_ax.plot([r["step"] for r in history["train"]], [r["loss"] for r in history["train"]], lw=0.8,
                     label="train loss (label-smoothed)")
    loss_ax.set_xlabel("step")
    loss_ax.set_ylabel("loss (nats/piece)")
    loss_ax.grid(alpha=0.3)
    bleu_ax = loss_ax.twinx()
    if history["dev"]:
        bleu_ax.plot([r["step"] for r in history["dev"]], [r["bleu"] for r in history["dev"]], "o-", color="C1",
                     label="dev BLEU (greedy)")
    bleu_ax.set_ylabel("dev BLEU")
    lines = loss_ax.get_legend_handles_labels()[0] + bleu_ax.get_legend_handles_labels()[0]
    loss_ax.legend(lines, [line.get_label() for line in lines], loc="center right")
    fig.tight_layout()
    for path in paths:
        if path.parent.is_dir():  # OUT/best exists once a validation has improved
            fig.savefig(path)
    plt.close(fig)


@dataclass
class TrainResult:
    """The trained model (this rank's replica) and the run's progress (``best_bleu`` is rank 0's)."""

    model: Seq2Seq
    step: int
    best_bleu: float
    elapsed_s: float
    history: dict


def train(data_dir: Path, out: Path, model_config: dict, config: TrainConfig, *, quiet: bool = False,
          vocab_path: Path | None = None, snapshot: Path | None = None) -> TrainResult:
    """Train (or resume) into ``out``, as one rank of ``WORLD_SIZE`` when launched by torchrun.

    The subword model is ``vocab_path`` or ``data_dir/sentencepiece.model`` (from ``data en-de``).
    ``snapshot``: a directory that every checkpoint also writes a small copy of ``last/`` to
    (float16 weights and the trainer state, no optimizer moments: small enough to commit), and
    that a run with no ``out/last`` resumes from, with fresh Adam moments (a warm resume, for a
    run continued on another machine from what survived in the repository).
    """
    place = placement(config.device)
    start_process_group(place)
    world, rank, distributed, device = place.world, place.rank, place.distributed, place.device
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)

    resume_dir = resume_source(out, snapshot)
    if resume_dir is not None:
        model, vocab, _ = checkpoint.load_model(resume_dir)
        model.train()
    else:
        vocab_path = vocab_path or data_dir / MODEL_FILE
        if not vocab_path.exists():
            raise DataError(f"{vocab_path} not found; run `rnnserve data en-de --out {data_dir}` first")
        vocab = SubwordVocab.load(vocab_path)
        model = Seq2Seq(Seq2SeqConfig(vocab_size=vocab.size, **model_config)).train()
    model.to(device)  # before the optimizer, whose resumed state follows its parameters' device
    en, de = read_parallel(data_dir, "train")
    if config.phrases:
        phrases_en, phrases_de = read_parallel(data_dir, PHRASES)
        en, de = en + phrases_en, de + phrases_de
    if has_masks(vocab.pieces(range(vocab.size))):  # protected spans: learn to copy their mask tokens
        en, de = mask_pairs(en, de)
    sources, targets = vocab.encode_batch(en), vocab.encode_batch(de)
    kept = [i for i in range(len(en)) if 0 < len(sources[i]) <= config.max_pieces
            and 0 < len(targets[i]) <= config.max_pieces]
    sources, targets = [sources[i] for i in kept], [targets[i] for i in kept]
    dev_en, dev_de = read_parallel(data_dir, "dev")
    if config.dev_pairs and config.dev_pairs < len(dev_en):  # evenly spaced: every domain of the dev file
        keep = [i * len(dev_en) // config.dev_pairs for i in range(config.dev_pairs)]
        dev_en, dev_de = [dev_en[i] for i in keep], [dev_de[i] for i in keep]

    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    history: dict = {"train": [], "dev": []}
    step, epoch, done, best_bleu, elapsed = 0, 0, 0, -1.0, 0.0
    if resume_dir is not None:
        state = resume_state(resume_dir, optimizer)
        if rank == 0 and resume_dir == snapshot:
            print(f"[gru-seq2seq] warm resume from {resume_dir} (no optimizer moments saved there)", flush=True)
        step, epoch, done = state["step"], state["epoch"], state["position"]
        best_bleu, elapsed, history = state["best_bleu"], state["elapsed_s"], state["history"]
    agree_on_resume(place, step)  # before any rank can stop alone: the others would wait for it
    if done % world:
        raise TrainingSetupError(f"{resume_dir} stopped {done} batches into epoch {epoch}, which {world} ranks "
                                 "cannot share evenly: resume with a number of processes that divides it")
    position = done // world  # this rank's place in its share of the epoch's batches
    if rank != 0:
        torch.manual_seed(config.seed + 1000 * rank + step)
    net: nn.Module = nn.parallel.DistributedDataParallel(model, device_ids=place.ddp_device_ids) \
        if distributed else model
    manifest = data_dir / "manifest.json"
    training_info = {"train": asdict(config), "data": json.loads(manifest.read_text()) if manifest.exists() else {},
                     "command": command_line(MODULE), "hardware": hardware(), "train_pairs_used": len(kept)}

    def epoch_batches(e: int) -> list[list[int]]:
        batches = make_batches([len(s) for s in sources], [len(t) for t in targets], config.batch_tokens,
                               config.seed, e)
        per_step = world * config.accumulate  # every step has all its batches, on every rank
        usable = len(batches) // per_step * per_step
        if not usable:
            raise TrainingSetupError(f"{len(batches)} batches of {config.batch_tokens} tokens are too few for "
                                     f"{world} rank(s) x {config.accumulate} batches a step")
        return batches[rank:usable:world]

    def save_last() -> None:
        state = {"step": step, "epoch": epoch, "position": position * world, "best_bleu": best_bleu,
                 "elapsed_s": elapsed, "history": history, "train": asdict(config)}
        tmp = checkpoint.fresh_tmp(out / "last")
        checkpoint.write_model_files(tmp, model, vocab, {**training_info, "step": step})
        save_training_state(tmp, optimizer, state)
        checkpoint.replace_dir(tmp, out / "last")
        (out / "history.json").write_text(json.dumps(history) + "\n")
        if snapshot is not None:
            save_snapshot(snapshot, lambda tmp: checkpoint.write_model_files(
                tmp, model, vocab, {**training_info, "step": step}, dtype=torch.float16), state)

    batches = epoch_batches(epoch)
    accumulating = f" x {config.accumulate} batches a step" if config.accumulate > 1 else ""
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        print(f"[gru-seq2seq] {'resuming at step ' + str(step) if resume_dir else 'starting'}: {model.config} "
              f"({model.parameter_count():,} parameters), {len(kept):,} of {len(en):,} train pairs (the others are "
              f"empty or over {config.max_pieces} pieces), {world} rank(s) x "
              f"{config.batch_tokens} tokens{accumulating}, {len(batches) // config.accumulate} steps/epoch, "
              f"{config.max_steps} steps", flush=True)

    from tqdm import tqdm

    bar = tqdm(total=config.max_steps, initial=step, disable=quiet or rank != 0, unit="step",
               mininterval=1.0 if sys.stderr.isatty() else 30.0, dynamic_ncols=True)
    loss_fn = nn.CrossEntropyLoss(ignore_index=PAD_ID, label_smoothing=config.label_smoothing, reduction="sum")
    running, window_start, pieces_since, started = None, time.perf_counter(), 0, time.perf_counter()
    pairs_since = 0
    bf16 = autocast_enabled(config.autocast, device)
    if rank == 0 and bf16:
        print("[gru-seq2seq] forward pass under bfloat16 autocast", flush=True)
    stop = False
    while step < config.max_steps and not stop:
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, config)
        net.train()
        optimizer.zero_grad(set_to_none=True)
        step_loss = 0.0
        for micro in range(config.accumulate):
            if position >= len(batches):
                epoch, position = epoch + 1, 0
                batches = epoch_batches(epoch)
            indices = batches[position]
            position += 1
            src, lengths, tgt_in, tgt_out = (t.to(device) for t in collate([sources[i] for i in indices],
                                                                            [targets[i] for i in indices]))
            n_pieces = int((tgt_out != PAD_ID).sum())
            # DDP exchanges gradients in the backward pass: only in the step's last one
            exchange = nullcontext() if not distributed or micro == config.accumulate - 1 else net.no_sync()
            with exchange:
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    logits = net(src, lengths, tgt_in)
                loss = loss_fn(logits.float().reshape(-1, logits.shape[-1]), tgt_out.reshape(-1)) / n_pieces
                (loss / config.accumulate).backward()
            step_loss += loss.item() / config.accumulate
            pieces_since += n_pieces * world
            pairs_since += len(indices) * world
        grad_norm = nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        step += 1
        running = step_loss if running is None else 0.95 * running + 0.05 * step_loss
        if step % config.log_every == 0 or step == config.max_steps:
            now = time.perf_counter()
            speed = pieces_since / (now - window_start)
            pairs_speed = pairs_since / (now - window_start)
            elapsed += now - window_start
            window_start, pieces_since, pairs_since = now, 0, 0
            history["train"].append({"step": step, "loss": round(running, 5), "lr": lr_at(step - 1, config),
                                     "grad_norm": round(float(grad_norm), 4), "tgt_pieces_per_s": round(speed),
                                     "pairs_per_s": round(pairs_speed, 1), "epoch": epoch})
            bar.set_postfix(loss=f"{running:.3f}", tok_s=f"{speed:,.0f}", ep=epoch, lr=f"{lr_at(step - 1, config):.1e}",
                            refresh=False)
        bar.update(1)
        stop = time_is_up(started, config.time_limit_min, place)
        evaluating = step % config.eval_every == 0 or step == config.max_steps or stop
        if evaluating and rank == 0:
            scores = dev_scores(model, vocab, dev_en, dev_de)
            history["dev"].append({"step": step, "epoch": epoch, **scores})
            improved = scores["bleu"] > best_bleu
            if improved:
                best_bleu = scores["bleu"]
                checkpoint.save_model(out / "best", model, vocab,
                                      {**training_info, "step": step, "epoch": epoch, "dev": scores,
                                       "elapsed_s": round(elapsed, 1)})
            plot_history(history, [out / "loss.png", out / "best" / "loss.png"])
            bar.write(f"[gru-seq2seq] step {step} epoch {epoch}: train loss {running:.4f}, dev BLEU "
                      f"{scores['bleu']:.2f} chrF {scores['chrf']:.2f}{' (best)' if improved else ''}, "
                      f"{elapsed / 60:.1f} min", file=sys.stdout)
            sys.stdout.flush()
            window_start, pieces_since, pairs_since = time.perf_counter(), 0, 0  # evaluation is not throughput
        if rank == 0 and (step % config.checkpoint_every == 0 or evaluating):
            save_last()
        if distributed and (evaluating or step % config.checkpoint_every == 0):
            dist.barrier()
    bar.close()
    if distributed:
        dist.barrier()
    return TrainResult(model, step, best_bleu, elapsed, history)


MODEL_FLAGS = {f.name: f for f in fields(Seq2SeqConfig) if f.name != "vocab_size"}
TRAIN_FLAGS = {f.name: f for f in fields(TrainConfig)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, required=True, help="directory from `rnnserve data en-de`")
    parser.add_argument("--out", type=Path, required=True, help="run directory (best/, last/, loss.png)")
    parser.add_argument("--vocab", type=Path, help="SentencePiece model (default DATA/sentencepiece.model)")
    parser.add_argument("--config", type=Path, help='JSON file {"model": {...}, "train": {...}}; flags override it')
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--snapshot", type=Path, help="also keep a small copy of last/ here (float16 weights, no "
                        "optimizer moments), and resume from it when OUT has no last/")
    add_config_flags(parser, {"model": MODEL_FLAGS, "train": TRAIN_FLAGS}, {"device": DEVICES, "autocast": AUTOCAST})


def run(args: argparse.Namespace) -> int:
    sections = config_sections(args, {"model": MODEL_FLAGS, "train": TRAIN_FLAGS}, args.config)
    try:
        train(args.data, args.out, sections["model"], TrainConfig(**sections["train"]), quiet=args.quiet,
              vocab_path=args.vocab, snapshot=args.snapshot)
    except (TrainingSetupError, DataError, checkpoint.CheckpointError) as exc:
        raise SystemExit(f"error: {exc}") from None
    if dist.is_initialized():
        dist.destroy_process_group()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m rnnserve_plugins.gru_translator.train",
                                     description="Train a GRU sequence-to-sequence translator.")
    add_arguments(parser)
    return run(parser.parse_args())


if __name__ == "__main__":
    raise SystemExit(main())
