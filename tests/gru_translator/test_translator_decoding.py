"""Greedy and batched beam search on tiny seeded models: golden outputs and search invariants."""

from __future__ import annotations

import pytest
import torch

from rnnserve_plugins.gru_translator.beam import beam_search, greedy_search, length_penalty, pad_sources
from rnnserve_plugins.gru_translator.subwords import EOS_ID, PAD_ID
from tests.gru_translator.conftest import tiny_model

SOURCES = [[5, 6, 7, 8], [9, 10], [11, 12, 13, 14, 15, 16, 17], [20]]
LIMITS = [8, 4, 14, 2]


@pytest.fixture(scope="module")
def model():
    return tiny_model(seed=2, std=0.3)


def close(actual, expected, tol: float = 1e-5) -> None:
    """Nested lists of floats equal within ``tol``."""
    torch.testing.assert_close(torch.tensor(actual, dtype=torch.float64), torch.tensor(expected, dtype=torch.float64),
                               atol=tol, rtol=0)


def run_greedy(model, **kw):
    with torch.inference_mode():
        return greedy_search(model, SOURCES, LIMITS, **kw)


def run_beam(model, sources=SOURCES, limits=LIMITS, **kw):
    with torch.inference_mode():
        return beam_search(model, sources, limits, **kw)


def test_greedy_golden(model):
    hyps = run_greedy(model, alpha=1.0)
    assert [h.tokens for h in hyps] == GOLDEN_GREEDY_TOKENS
    assert [round(h.log_probability, 4) for h in hyps] == pytest.approx(GOLDEN_GREEDY_LOGP, abs=2e-3)


def test_beam_golden(model):
    hyps = run_beam(model, beam_size=4, n_best=2, alpha=0.6)
    assert [[h.tokens for h in n] for n in hyps] == GOLDEN_BEAM_TOKENS
    close([[h.score for h in n] for n in hyps], GOLDEN_BEAM_SCORES, 2e-3)


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_beam_size_one_is_greedy(model, alpha):
    greedy = run_greedy(model, alpha=alpha, return_attention=True)
    beam = run_beam(model, beam_size=1, alpha=alpha, return_attention=True)
    for g, (b,) in zip(greedy, beam, strict=True):
        assert b.tokens == g.tokens
        assert b.log_probability == pytest.approx(g.log_probability, abs=1e-5)
        assert b.score == pytest.approx(g.score, abs=1e-5)
        close(b.attention, g.attention)


def test_batched_beam_equals_one_source_at_a_time(model):
    batched = run_beam(model, beam_size=5, n_best=5, alpha=1.0, return_attention=True)
    for i, source in enumerate(SOURCES):
        (alone,) = run_beam(model, [source], [LIMITS[i]], beam_size=5, n_best=5, alpha=1.0, return_attention=True)
        assert [h.tokens for h in batched[i]] == [h.tokens for h in alone]
        assert [h.score for h in batched[i]] == pytest.approx([h.score for h in alone], abs=1e-5)
        close(batched[i][0].attention, alone[0].attention)


def test_n_best_is_ordered_by_score_and_scores_follow_the_length_penalty(model):
    for hyps in run_beam(model, beam_size=6, n_best=6, alpha=0.8):
        assert len(hyps) == 6
        scores = [h.score for h in hyps]
        assert scores == sorted(scores, reverse=True)
        assert len({tuple(h.tokens) for h in hyps}) == 6
        for h in hyps:
            assert h.score == pytest.approx(h.log_probability / length_penalty(len(h.tokens) + 1, 0.8))
            assert EOS_ID not in h.tokens and PAD_ID not in h.tokens


def test_attention_rows_sum_to_one_over_the_real_source(model):
    for hyps in run_beam(model, beam_size=3, n_best=3, return_attention=True):
        for h in hyps:
            assert len(h.attention) == len(h.tokens)
    for source, hyps in zip(SOURCES, run_beam(model, beam_size=3, return_attention=True), strict=True):
        for row in hyps[0].attention:
            assert len(row) == len(source)
            assert sum(row) == pytest.approx(1.0, abs=1e-5)
            assert min(row) >= 0.0


def test_max_length_is_respected(model):
    limits = [1, 2, 3, 1]
    for hyps, limit in zip(run_beam(model, limits=limits, beam_size=3, n_best=3), limits, strict=True):
        assert all(len(h.tokens) <= limit for h in hyps)
    with torch.inference_mode():
        assert all(len(h.tokens) <= lim for h, lim in zip(greedy_search(model, SOURCES, limits), limits, strict=True))


def test_keys_are_computed_once_per_source(model):
    calls = []
    handle = model.decoder.attention.key.register_forward_hook(lambda m, i, o: calls.append(o.shape))
    try:
        run_beam(model, beam_size=4)
    finally:
        handle.remove()
    assert calls == [torch.Size([len(SOURCES), max(map(len, SOURCES)), 24])]


def test_pad_sources_rejects_empty():
    src, lengths = pad_sources([[4, 5], [6]])
    assert src.tolist() == [[4, 5], [6, PAD_ID]] and lengths.tolist() == [2, 1]
    with pytest.raises(ValueError):
        pad_sources([[4], []])


# Recorded from tiny_model(seed=2, std=0.3) (torch 2.13 CPU); tokens must match exactly.
GOLDEN_GREEDY_TOKENS = [[6, 14, 6, 14, 14, 14, 14, 14], [6, 6, 6], [6, 6, 6, 6, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14],
                        [6, 14]]
GOLDEN_GREEDY_LOGP = [-26.6377, -11.4194, -37.1827, -9.4777]
GOLDEN_BEAM_TOKENS = [[[6, 6, 38, 38, 14, 14, 14, 14], [6, 6, 38, 38, 38, 14, 14, 14]], [[], [6, 6]], [[], [6, 6, 6]],
                      [[], [6, 14]]]
GOLDEN_BEAM_SCORES = [[-15.4261, -15.436], [-3.0289, -7.3156], [-3.1622, -7.9955], [-3.3826, -7.9752]]
