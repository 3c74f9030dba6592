"""Training: truncated BPTT over parallel character streams, alone or under ``torchrun`` (DDP, gloo).

Batching: the training text (``<bos>`` before every document, see ``data.encode_documents``)
is cut into ``world_size * batch_size`` equal contiguous streams; rank r owns streams
``[r*B, (r+1)*B)`` (its data shard). The first stream starts with ``<bos>`` from a zero state,
exactly like a served request; the others start with the token before their cut (a fake
``<bos>`` there would teach the model that text begins mid-sentence). ``<bos>`` is never a
target (its loss is ignored), and a stream's state goes back to the initial (zero) state
before each ``<bos>`` it reads (``model.read_documents``), so that a document's first
characters are learnt from the state a served request starts in. A step
reads the next ``seq_len`` characters of all B streams ([B, T] inputs, [B, T] targets
shifted by one); the hidden state is carried to the next window and detached (truncated
BPTT), and reset to zeros at every epoch start.

Optimisation: AdamW (weight decay on matrices only), linear warm-up then cosine decay to
``min_lr`` at ``max_steps``, gradient-norm clipping, dropout. Every ``checkpoint_every``
steps rank 0 writes ``OUT/last`` (model + optimizer + RNG + progress) to resume from after a
kill; every ``eval_every`` steps it measures the validation loss, keeps the best model in
``OUT/best`` and redraws ``loss.png`` (in ``OUT`` and ``OUT/best``). On resume the carried
hidden state restarts at zeros (it is not saved); under DDP, ranks other than 0 reseed
their RNG from (seed, rank, step). ``time_limit_min`` stops a run early (resumable), and
``--snapshot`` keeps a small committed copy of ``last/`` to resume from on another machine.
When the run reaches ``max_steps`` the best model is evaluated on validation and test and its
model card written.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

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
from .cells import CELL_KINDS
from .data import DataError, encode_documents, read_split
from .evaluate import evaluate_loss
from .model import CharRNN, CharRNNConfig, State
from .vocab import CharVocab

#: This module's import name (``__name__`` is "__main__" under ``python -m``), for the recorded command line.
MODULE = "rnnserve_plugins.char_lstm.train"


@dataclass
class TrainConfig:
    """Training hyper-parameters (``config.json`` ``"training"."train"``)."""

    seq_len: int = 128
    #: Parallel streams per rank.
    batch_size: int = 64
    lr: float = 2e-3
    min_lr: float = 1e-4
    warmup_steps: int = 100
    max_steps: int = 2000
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    eval_every: int = 200
    checkpoint_every: int = 50
    #: Validation characters per evaluation (0: all of val.txt).
    eval_chars: int = 0
    log_every: int = 10
    seed: int = 1234
    #: Training characters rarer than this become ``<unk>``.
    min_count: int = 5
    #: torch intra-op threads per process (0: torch's default).
    threads: int = 0
    #: Stop (resumably, after a checkpoint) once this process has trained this many minutes (0: no limit).
    time_limit_min: float = 0.0
    #: "auto" (a GPU when there is one: cuda:LOCAL_RANK, nccl between processes), "cpu" or "cuda".
    device: str = "auto"


def lr_at(step: int, config: TrainConfig) -> float:
    """Learning rate of optimizer step ``step`` (0-based): linear warm-up, then cosine to ``min_lr``."""
    return warmup_cosine_lr(step, lr=config.lr, min_lr=config.min_lr, warmup_steps=config.warmup_steps,
                            max_steps=config.max_steps)


def make_streams(tokens: torch.Tensor, streams: int, bos_id: int) -> torch.Tensor:
    """[streams, n + 1]: ``tokens`` [N] (``<bos>`` first, prepended if missing) cut into ``streams``
    contiguous pieces of n targets; each piece starts with the token before it (the first with ``<bos>``), so
    ``<bos>`` is only ever followed by the start of a document, as when serving."""
    if tokens.numel() == 0 or int(tokens[0]) != bos_id:
        tokens = torch.cat([torch.tensor([bos_id], dtype=tokens.dtype), tokens])
    n = (tokens.numel() - 1) // streams
    if n < 2:
        raise TrainingSetupError(f"{tokens.numel() - 1} training characters are too few for {streams} streams")
    return torch.stack([tokens[i * n: i * n + n + 1] for i in range(streams)])


def configure_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on the recurrent and output matrices, none on biases and embeddings."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        (decay if param.dim() >= 2 and "embedding" not in name else no_decay).append(param)
    groups = [{"params": decay, "weight_decay": config.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.99))


def detach(state: State) -> State:
    return tuple(s.detach() for s in state)


def plot_history(history: dict, paths: list[Path]) -> None:
    """Draw train (per log interval) and validation loss in nats/char against the step, into each of
    ``paths`` whose directory exists."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    if history["train"]:
        ax.plot([r["step"] for r in history["train"]], [r["loss"] for r in history["train"]],
                lw=0.8, label="train")
    if history["val"]:
        ax.plot([r["step"] for r in history["val"]], [r["loss"] for r in history["val"]],
                "o-", label="validation")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats/char)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    for path in paths:
        if path.parent.is_dir():  # OUT/best exists once a validation has improved
            fig.savefig(path)
    plt.close(fig)


@dataclass
class TrainResult:
    """The trained model (this rank's replica) and the run's progress (``best_val`` is rank 0's)."""

    model: CharRNN
    step: int
    best_val: float
    elapsed_s: float
    history: dict


def train(data_dir: Path, out: Path, model_config: dict, config: TrainConfig, *, quiet: bool = False,
          write_card: bool = True, snapshot: Path | None = None) -> TrainResult:
    """Train (or resume) into ``out``, as one rank of ``WORLD_SIZE`` when launched by torchrun.

    ``snapshot``: a directory every checkpoint also writes a small copy of ``last/`` to (float16
    weights and the progress, no optimizer state), to commit; a run whose ``out`` is gone (another
    machine) resumes from it warm (``rnnserve.training.resume_state``).
    """
    place = placement(config.device)
    start_process_group(place)
    world, rank, distributed, device = place.world, place.rank, place.distributed, place.device
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)

    train_text = read_split(data_dir, "train")
    val_text = read_split(data_dir, "val")
    resume_dir = resume_source(out, snapshot)
    if resume_dir is not None:
        model, vocab, _ = checkpoint.load_model(resume_dir)
        model.train()
    else:
        vocab = CharVocab.build(train_text, config.min_count)
        model = CharRNN(CharRNNConfig(vocab_size=vocab.size, **model_config))
    model.to(device)  # before the optimizer, whose resumed state follows its parameters' device
    train_tokens = encode_documents(vocab, train_text)  # <bos> before every document
    val_tokens = encode_documents(vocab, val_text)
    if config.eval_chars:
        val_tokens = val_tokens[: config.eval_chars]

    streams = make_streams(train_tokens, world * config.batch_size, vocab.bos_id)
    streams = streams[rank * config.batch_size: (rank + 1) * config.batch_size].to(device)
    steps_per_epoch = (streams.shape[1] - 1) // config.seq_len
    if steps_per_epoch == 0:
        raise TrainingSetupError(f"{train_tokens.numel()} training characters cut into {world * config.batch_size} "
                                 f"streams are shorter than one window of {config.seq_len}: lower --batch-size or "
                                 "--seq-len")
    optimizer = configure_optimizer(model, config)
    history: dict = {"train": [], "val": []}
    step, best_val, elapsed = 0, float("inf"), 0.0
    if resume_dir is not None:
        state = resume_state(resume_dir, optimizer)
        step, best_val, elapsed, history = state["step"], state["best_val"], state["elapsed_s"], state["history"]
        if rank != 0:
            torch.manual_seed(config.seed + 1000 * rank + step)
    elif rank != 0:
        torch.manual_seed(config.seed + 1000 * rank)
    agree_on_resume(place, step)
    net: nn.Module = nn.parallel.DistributedDataParallel(model, device_ids=place.ddp_device_ids) \
        if distributed else model
    data_info = {}
    manifest = data_dir / "manifest.json"
    if manifest.exists():
        data_info = json.loads(manifest.read_text())
    training_info = {"train": asdict(config), "data": data_info, "command": command_line(MODULE),
                     "hardware": hardware(), "rare_chars_as_unk": sorted(set(train_text) - set(vocab.chars))}

    def save_last() -> None:
        tmp = checkpoint.fresh_tmp(out / "last")
        checkpoint.write_model_files(tmp, model, vocab, {**training_info, "step": step})
        progress = {"step": step, "best_val": best_val, "elapsed_s": elapsed, "history": history,
                    "train": asdict(config)}
        save_training_state(tmp, optimizer, progress)
        checkpoint.replace_dir(tmp, out / "last")
        (out / "history.json").write_text(json.dumps(history) + "\n")
        if snapshot is not None:
            save_snapshot(snapshot, lambda tmp: checkpoint.write_model_files(
                tmp, model, vocab, {**training_info, "step": step}, dtype=torch.float16), progress)

    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        print(f"[char-lstm] {'resuming at step ' + str(step) if resume_dir else 'starting'}: "
              f"{model.config} ({sum(p.numel() for p in model.parameters()):,} parameters), "
              f"{train_tokens.numel():,} train chars, {world} rank(s) x {config.batch_size} streams x "
              f"{config.seq_len} chars, {steps_per_epoch} steps/epoch, {config.max_steps} steps", flush=True)

    from tqdm import tqdm

    bar = tqdm(total=config.max_steps, initial=step, disable=quiet or rank != 0, unit="step",
               mininterval=1.0 if sys.stderr.isatty() else 30.0, dynamic_ncols=True)
    hidden = model.initial_state(config.batch_size)
    running, window_start, chars_since = None, time.perf_counter(), 0
    run_start, elapsed_before = window_start, elapsed  # elapsed: wall time over all (resumed) runs
    loss_fn = nn.CrossEntropyLoss()
    stop = False
    while step < config.max_steps and not stop:
        position = step % steps_per_epoch
        if position == 0:
            hidden = model.initial_state(config.batch_size)
        t = position * config.seq_len
        x = streams[:, t: t + config.seq_len]
        y = streams[:, t + 1: t + 1 + config.seq_len].masked_fill(
            streams[:, t + 1: t + 1 + config.seq_len] == vocab.bos_id, -100)  # <bos> is read, never predicted
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, config)
        net.train()
        logits, hidden = net(x, hidden, x == vocab.bos_id)  # each document from the initial state
        hidden = detach(hidden)
        loss = loss_fn(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        step += 1
        chars_since += x.numel() * world
        running = loss.item() if running is None else 0.95 * running + 0.05 * loss.item()
        if step % config.log_every == 0 or step == config.max_steps:
            now = time.perf_counter()
            speed = chars_since / (now - window_start)
            window_start, chars_since = now, 0
            history["train"].append({"step": step, "loss": round(running, 5), "lr": lr_at(step - 1, config),
                                     "grad_norm": round(float(grad_norm), 4), "chars_per_s": round(speed)})
            bar.set_postfix(loss=f"{running:.3f}", chars_s=f"{speed:,.0f}", lr=f"{lr_at(step - 1, config):.2e}",
                            refresh=False)
        bar.update(1)
        stop = time_is_up(run_start, config.time_limit_min, place)
        evaluating = step % config.eval_every == 0 or step == config.max_steps or stop
        elapsed = elapsed_before + time.perf_counter() - run_start
        if evaluating and rank == 0:
            val = evaluate_loss(model, val_tokens, vocab.bos_id)
            history["val"].append({"step": step, "loss": round(val, 5), "epoch": round(step / steps_per_epoch, 3)})
            improved = val < best_val
            if improved:
                best_val = val
                checkpoint.save_model(out / "best", model, vocab,
                                      {**training_info, "step": step, "val_nats_per_char": val})
            plot_history(history, [out / "loss.png", out / "best" / "loss.png"])
            bar.write(f"[char-lstm] step {step} epoch {step / steps_per_epoch:.2f}: train {running:.4f} "
                      f"val {val:.4f} nats/char{' (best)' if improved else ''}, {elapsed / 60:.1f} min")
            window_start = time.perf_counter()  # validation time is not training throughput
        if rank == 0 and (step % config.checkpoint_every == 0 or evaluating):
            save_last()
        if distributed and (evaluating or step % config.checkpoint_every == 0):
            dist.barrier()
    bar.close()
    if distributed:
        dist.barrier()  # before the card: the other ranks need not wait for its evaluations
    if rank == 0 and write_card and step == config.max_steps:
        from .card import write_card_for

        write_card_for(out / "best", data_dir, wall_time_s=elapsed)
    return TrainResult(model, step, best_val, elapsed, history)


MODEL_FLAGS = {f.name: f for f in fields(CharRNNConfig) if f.name != "vocab_size"}
TRAIN_FLAGS = {f.name: f for f in fields(TrainConfig)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, required=True,
                        help="directory from `rnnserve data austen` or `rnnserve data english`")
    parser.add_argument("--out", type=Path, required=True, help="run directory (best/, last/, loss.png)")
    parser.add_argument("--config", type=Path, help='JSON file {"model": {...}, "train": {...}}; flags override it')
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--no-card", action="store_true", help="skip the final evaluation and model card")
    parser.add_argument("--snapshot", type=Path, help="also keep a small copy of last/ here (float16 weights, no "
                        "optimizer state) to commit; a run without OUT/last resumes from it")
    add_config_flags(parser, {"model": MODEL_FLAGS, "train": TRAIN_FLAGS}, {"cell": CELL_KINDS, "device": DEVICES})


def run(args: argparse.Namespace) -> int:
    sections = config_sections(args, {"model": MODEL_FLAGS, "train": TRAIN_FLAGS}, args.config)
    try:
        train(args.data, args.out, sections["model"], TrainConfig(**sections["train"]), quiet=args.quiet,
              write_card=not args.no_card, snapshot=args.snapshot)
    except (TrainingSetupError, DataError, checkpoint.CheckpointError) as exc:
        raise SystemExit(f"error: {exc}") from None
    if dist.is_initialized():
        dist.destroy_process_group()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m rnnserve_plugins.char_lstm.train",
                                     description="Train a character-level recurrent language model.")
    add_arguments(parser)
    return run(parser.parse_args())


if __name__ == "__main__":
    raise SystemExit(main())
