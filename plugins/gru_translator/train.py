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
import math
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rnnserve.plugin_api import cpu_flags
from rnnserve.training import Evaluation, LoopConfig, StepReport, TrainerCommand, TrainingRun, TrainingSetupError, curve

from . import checkpoint
from .beam import greedy_search
from .data import PHRASES, DataError, read_parallel
from .model import Seq2Seq, Seq2SeqConfig
from .protect import has_masks, mask, mask_pairs, unmask
from .subwords import BOS_ID, EOS_ID, MODEL_FILE, PAD_ID, SubwordVocab

#: This module's import name (``__name__`` is "__main__" under ``python -m``), for the recorded command line.
MODULE = "rnnserve_plugins.gru_translator.train"


@dataclass
class TrainConfig(LoopConfig):
    """Training hyper-parameters (``config.json`` ``"training"."train"``): the loop's (schedule,
    clipping, cadence, seed, device, time limit: :class:`rnnserve.training.LoopConfig`, some with
    other defaults here) and these."""

    warmup_steps: int = 200
    max_steps: int = 6000
    eval_every: int = 500
    checkpoint_every: int = 100
    #: Padded (pairs x longest side) tokens per batch and rank.
    batch_tokens: int = 4000
    #: Batches per optimizer step and rank (gradient accumulation).
    accumulate: int = 1
    label_smoothing: float = 0.1
    #: Pairs with more pieces on either side are left out of training.
    max_pieces: int = 100
    #: Dev pairs decoded per evaluation (0: all), evenly spaced over the dev file.
    dev_pairs: int = 0
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


@dataclass
class TrainResult:
    """The trained model (this rank's replica) and the run's progress (``best_bleu`` is rank 0's)."""

    model: Seq2Seq
    step: int
    best_bleu: float
    elapsed_s: float
    history: dict


class Seq2SeqRun(TrainingRun):
    """A translator trained by teacher forcing over token-budget batches (the module docstring);
    its data position is the epoch and the batches of it that all ranks together have used."""

    NAME, MODULE = "gru-seq2seq", MODULE
    EVAL_KEY, BEST_KEY, INITIAL_BEST, HIGHER_IS_BETTER = "dev", "best_bleu", -1.0, True
    ELAPSED_INCLUDES_EVALUATION = False
    config: TrainConfig

    def __init__(self, data_dir: Path, out: Path, model_config: dict, config: TrainConfig,
                 vocab_path: Path | None = None, **options: Any) -> None:
        super().__init__(data_dir, out, config, **options)
        self.model_config, self.vocab_path = model_config, vocab_path
        self.epoch, self.position = 0, 0
        self.loss_fn = nn.CrossEntropyLoss(ignore_index=PAD_ID, label_smoothing=config.label_smoothing,
                                           reduction="sum")

    def set_up(self, resume_dir: Path | None) -> None:
        """The vocabulary and model (the checkpoint's when resuming), the training pairs kept, the dev pairs."""
        if resume_dir is not None:
            model, self.vocab, _ = checkpoint.load_model(resume_dir)
            model.train()
        else:
            vocab_path = self.vocab_path or self.data_dir / MODEL_FILE
            if not vocab_path.exists():
                raise DataError(f"{vocab_path} not found; run `rnnserve data en-de --out {self.data_dir}` first")
            self.vocab = SubwordVocab.load(vocab_path)
            model = Seq2Seq(Seq2SeqConfig(vocab_size=self.vocab.size, **self.model_config)).train()
        self.model = model.to(self.place.device)  # before the optimizer: its resumed state follows the parameters
        self.read_pairs()
        self.bf16 = autocast_enabled(self.config.autocast, self.place.device)

    def read_pairs(self) -> None:
        """Training pairs as pieces (those with an empty side or over ``max_pieces`` left out) and dev pairs."""
        config = self.config
        en, de = read_parallel(self.data_dir, "train")
        if config.phrases:
            phrases_en, phrases_de = read_parallel(self.data_dir, PHRASES)
            en, de = en + phrases_en, de + phrases_de
        if has_masks(self.vocab.pieces(range(self.vocab.size))):  # protected spans: learn to copy their mask tokens
            en, de = mask_pairs(en, de)
        sources, targets = self.vocab.encode_batch(en), self.vocab.encode_batch(de)
        kept = [i for i in range(len(en)) if 0 < len(sources[i]) <= config.max_pieces
                and 0 < len(targets[i]) <= config.max_pieces]
        self.sources, self.targets = [sources[i] for i in kept], [targets[i] for i in kept]
        self.pairs_read = len(en)
        self.dev_en, self.dev_de = read_parallel(self.data_dir, "dev")
        if config.dev_pairs and config.dev_pairs < len(self.dev_en):  # evenly spaced: every domain of the dev file
            keep = [i * len(self.dev_en) // config.dev_pairs for i in range(config.dev_pairs)]
            self.dev_en, self.dev_de = [self.dev_en[i] for i in keep], [self.dev_de[i] for i in keep]

    def make_optimizer(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.model.parameters(), lr=self.config.lr)

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """This rank's batches of ``epoch``: every ``world``-th, from an equal share for every rank and step."""
        config, world = self.config, self.place.world
        batches = make_batches([len(s) for s in self.sources], [len(t) for t in self.targets], config.batch_tokens,
                               config.seed, epoch)
        per_step = world * config.accumulate  # every step has all its batches, on every rank
        usable = len(batches) // per_step * per_step
        if not usable:
            raise TrainingSetupError(f"{len(batches)} batches of {config.batch_tokens} tokens are too few for "
                                     f"{world} rank(s) x {config.accumulate} batches a step")
        return batches[self.place.rank:usable:world]

    def restore(self, state: dict | None) -> None:
        """The epoch and this rank's place in its share of the epoch's batches."""
        done = 0
        if state is not None:
            self.epoch, done = state["epoch"], state["position"]
        if done % self.place.world:
            raise TrainingSetupError(f"{self.resume_dir} stopped {done} batches into epoch {self.epoch}, which "
                                     f"{self.place.world} ranks cannot share evenly: resume with a number of "
                                     "processes that divides it")
        self.position = done // self.place.world
        self.batches = self.epoch_batches(self.epoch)

    def progress(self) -> dict:
        return {"epoch": self.epoch, "position": self.position * self.place.world}

    def extra_info(self) -> dict:
        return {"train_pairs_used": len(self.sources)}

    def describe(self) -> str:
        config = self.config
        accumulating = f" x {config.accumulate} batches a step" if config.accumulate > 1 else ""
        autocast = ", forward pass under bfloat16 autocast" if self.bf16 else ""
        return (f"{len(self.sources):,} of {self.pairs_read:,} train pairs (the others are empty or over "
                f"{config.max_pieces} pieces), {self.place.world} rank(s) x {config.batch_tokens} tokens"
                f"{accumulating}, {len(self.batches) // config.accumulate} steps/epoch, {config.max_steps} steps"
                f"{autocast}")

    def next_batch(self) -> list[int]:
        """The pair indices of this rank's next batch (the next epoch's first after the last)."""
        if self.position >= len(self.batches):
            self.epoch, self.position = self.epoch + 1, 0
            self.batches = self.epoch_batches(self.epoch)
        self.position += 1
        return self.batches[self.position - 1]

    def train_step(self) -> StepReport:
        """Teacher forcing on the step's ``accumulate`` batches: label-smoothed cross-entropy per target
        piece, gradients added up (exchanged between ranks in the last backward pass only)."""
        accumulate, place = self.config.accumulate, self.place
        step_loss, pieces, pairs = 0.0, 0, 0
        for micro in range(accumulate):
            indices = self.next_batch()
            src, lengths, tgt_in, tgt_out = (t.to(place.device) for t in collate(
                [self.sources[i] for i in indices], [self.targets[i] for i in indices]))
            n_pieces = int((tgt_out != PAD_ID).sum())
            exchange = nullcontext() if not place.distributed or micro == accumulate - 1 else self.net.no_sync()
            with exchange:
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
                    logits = self.net(src, lengths, tgt_in)
                loss = self.loss_fn(logits.float().reshape(-1, logits.shape[-1]), tgt_out.reshape(-1)) / n_pieces
                (loss / accumulate).backward()
            step_loss += loss.item() / accumulate
            pieces, pairs = pieces + n_pieces * place.world, pairs + len(indices) * place.world
        return StepReport(step_loss, {"pieces": pieces, "pairs": pairs})

    def log_fields(self, rates: dict[str, float]) -> tuple[dict, dict]:
        return ({"tgt_pieces_per_s": round(rates["pieces"]), "pairs_per_s": round(rates["pairs"], 1),
                 "epoch": self.epoch}, {"tok_s": f"{rates['pieces']:,.0f}", "ep": self.epoch})

    def evaluate(self) -> Evaluation:
        """sacreBLEU and chrF of greedy translations of the dev pairs; the best model is the best BLEU."""
        scores = dev_scores(self.model, self.vocab, self.dev_en, self.dev_de)
        return Evaluation(scores["bleu"], {"step": self.step, "epoch": self.epoch, **scores},
                          {"epoch": self.epoch, "dev": scores, "elapsed_s": round(self.elapsed, 1)},
                          f"epoch {self.epoch}: train loss {self.running:.4f}, dev BLEU {scores['bleu']:.2f} "
                          f"chrF {scores['chrf']:.2f}")

    def draw_history(self, ax: Any) -> None:
        """Train loss (per log interval) and dev BLEU against the step."""
        if self.history["train"]:
            ax.plot(*curve(self.history["train"], "loss"), lw=0.8, label="train loss (label-smoothed)")
        ax.set_xlabel("step")
        ax.set_ylabel("loss (nats/piece)")
        ax.grid(alpha=0.3)
        bleu_ax = ax.twinx()
        if self.history["dev"]:
            bleu_ax.plot(*curve(self.history["dev"], "bleu"), "o-", color="C1", label="dev BLEU (greedy)")
        bleu_ax.set_ylabel("dev BLEU")
        lines = ax.get_legend_handles_labels()[0] + bleu_ax.get_legend_handles_labels()[0]
        ax.legend(lines, [line.get_label() for line in lines], loc="center right")

    def write_model(self, directory: Path, training: dict, dtype: torch.dtype) -> None:
        checkpoint.write_model_files(directory, self.model, self.vocab, training, dtype=dtype)


def train(data_dir: Path, out: Path, model_config: dict, config: TrainConfig, *, quiet: bool = False,
          vocab_path: Path | None = None, snapshot: Path | None = None) -> TrainResult:
    """Train (or resume) into ``out``, as one rank of ``WORLD_SIZE`` when launched by torchrun.

    The subword model is ``vocab_path`` or ``data_dir/sentencepiece.model`` (from ``data en-de``).
    ``snapshot``: a directory that every checkpoint also writes a small copy of ``last/`` to
    (float16 weights and the trainer state, no optimizer moments: small enough to commit), and
    that a run with no ``out/last`` resumes from, with fresh Adam moments (a warm resume, for a
    run continued on another machine from what survived in the repository).
    """
    run = Seq2SeqRun(data_dir, out, model_config, config, vocab_path, quiet=quiet, snapshot=snapshot).run()
    return TrainResult(run.model, run.step, run.best, run.elapsed, run.history)


def start(args: argparse.Namespace, model_config: dict, config: TrainConfig) -> None:
    train(args.data, args.out, model_config, config, quiet=args.quiet, vocab_path=args.vocab, snapshot=args.snapshot)


COMMAND = TrainerCommand(
    MODULE, "Train a GRU sequence-to-sequence translator.", Seq2SeqConfig, TrainConfig, start,
    data_help="directory from `rnnserve data en-de`",
    choices={"autocast": AUTOCAST}, errors=(DataError, checkpoint.CheckpointError),
    extra_flags={"--vocab": {"type": Path, "help": "SentencePiece model (default DATA/sentencepiece.model)"}})

if __name__ == "__main__":
    raise SystemExit(COMMAND.main())
