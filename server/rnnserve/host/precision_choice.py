"""Choosing a model's precision by measurement: what ``dtype = "auto"`` means for a backend
that offers several precisions of one checkpoint (the char-lstm backend: float32, bfloat16
and int8).

The backend hands :func:`choose_precision` a way to build each candidate, and the chooser
serves the **fastest candidate whose quality cost is within the bound**:

* **Quality cost**: the nats per character a precision adds to float32's loss on the
  checkpoint's test split, measured when the checkpoint was built and stored in its model
  card (metrics ``precision_cost_nats_<precision>``, :func:`card_costs`). float32 is the
  reference (cost 0). A precision without a recorded cost is not eligible: its cost is
  unknown.
* **Bound**: the model option ``max_precision_cost`` (nats/char), default
  :data:`DEFAULT_MAX_COST` = 0.01: at most exp(0.01) = 1% more perplexity per character.
  That is 10-20x what bfloat16 and int8 cost the shipped character models (0.0005-0.001),
  so those stay eligible, while a precision that really damages a model (a broken
  quantization costs tenths of a nat) is refused. 0 admits float32 only.
* **Fastest**: the smallest geometric mean of the time per character at batch 1 (one
  stream: latency), at batch :data:`LARGE_BATCH` (many streams: throughput) and, for a
  language model, reading a prompt of :data:`READ_CHARS` characters (time to first
  character: prompt reading may run other kernels than decoding, e.g. int8 decodes with
  int8 matrix products but reads with float32 recurrence) (:attr:`Timing.us_per_char`).
  No one figure dominates: a precision twice as fast at one and twice as slow at another ties.
* **Timing**: each eligible candidate runs decoding steps on this machine, with the torch
  thread count the server runs with: :data:`WARMUP_STEPS` untimed, then the candidates
  take turns one step (or one prompt read) each (load from other processes affects them alike) for at least
  :data:`MIN_ROUNDS` rounds and until :data:`ROUND_BUDGET_S` has passed (at most
  :data:`MAX_ROUNDS`); the median step counts. For a 3 M-parameter LSTM on two cores it
  takes well under a second, bfloat16 without native support (~0.1 s a batch-64 step)
  being the slowest part. Two models never measure at once (one lock per process).
* **Cache**: the timings are kept per machine and checkpoint in
  ``precision-choices.json`` under ``$RNNSERVE_CACHE_DIR``, else
  ``$XDG_CACHE_HOME/rnnserve``, else ``~/.cache/rnnserve`` (:func:`cache_dir`), keyed by
  the CPU model, its flags, torch's version, kernel level and thread count, the int8
  kernels, oneDNN's ISA limit, the large batch and the checkpoint's identity
  (:func:`checkpoint_identity`: a hash of its weights file). A hit builds only the chosen
  precision and says "cached"; the choice itself is made again from the cached timings, so a changed bound needs no new
  measurement (a newly eligible candidate without cached timings does). A corrupt or
  unwritable cache never fails a load: it is logged as a warning and the timing runs.
* **Forcing**: ``RNNSERVE_PRECISION=float32|bfloat16|int8`` makes every ``"auto"`` take
  that precision without measuring or looking at costs (tests, and trying a path on any
  CPU); explicit options (``dtype = "bfloat16"``, ``quantize = true``) never measure.

The choice is logged at INFO with its figures, and its one-line reason
(:attr:`PrecisionChoice.reason`) is what ``GetModel`` shows as ``precision_choice``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import statistics
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import torch

from rnnserve.backends import LanguageModel
from rnnserve.edge.errors import ConfigurationError
from rnnserve.host.precision import PRECISIONS, cpu_flags, cpu_model, kernel_limits

log = logging.getLogger("rnnserve.precision")

#: Forces the result of every measured ``"auto"`` (one of :data:`~rnnserve.host.precision.PRECISIONS`).
PRECISION_ENV = "RNNSERVE_PRECISION"
#: Where the measured timings are cached (a directory), before the XDG default.
CACHE_ENV = "RNNSERVE_CACHE_DIR"
CACHE_FILE = "precision-choices.json"
#: The precision every cost is measured against.
REFERENCE = "float32"
#: The model option stating the bound, and its default in nats per character (see the module docstring).
MAX_COST_OPTION = "max_precision_cost"
DEFAULT_MAX_COST = 0.01
#: Model-card metric holding a precision's cost: ``precision_cost_nats_int8`` etc.
COST_METRIC = "precision_cost_nats_{}"
#: The many-streams batch timed besides batch 1.
LARGE_BATCH = 64
#: Characters of the prompt read timed besides the decoding steps (a language model's).
READ_CHARS = 64
#: Bumped when the timings measured change meaning (part of the cache key).
TIMINGS_VERSION = 2
WARMUP_STEPS = 2
MIN_ROUNDS = 4
MAX_ROUNDS = 40
#: Seconds of timed rounds per batch size, once MIN_ROUNDS are done.
ROUND_BUDGET_S = 0.15

Built = TypeVar("Built")
#: Runs one decoding step per call, carrying its own state.
Stepper = Callable[[], object]

_measuring = threading.Lock()
_cache_lock = threading.Lock()


@dataclass(frozen=True)
class Timing:
    """Median wall times of a candidate: one decoding step at batch 1 and at ``large_batch``, and
    (where timed) one read of a ``read_chars``-character prompt at batch 1."""

    batch1_ms: float
    large_ms: float
    large_batch: int
    read_ms: float | None = None
    read_chars: int = READ_CHARS

    @property
    def us_per_char(self) -> float:
        """Geometric mean of the time per character of each figure, in µs: what "fastest" minimises."""
        per_char = [self.batch1_ms, self.large_ms / self.large_batch]
        if self.read_ms is not None:
            per_char.append(self.read_ms / self.read_chars)
        return 1000.0 * math.prod(per_char) ** (1 / len(per_char))

    def describe(self) -> str:
        read = "" if self.read_ms is None else f", read {self.read_chars} chars {self.read_ms:.3f} ms"
        return (f"{self.us_per_char:.1f} us/char (batch 1 {self.batch1_ms:.3f} ms, "
                f"batch {self.large_batch} {self.large_ms:.3f} ms a step{read})")


@dataclass(frozen=True)
class PrecisionChoice:
    """What :func:`choose_precision` chose, and why."""

    precision: str
    #: One line: the choice, how it was made (measured, cached, forced, only candidate) and the figures.
    reason: str
    #: "measured", "cached", "forced" or "only candidate".
    how: str
    #: The timed candidates (none when forced or when one candidate alone was eligible).
    timings: Mapping[str, Timing]
    #: Each candidate's quality cost in nats/char (None: not recorded).
    costs: Mapping[str, float | None]
    max_cost: float


def cost_metrics(reference: float, losses: Mapping[str, float]) -> dict[str, float]:
    """The model-card metrics recording each precision's cost: ``precision_cost_nats_<p>`` = its test loss
    minus float32's (``reference``), nats/char, as a card writer measures them."""
    return {COST_METRIC.format(p): round(loss - reference, 5) for p, loss in losses.items()}


def card_costs(metrics: Mapping[str, float]) -> dict[str, float]:
    """The quality costs a model card's metrics record, by precision (``precision_cost_nats_<p>``)."""
    return {p: float(metrics[COST_METRIC.format(p)]) for p in PRECISIONS if COST_METRIC.format(p) in metrics}


def max_cost_option(options: Mapping[str, object], model: str) -> float:
    """The validated ``max_precision_cost`` of a model spec's options (nats/char, default :data:`DEFAULT_MAX_COST`)."""
    value = options.get(MAX_COST_OPTION, DEFAULT_MAX_COST)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ConfigurationError(f"model {model!r}: option {MAX_COST_OPTION!r} must be a number of nats per "
                                 f"character >= 0 (e.g. {DEFAULT_MAX_COST}), got {value!r}")
    return float(value)


def forced_precision() -> str | None:
    """The precision :data:`PRECISION_ENV` forces, or None."""
    forced = os.environ.get(PRECISION_ENV, "").strip()
    if forced and forced not in PRECISIONS:
        raise ConfigurationError(f"{PRECISION_ENV} must be one of {list(PRECISIONS)}, got {forced!r}")
    return forced or None


def checkpoint_identity(*files: Path) -> str:
    """A hash of the files' contents (a checkpoint's weights file: ~20 ms for 13 MB)."""
    digest = hashlib.sha256()
    for path in files:
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def cache_dir() -> Path:
    """``$RNNSERVE_CACHE_DIR``, else ``$XDG_CACHE_HOME/rnnserve``, else ``~/.cache/rnnserve``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rnnserve"


def machine() -> dict[str, object]:
    """What decides the timings besides the checkpoint: CPU, its flags, torch, its thread count,
    the int8 kernels (``rnnserve.host.int8``) and any instruction-set limits on the kernels
    (``rnnserve.host.precision.KERNEL_LIMITS``)."""
    from rnnserve.host.int8 import int8_kernels

    return {"cpu": cpu_model(), "int8_kernels": int8_kernels(),
            "flags": hashlib.sha256(" ".join(sorted(cpu_flags())).encode()).hexdigest()[:16],
            "torch": torch.__version__, "kernels": torch.backends.cpu.get_cpu_capability(),
            "kernel_limits": kernel_limits(), "threads": torch.get_num_threads()}


def cache_key(checkpoint: str, large_batch: int = LARGE_BATCH) -> str:
    """The cache key of ``checkpoint`` (:func:`checkpoint_identity`) timed on this machine."""
    described = json.dumps({**machine(), "checkpoint": checkpoint, "large_batch": large_batch,
                            "timings_version": TIMINGS_VERSION}, sort_keys=True)
    return hashlib.sha256(described.encode()).hexdigest()[:32]


def _read_cache(path: Path) -> dict[str, dict]:
    """The cache file's entries; {} when there is none, and a warning when it cannot be read."""
    try:
        entries = json.loads(path.read_text())
        if not isinstance(entries, dict):
            raise ValueError(f"a JSON object was expected, not {type(entries).__name__}")
        return entries
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("precision cache %s is unreadable (%s): timing again", path, exc)
        return {}


def cached_timings(key: str) -> dict[str, Timing]:
    """The timings cached under ``key`` ({} on a miss or an unreadable cache)."""
    with _cache_lock:
        entry = _read_cache(cache_dir() / CACHE_FILE).get(key, {})
    try:
        return {p: Timing(**t) for p, t in entry.get("timings", {}).items()}
    except (AttributeError, TypeError) as exc:
        log.warning("precision cache entry %s is malformed (%s): timing again", key, exc)
        return {}


def store_timings(key: str, timings: Mapping[str, Timing], checkpoint: str) -> None:
    """Cache ``timings`` under ``key`` (atomically: a reader never sees half a file); a warning if it cannot."""
    path = cache_dir() / CACHE_FILE
    with _cache_lock:
        try:
            entries = _read_cache(path)
            entries[key] = {"machine": machine(), "checkpoint": checkpoint,
                            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                            "timings": {p: dataclasses.asdict(t) for p, t in timings.items()}}
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
            partial.write_text(json.dumps(entries, indent=1, sort_keys=True) + "\n")
            os.replace(partial, path)
        except OSError as exc:
            log.warning("cannot write the precision cache %s (%s): the next load times again", path, exc)


def _time_rounds(steppers: Mapping[str, Stepper]) -> dict[str, float]:
    """Median ms of one call of each stepper, taking turns (see the module docstring)."""
    for stepper in steppers.values():
        for _ in range(WARMUP_STEPS):
            stepper()
    times: dict[str, list[float]] = {name: [] for name in steppers}
    start = time.perf_counter()
    for round_ in range(1, MAX_ROUNDS + 1):
        for name, stepper in steppers.items():
            began = time.perf_counter()
            stepper()
            times[name].append(time.perf_counter() - began)
        if round_ >= MIN_ROUNDS and time.perf_counter() - start >= ROUND_BUDGET_S:
            break
    return {name: 1000.0 * statistics.median(t) for name, t in times.items()}


def time_candidates(built: Mapping[str, Built], stepper: Callable[[Built, int], Stepper],
                    large_batch: int = LARGE_BATCH, reader: Callable[[Built, int], Stepper] | None = None
                    ) -> dict[str, Timing]:
    """Time a decoding step of each built candidate at batch 1 and at ``large_batch``, and with a
    ``reader`` one read of a :data:`READ_CHARS`-character prompt."""
    with _measuring:
        small = _time_rounds({p: stepper(b, 1) for p, b in built.items()})
        large = _time_rounds({p: stepper(b, large_batch) for p, b in built.items()})
        read = _time_rounds({p: reader(b, READ_CHARS) for p, b in built.items()}) if reader else {}
    return {p: Timing(round(small[p], 4), round(large[p], 4), large_batch,
                      round(read[p], 4) if p in read else None) for p in built}


def language_model_stepper(lm: LanguageModel, batch: int) -> Stepper:
    """One ``lm.step`` per call on fixed tokens [batch] (seeded), the state [.., batch, ..] carried over."""
    tokens = torch.randint(0, lm.vocab.size, (batch,), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        state = [lm.initial_state(batch)]

    def step() -> None:
        with torch.inference_mode():
            _, state[0] = lm.step(tokens, state[0])

    return step


def language_model_reader(lm: LanguageModel, chars: int) -> Stepper:
    """One ``lm.forward`` per call over fixed tokens [1, chars] (seeded) from the initial state: a prompt read."""
    tokens = torch.randint(0, lm.vocab.size, (1, chars), generator=torch.Generator().manual_seed(1))

    def read() -> None:
        with torch.inference_mode():
            lm.forward(tokens, lm.initial_state(1))

    return read


def choose_precision(candidates: Mapping[str, Callable[[], Built]], costs: Mapping[str, float], max_cost: float,
                     checkpoint: str, *, model: str,
                     stepper: Callable[[Built, int], Stepper] = language_model_stepper,
                     reader: Callable[[Built, int], Stepper] | None = language_model_reader,
                     large_batch: int = LARGE_BATCH) -> tuple[Built, PrecisionChoice]:
    """Build the fastest candidate within ``max_cost`` (see the module docstring) and say why.

    Args:
        candidates: precision name (of :data:`~rnnserve.host.precision.PRECISIONS`) -> a function building
            the model in it (e.g. a backend); only the eligible ones are built.
        costs: each precision's quality cost in nats/char vs float32 (:func:`card_costs`); a
            candidate missing here is not eligible, except float32 (cost 0).
        max_cost: the bound (:func:`max_cost_option`).
        checkpoint: the checkpoint's identity (:func:`checkpoint_identity`), for the cache key.
        model: the model's name, for the log.
        stepper: ``stepper(built, batch)`` -> a function running one decoding step at ``batch``
            per call (default: :func:`language_model_stepper`).
        reader: ``reader(built, chars)`` -> a function reading a prompt of ``chars`` per call
            (default: :func:`language_model_reader`); None: prompt reading is not timed.
    Returns:
        the chosen precision's built model, and the choice.
    """
    known = {p: (0.0 if p == REFERENCE else costs.get(p)) for p in candidates}
    forced = forced_precision()
    if forced is not None:
        if forced not in candidates:
            raise ConfigurationError(f"model {model!r}: {PRECISION_ENV}={forced} is not one of its precisions "
                                     f"{list(candidates)}")
        return _chosen(candidates[forced](), PrecisionChoice(
            forced, f"{forced}: forced by {PRECISION_ENV}", "forced", {}, known, max_cost), model)
    eligible = [p for p, cost in known.items() if cost is not None and cost <= max_cost]
    refused = "; ".join(f"{p} refused: " + ("no recorded cost" if cost is None else f"cost {cost:+.5f} > bound")
                        for p, cost in known.items() if p not in eligible)
    if not eligible:
        raise ConfigurationError(f"model {model!r}: no precision is within {MAX_COST_OPTION} = {max_cost} ({refused})")
    if len(eligible) == 1:
        only = eligible[0]
        return _chosen(candidates[only](), PrecisionChoice(
            only, f"{only}: the only candidate within {MAX_COST_OPTION} {max_cost:g} nats/char ({refused})",
            "only candidate", {}, known, max_cost), model)
    key = cache_key(checkpoint, large_batch)
    timings = cached_timings(key)
    built: dict[str, Built] = {}
    how = "cached"
    if not set(eligible) <= set(timings):
        built = {p: candidates[p]() for p in eligible}
        timings = time_candidates(built, stepper, large_batch, reader)
        store_timings(key, timings, checkpoint)
        how = "measured"
    fastest = min(eligible, key=lambda p: timings[p].us_per_char)
    figures = ", ".join(f"{p} {timings[p].describe()} cost {known[p]:+.5f}"
                        for p in sorted(eligible, key=lambda p: timings[p].us_per_char))
    reason = (f"{fastest}: fastest within {MAX_COST_OPTION} {max_cost:g} nats/char, {how} on this machine "
              f"({torch.get_num_threads()} torch threads): {figures}" + (f"; {refused}" if refused else ""))
    choice = PrecisionChoice(fastest, reason, how, {p: timings[p] for p in eligible}, known, max_cost)
    return _chosen(built[fastest] if fastest in built else candidates[fastest](), choice, model)


def _chosen(built: Built, choice: PrecisionChoice, model: str) -> tuple[Built, PrecisionChoice]:
    log.info("model %s: precision %s", model, choice.reason)
    return built, choice
