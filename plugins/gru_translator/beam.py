"""Decoding: batched greedy search and batched beam search over many sources at once.

Both take source piece ids (no BOS/EOS), encode them in one padded batch and return, per
source, :class:`Hyp` objects: target piece ids without EOS, their summed log-probability
(EOS included), the score used for ranking and, when asked, the attention rows
[len(tokens)][source pieces] (EOS's row is left out; each row sums to 1).

Length limit: source ``i`` may produce at most ``max_lengths[i]`` pieces before EOS; at that
point every token but EOS is masked, so each hypothesis ends with EOS.

Beam search keeps ``beam_size`` live hypotheses per source in one [B*K] decoder batch.
Each step ranks the top 2K continuations of each source by cumulative log-probability;
EOS candidates within the first K ranks become finished hypotheses, scored with the
GNMT length penalty ``log_prob / ((5 + length) / 6) ** length_penalty`` (length counts EOS),
and the best K non-EOS candidates live on. A source is done when it has K finished
hypotheses; done sources leave the decoder batch. ``beam_size=1`` is exactly greedy search.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .model import Seq2Seq
from .subwords import EOS_ID, PAD_ID


@dataclass
class Hyp:
    """One finished hypothesis."""

    tokens: list[int]
    log_probability: float
    score: float
    attention: list[list[float]] | None = None


def model_device(model: Seq2Seq) -> torch.device:
    """Where the model's weights are (every search tensor is made there)."""
    return next(model.parameters()).device


def pad_sources(sources: Sequence[Sequence[int]], device: torch.device | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Piece ids (each non-empty) → src [B, S] padded with PAD_ID and lengths [B], on ``device``."""
    lengths = torch.tensor([len(s) for s in sources], dtype=torch.long)
    if int(lengths.min()) < 1:
        raise ValueError("every source needs at least one piece")
    src = torch.full((len(sources), int(lengths.max())), PAD_ID, dtype=torch.long)
    for i, ids in enumerate(sources):
        src[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    return src.to(device), lengths.to(device)


def length_penalty(length: int, alpha: float) -> float:
    """GNMT length normalisation ((5 + length) / 6) ** alpha."""
    return ((5.0 + length) / 6.0) ** alpha


def force_eos(logp: torch.Tensor, forced: torch.Tensor) -> torch.Tensor:
    """logp [N, V] with every token but EOS set to -inf on the rows where ``forced`` [N] is True."""
    if not bool(forced.any()):
        return logp
    eos_only = torch.full_like(logp, float("-inf"))
    eos_only[:, EOS_ID] = logp[:, EOS_ID]
    return torch.where(forced[:, None], eos_only, logp)


def greedy_search(model: Seq2Seq, sources: Sequence[Sequence[int]], max_lengths: Sequence[int], *,
                  alpha: float = 0.0, return_attention: bool = False) -> list[Hyp]:
    """Arg-max decoding of all ``sources`` in one batch; one :class:`Hyp` per source (scored with ``alpha``)."""
    device = model_device(model)
    src, lengths = pad_sources(sources, device)
    encoded, state = model.encode(src, lengths)
    limits = torch.tensor(max_lengths, dtype=torch.long, device=device)
    tokens = model.start_tokens(src.shape[0], device)
    log_prob = torch.zeros(src.shape[0], device=device)
    finished = torch.zeros(src.shape[0], dtype=torch.bool, device=device)
    steps: list[torch.Tensor] = []
    attention: list[torch.Tensor] = []
    for t in range(int(limits.max()) + 1):
        logp, weights, state = model.decode_step(tokens, state, encoded)
        best_logp, tokens = force_eos(logp, limits <= t).max(dim=-1)
        tokens = tokens.masked_fill(finished, PAD_ID)
        log_prob += best_logp.masked_fill(finished, 0.0)
        steps.append(tokens)
        if return_attention:
            attention.append(weights)
        finished |= tokens == EOS_ID
        if bool(finished.all()):
            break
    ids = torch.stack(steps, dim=1).tolist()
    all_weights = torch.stack(attention, dim=1) if return_attention else None
    out = []
    for i, row in enumerate(ids):
        n = row.index(EOS_ID)
        rows = all_weights[i, :n, : int(lengths[i])].tolist() if all_weights is not None else None
        lp = float(log_prob[i])
        out.append(Hyp(row[:n], lp, lp / length_penalty(n + 1, alpha), rows))
    return out


def beam_search(model: Seq2Seq, sources: Sequence[Sequence[int]], max_lengths: Sequence[int], *,
                beam_size: int = 5, n_best: int = 1, alpha: float = 1.0,
                return_attention: bool = False) -> list[list[Hyp]]:
    """Beam search over all ``sources`` at once; per source its ``n_best`` hypotheses, best score first."""
    if not 1 <= n_best <= beam_size:
        raise ValueError(f"n_best must be within 1..beam_size ({beam_size}), got {n_best}")
    device = model_device(model)
    src, lengths = pad_sources(sources, device)
    k = beam_size
    encoded, state = model.encode(src, lengths)
    rows = torch.arange(src.shape[0], device=device).repeat_interleave(k)
    encoded, state = encoded.select(rows), state.select(rows)
    limits = torch.tensor(max_lengths, dtype=torch.long, device=device)
    active = torch.arange(src.shape[0], device=device)  # [A] source index of each source still searching
    scores = torch.full((src.shape[0], k), float("-inf"), device=device)  # [A, K] cumulative log-probabilities
    scores[:, 0] = 0.0  # the first step expands one beam only
    tokens = model.start_tokens(src.shape[0] * k, device)  # [A*K]
    history = torch.zeros(src.shape[0] * k, 0, dtype=torch.long, device=device)  # [A*K, t]
    attention = torch.zeros(src.shape[0] * k, 0, src.shape[1], device=device) \
        if return_attention else None  # [A*K, t, S]
    finished: list[list[Hyp]] = [[] for _ in sources]
    rank = torch.arange(2 * k, device=device)
    for t in range(int(limits.max()) + 1):
        logp, weights, state = model.decode_step(tokens, state, encoded)
        width = logp.shape[1]
        logp = force_eos(logp, (limits[active] <= t).repeat_interleave(k))
        if attention is not None:
            attention = torch.cat([attention, weights[:, None, :]], dim=1)
        total = (scores.reshape(-1, 1) + logp).view(active.numel(), k * width)
        cand_scores, cand = total.topk(2 * k, dim=1)  # [A, 2K]
        beam, token = cand // width, cand % width
        eos = token == EOS_ID
        for a, r in ((eos[:, :k] & torch.isfinite(cand_scores[:, :k])).nonzero().tolist()):
            source = int(active[a])
            if len(finished[source]) >= k:
                continue
            row = a * k + int(beam[a, r])
            ids = history[row].tolist()
            lp = float(cand_scores[a, r])
            rows_ = attention[row, : len(ids), : int(lengths[source])].tolist() if attention is not None else None
            finished[source].append(Hyp(ids, lp, lp / length_penalty(len(ids) + 1, alpha), rows_))
        keep = (rank + eos * 2 * k).topk(k, dim=1, largest=False).indices.sort(dim=1).values  # best K non-EOS
        scores = cand_scores.gather(1, keep)
        parents = (torch.arange(active.numel(), device=device)[:, None] * k + beam.gather(1, keep)).view(-1)
        tokens = token.gather(1, keep).view(-1)
        history = torch.cat([history.index_select(0, parents), tokens[:, None]], dim=1)
        state = state.select(parents)
        if attention is not None:
            attention = attention.index_select(0, parents)
        done = torch.tensor([len(finished[int(s)]) >= k for s in active.tolist()], device=device)
        if bool(done.all()):
            break
        if bool(done.any()):
            alive = (~done).nonzero().squeeze(1)
            rows = (alive[:, None] * k + torch.arange(k, device=device)).view(-1)
            active, scores, tokens, history = active[alive], scores[alive], tokens[rows], history[rows]
            encoded, state = encoded.select(rows), state.select(rows)
            if attention is not None:
                attention = attention[rows]
    return [sorted(hyps, key=lambda h: h.score, reverse=True)[:n_best] for hyps in finished]
