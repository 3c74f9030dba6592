"""Beam search over characters with a recurrent language model.

Used for word completion (extend with word characters; a hypothesis *ends* with the
probability mass of a word boundary after it, without consuming it) and for phrase
continuation (extend with any character; a hypothesis ends when it emits a clause end).
All live hypotheses advance together in one batched step. The search is a step program
(``rnnserve.plugin_api.StepProgram``): it yields the steps it needs, so the host can batch them
with other searches' (``SharedLanguageModel.run_steps``) or run it alone (``run_alone``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from rnnserve.plugin_api import LanguageModel, State, StepProgram, concat_states, select_rows, split_state
from rnnserve_plugins.writing_assistant.lexicon import Lexicon
from rnnserve_plugins.writing_assistant.states import Node, WordNodes


@dataclass(frozen=True)
class Continuation:
    """A finished continuation: its text and natural-log probability."""

    text: str
    logprob: float


def advance(model: LanguageModel, nodes: WordNodes, keys: list[str], logprobs: list[float], tokens: torch.Tensor,
            state: State, rows: torch.Tensor) -> StepProgram[tuple[torch.Tensor, State]]:
    """Rows ``rows`` of ``state`` after reading ``tokens`` [k], reaching the texts ``keys``
    (with log-probabilities ``logprobs``): their logits [k, vocab] and states (batch k).

    Texts already in ``nodes`` need no model step; the others are stepped together (a
    step program) and become nodes.
    """
    found = [nodes.get(key) for key in keys]
    missing = [i for i, node in enumerate(found) if node is None]
    if missing:
        index = torch.tensor(missing)
        logits, stepped = yield tokens[index], select_rows(state, model.state_batch_dims, rows[index])
        # Own copies: what a shared step hands back are views of the whole batch's output.
        logits = logits.float().clone()
        parts = split_state(tuple(t.clone() for t in stepped), model.state_batch_dims, [1] * len(missing))
        for j, i in enumerate(missing):
            found[i] = Node(parts[j], logits[j], logprobs[i])
            nodes.put(keys[i], found[i])
    nodes_found: list[Node] = found  # type: ignore[assignment]  # every row is a node now
    return (torch.stack([node.logits for node in nodes_found]),
            concat_states([node.state for node in nodes_found], model.state_batch_dims))


def beam_search(
    model: LanguageModel,
    token_text: list[str],
    state: State,
    logits: torch.Tensor,
    *,
    extend: torch.Tensor,
    beam: int,
    max_chars: int,
    results: int,
    end_mass: torch.Tensor | None = None,
    end_on: torch.Tensor | None = None,
    first: torch.Tensor | None = None,
    finish_at_limit: bool = False,
    lexicon: Lexicon | None = None,
    typed: str = "",
    start_logprob: torch.Tensor | None = None,
    nodes: WordNodes | None = None,
    keys: list[str] | None = None,
) -> StepProgram[list[Continuation]]:
    """Most likely continuations from one state, or jointly from several (a step program).

    Args:
        state: the state after the text so far, batch R (R starting points, e.g. casings of a
            typed prefix; their hypotheses compete in one beam and advance in one batched step).
        logits: [vocab] (R = 1) or [R, vocab] next-token logits in those states.
        start_logprob: [R] log-probability of each starting point (default 0).
        extend: [vocab] bool, tokens a hypothesis may grow by.
        end_mass: [vocab] bool; a non-empty hypothesis finishes with log P(any of these next).
        end_on: [vocab] bool; a hypothesis finishes (consuming it) when it emits one of these.
        first: [vocab] bool, extra restriction on the first token.
        finish_at_limit: hypotheses still live after ``max_chars`` count as finished.
        lexicon: with ``end_mass``: hypotheses only grow into, and only finish as, its words
            (``typed`` + hypothesis, in any case); ``typed`` is the part of the word already read
            (the same for every starting point, up to case).
        beam: live hypotheses kept per step; max_chars: longest continuation.
        results: how many finished hypotheses to return.
        nodes: states reached from the word start, reused and extended (see ``WordNodes``);
            ``keys`` [R] are the starting points' texts after the word start, each a node.
    Returns:
        Up to ``results`` hypotheses, most likely first.
    """
    live_logits = (logits[None] if logits.dim() == 1 else logits).float()
    live_text = [""] * live_logits.shape[0]
    live_lp = torch.zeros(len(live_text), dtype=torch.float64) if start_logprob is None else start_logprob.double()
    live_state = state
    if nodes is not None:
        assert keys is not None and len(keys) == len(live_text), "one key per starting point"
        live_key = list(keys)
        live_raw = torch.tensor([nodes.logprob(key) for key in keys], dtype=torch.float64)  # after the word start
    finished: list[Continuation] = []
    allowed = extend | end_on if end_on is not None else extend
    for length in range(max_chars):
        logp = torch.log_softmax(live_logits, dim=-1).double()  # [live, vocab]
        if end_mass is not None and length > 0:
            done = (live_lp + torch.logsumexp(logp[:, end_mass], dim=-1)).tolist()
            finished.extend(Continuation(t, lp) for t, lp in zip(live_text, done, strict=True)
                            if lexicon is None or typed + t in lexicon)
        mask = allowed & first if (first is not None and length == 0) else allowed
        if lexicon is not None:
            mask = mask & torch.stack([lexicon.continuations((typed + t).lower()) for t in live_text])
        scores = (live_lp[:, None] + logp).masked_fill(~mask, -math.inf)
        flat = scores.flatten()
        k = min(beam, int(torch.isfinite(flat).sum()))
        if k == 0:
            break
        top_lp, top_idx = flat.topk(k)
        rows, tokens = top_idx // logp.shape[1], top_idx % logp.shape[1]
        next_text, keep = [], []
        for i, (row, token, lp) in enumerate(zip(rows.tolist(), tokens.tolist(), top_lp.tolist(), strict=True)):
            text = live_text[row] + token_text[token]
            if end_on is not None and bool(end_on[token]):
                finished.append(Continuation(text, lp))
            else:
                next_text.append(text)
                keep.append(i)
        if finish_at_limit and length + 1 == max_chars:
            finished.extend(Continuation(next_text[j], float(top_lp[i])) for j, i in enumerate(keep))
        finished.sort(key=lambda h: -h.logprob)
        if not keep or length + 1 == max_chars:
            break
        keep_t = torch.tensor(keep)
        # Prune: probabilities only shrink as a hypothesis grows.
        if len(finished) >= results and float(top_lp[keep_t].max()) < finished[results - 1].logprob:
            break
        if nodes is None:
            live_state = select_rows(live_state, model.state_batch_dims, rows[keep_t])
            live_logits, live_state = yield tokens[keep_t], live_state
        else:
            kept_rows, kept_tokens = rows[keep_t], tokens[keep_t]
            live_key = [live_key[r] + token_text[t]
                        for r, t in zip(kept_rows.tolist(), kept_tokens.tolist(), strict=True)]
            live_raw = live_raw[kept_rows] + logp[kept_rows, kept_tokens]
            live_logits, live_state = yield from advance(model, nodes, live_key, live_raw.tolist(), kept_tokens,
                                                         live_state, kept_rows)
        live_text, live_lp = next_text, top_lp[keep_t].double()
    return finished[:results]
