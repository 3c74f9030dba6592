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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rnnserve.training import Evaluation, LoopConfig, StepReport, TrainerCommand, TrainingRun, TrainingSetupError, curve

from . import checkpoint
from .cells import CELL_KINDS
from .data import DataError, encode_documents, read_split
from .evaluate import evaluate_loss
from .model import CharRNN, CharRNNConfig, State
from .vocab import CharVocab

#: This module's import name (``__name__`` is "__main__" under ``python -m``), for the recorded command line.
MODULE = "rnnserve_plugins.char_lstm.train"


@dataclass
class TrainConfig(LoopConfig):
    """Training hyper-parameters (``config.json`` ``"training"."train"``): the loop's (schedule,
    clipping, cadence, seed, device, time limit: :class:`rnnserve.training.LoopConfig`) and these."""

    seq_len: int = 128
    #: Parallel streams per rank.
    batch_size: int = 64
    weight_decay: float = 0.01
    #: Validation characters per evaluation (0: all of val.txt).
    eval_chars: int = 0
    #: Training characters rarer than this become ``<unk>``.
    min_count: int = 5


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



@dataclass
class TrainResult:
    """The trained model (this rank's replica) and the run's progress (``best_val`` is rank 0's)."""

    model: CharRNN
    step: int
    best_val: float
    elapsed_s: float
    history: dict


class CharRNNRun(TrainingRun):
    """A character model trained by truncated BPTT over this rank's streams (the module docstring)."""

    NAME, MODULE = "char-lstm", MODULE
    config: TrainConfig

    def __init__(self, data_dir: Path, out: Path, model_config: dict, config: TrainConfig, **options: Any) -> None:
        super().__init__(data_dir, out, config, **options)
        self.model_config = model_config
        self.loss_fn = nn.CrossEntropyLoss()

    def set_up(self, resume_dir: Path | None) -> None:
        """The vocabulary and model (the checkpoint's when resuming), this rank's streams, the validation text."""
        config, place = self.config, self.place
        self.train_text = read_split(self.data_dir, "train")
        if resume_dir is not None:
            model, self.vocab, _ = checkpoint.load_model(resume_dir)
            model.train()
        else:
            self.vocab = CharVocab.build(self.train_text, config.min_count)
            model = CharRNN(CharRNNConfig(vocab_size=self.vocab.size, **self.model_config))
        self.model = model.to(place.device)  # before the optimizer, whose resumed state follows its parameters' device
        train_tokens = encode_documents(self.vocab, self.train_text)  # <bos> before every document
        self.val_tokens = encode_documents(self.vocab, read_split(self.data_dir, "val"))
        if config.eval_chars:
            self.val_tokens = self.val_tokens[: config.eval_chars]
        self.train_chars = train_tokens.numel()
        streams = make_streams(train_tokens, place.world * config.batch_size, self.vocab.bos_id)
        self.streams = streams[place.rank * config.batch_size: (place.rank + 1) * config.batch_size].to(place.device)
        self.steps_per_epoch = (self.streams.shape[1] - 1) // config.seq_len
        if self.steps_per_epoch == 0:
            raise TrainingSetupError(f"{self.train_chars} training characters cut into "
                                     f"{place.world * config.batch_size} streams are shorter than one window of "
                                     f"{config.seq_len}: lower --batch-size or --seq-len")
        self.hidden = model.initial_state(config.batch_size)  # not saved: a resumed run restarts it at zeros

    def make_optimizer(self) -> torch.optim.Optimizer:
        return configure_optimizer(self.model, self.config)

    def extra_info(self) -> dict:
        return {"rare_chars_as_unk": sorted(set(self.train_text) - set(self.vocab.chars))}

    def describe(self) -> str:
        config = self.config
        return (f"{self.train_chars:,} train chars, {self.place.world} rank(s) x {config.batch_size} streams x "
                f"{config.seq_len} chars, {self.steps_per_epoch} steps/epoch, {config.max_steps} steps")

    def train_step(self) -> StepReport:
        """Truncated BPTT: the next ``seq_len`` characters of every stream, read from the state the
        previous window left (reset at each epoch start), which is then detached, so gradients
        flow back through this window only."""
        position = self.step % self.steps_per_epoch
        if position == 0:
            self.hidden = self.model.initial_state(self.config.batch_size)
        t = position * self.config.seq_len
        window = self.streams[:, t: t + self.config.seq_len + 1]
        x, y = window[:, :-1], window[:, 1:]
        y = y.masked_fill(y == self.vocab.bos_id, -100)  # <bos> is read, never predicted
        logits, hidden = self.net(x, self.hidden, x == self.vocab.bos_id)  # each document from the initial state
        self.hidden = detach(hidden)
        loss = self.loss_fn(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        loss.backward()
        return StepReport(loss.item(), {"chars": x.numel() * self.place.world})

    def log_fields(self, rates: dict[str, float]) -> tuple[dict, dict]:
        return {"chars_per_s": round(rates["chars"])}, {"chars_s": f"{rates['chars']:,.0f}"}

    def evaluate(self) -> Evaluation:
        """Validation loss in nats per character, each document from the initial state."""
        val = evaluate_loss(self.model, self.val_tokens, self.vocab.bos_id)
        epoch = self.step / self.steps_per_epoch
        return Evaluation(val, {"step": self.step, "loss": round(val, 5), "epoch": round(epoch, 3)},
                          {"val_nats_per_char": val},
                          f"epoch {epoch:.2f}: train {self.running:.4f} val {val:.4f} nats/char")

    def draw_history(self, ax: Any) -> None:
        """Train (per log interval) and validation loss in nats/char against the step."""
        if self.history["train"]:
            ax.plot(*curve(self.history["train"], "loss"), lw=0.8, label="train")
        if self.history["val"]:
            ax.plot(*curve(self.history["val"], "loss"), "o-", label="validation")
        ax.set_xlabel("step")
        ax.set_ylabel("loss (nats/char)")
        ax.grid(alpha=0.3)
        ax.legend()

    def write_model(self, directory: Path, training: dict, dtype: torch.dtype) -> None:
        checkpoint.write_model_files(directory, self.model, self.vocab, training, dtype=dtype)


def train(data_dir: Path, out: Path, model_config: dict, config: TrainConfig, *, quiet: bool = False,
          write_card: bool = True, snapshot: Path | None = None) -> TrainResult:
    """Train (or resume) into ``out``, as one rank of ``WORLD_SIZE`` when launched by torchrun.

    ``snapshot``: a directory every checkpoint also writes a small copy of ``last/`` to (float16
    weights and the progress, no optimizer state), to commit; a run whose ``out`` is gone (another
    machine) resumes from it warm (``rnnserve.training.resume_state``).
    """
    run = CharRNNRun(data_dir, out, model_config, config, quiet=quiet, snapshot=snapshot).run()
    if run.rank0 and write_card and run.step == config.max_steps:
        from .card import write_card_for

        write_card_for(out / "best", data_dir, wall_time_s=run.elapsed)
    return TrainResult(run.model, run.step, run.best, run.elapsed, run.history)


def start(args: argparse.Namespace, model_config: dict, config: TrainConfig) -> None:
    train(args.data, args.out, model_config, config, quiet=args.quiet, write_card=not args.no_card,
          snapshot=args.snapshot)


COMMAND = TrainerCommand(
    MODULE, "Train a character-level recurrent language model.", CharRNNConfig, TrainConfig, start,
    data_help="directory from `rnnserve data austen` or `rnnserve data english`",
    choices={"cell": CELL_KINDS}, errors=(DataError, checkpoint.CheckpointError),
    extra_flags={"--no-card": {"action": "store_true", "help": "skip the final evaluation and model card"}})

if __name__ == "__main__":
    raise SystemExit(COMMAND.main())
