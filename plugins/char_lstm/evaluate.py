"""Loss measurement: mean negative log-likelihood in nats per character of a text.

The text is read as a served prompt is: ``<bos>`` first, from the zero state (again before
every ``<bos>`` inside the text: each document is read as its own request), and every
character of the text is scored (``<bos>`` itself is not, nor any ``<bos>`` the tokens hold
before their documents). With ``streams`` = 1 this is
exact; with more, the text is cut into ``streams`` pieces read in parallel, and each
piece after the first is preceded by ``<bos>`` plus the ``burn_in`` characters before it
(read, not scored), which approximates the exact number closely (an LSTM's memory of
text more than a few hundred characters back is negligible) at a fraction of the time.
"""

from __future__ import annotations

import itertools
import math
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from rnnserve.plugin_api import LanguageModel

from .model import read_documents

NATS_TO_BITS = 1.0 / math.log(2.0)


@torch.inference_mode()
def evaluate_loss(model: LanguageModel | nn.Module, tokens: torch.Tensor, bos_id: int, streams: int = 32,
                  burn_in: int = 512, chunk: int = 512, stepwise: bool = False) -> float:
    """Mean nats/char of ``tokens`` [N] under ``model`` (a backend or a ``CharRNN``: ``forward`` and
    ``initial_state``). A module is put in eval mode for the measurement and restored afterwards.

    ``stepwise``: read through a backend's decoding ``step``, one character per call, instead
    of its whole-block ``forward``: the loss of the path that generates text, where the two
    differ (int8 decodes in int8 but reads prompts with float32 recurrence).
    """
    was_training = isinstance(model, nn.Module) and model.training
    if isinstance(model, nn.Module):
        model.eval()
    n = tokens.numel()
    scored = n - int((tokens == bos_id).sum())
    streams = max(1, min(streams, n // max(1, burn_in)))
    bounds = [round(i * n / streams) for i in range(streams + 1)]
    rows, targets = [], []
    for start, end in itertools.pairwise(bounds):
        context = max(0, start - burn_in)
        row = torch.cat([torch.tensor([bos_id]), tokens[context:end]])
        target = torch.cat([tokens[context:end], torch.tensor([-100])])  # target of row[i] is row[i+1]
        target[: start - context] = -100  # burn-in characters are read, not scored
        target[target == bos_id] = -100  # <bos> before a document (data.encode_documents) is read, not scored
        rows.append(row)
        targets.append(target)
    width = max(len(r) for r in rows)
    x = torch.full((streams, width), bos_id, dtype=torch.int64)
    y = torch.full((streams, width), -100, dtype=torch.int64)
    for i, (row, target) in enumerate(zip(rows, targets, strict=True)):
        x[i, : len(row)] = row
        y[i, : len(target)] = target
    if isinstance(model, nn.Module):  # a module being trained may sit on a GPU
        device = next(model.parameters()).device
        x, y = x.to(device), y.to(device)
    state = model.initial_state(streams)
    total = 0.0
    for t in range(0, width, chunk):
        window = x[:, t: t + chunk]
        forward = _stepwise(model) if stepwise else model.forward
        logits, state = read_documents(forward, window, state, window == bos_id)
        total += nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(),
                                             y[:, t: t + chunk].reshape(-1), ignore_index=-100,
                                             reduction="sum").item()
    if was_training:
        model.train()
    return total / max(1, scored)


def _stepwise(backend: LanguageModel) -> Callable[[torch.Tensor, tuple[torch.Tensor, ...]],
                                                  tuple[torch.Tensor, tuple[torch.Tensor, ...]]]:
    """A ``forward`` ([B, T] tokens, state -> logits [B, T, V], state) made of T ``backend.step`` calls."""
    def forward(window: torch.Tensor, state: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, tuple]:
        logits = []
        for t in range(window.shape[1]):
            step_logits, state = backend.step(window[:, t], state)
            logits.append(step_logits)
        return torch.stack(logits, dim=1), state
    return forward


StepFn = Callable[[torch.Tensor, tuple[torch.Tensor, ...]], tuple[torch.Tensor, tuple[torch.Tensor, ...]]]


@torch.inference_mode()
def step_latency_ms(steps: dict[str, StepFn], state: tuple[torch.Tensor, ...], vocab_size: int,
                    rounds: int = 20, calls: int = 25) -> dict[str, float]:
    """Median wall time in ms of one ``step(tokens [B], state)`` call of each step function (B from ``state``).

    The functions take turns, ``calls`` steps each per round, so that load from other processes on
    a shared machine affects them alike.
    """
    batch = state[0].shape[1]
    tokens = torch.randint(2, vocab_size, (batch,), generator=torch.Generator().manual_seed(0))
    states = dict.fromkeys(steps, state)
    times: dict[str, list[float]] = {name: [] for name in steps}
    for round_ in range(rounds + 1):
        for name, step in steps.items():
            for _ in range(calls):
                start = time.perf_counter()
                _, states[name] = step(tokens, states[name])
                if round_:  # round 0 warms up
                    times[name].append(time.perf_counter() - start)
    return {name: 1000.0 * statistics.median(t) for name, t in times.items()}


@torch.inference_mode()
def sample_text(backend: LanguageModel, prompt: str, length: int, temperature: float = 0.7,
                seed: int = 0) -> str:
    """Continue ``prompt`` by ``length`` characters (temperature sampling, for model cards only:
    serving does its own sampling)."""
    vocab = backend.vocab
    generator = torch.Generator().manual_seed(seed)
    ids, _ = vocab.encode(prompt)
    logits, state = backend.forward(torch.tensor([[vocab.bos_id, *ids]]), backend.initial_state(1))
    last = logits[:, -1]
    out: list[int] = []
    for _ in range(length):
        probs = torch.softmax(last / temperature, dim=-1)
        token = torch.multinomial(probs, 1, generator=generator)[:, 0]
        out.append(int(token))
        last, state = backend.step(token, state)
    return vocab.decode(out)
