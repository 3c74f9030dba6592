"""Unit tests of the batched sampler, the penalty and the per-sequence random streams."""

from __future__ import annotations

import torch

from rnnserve.runtime.sampling import UniformBank, apply_repetition_penalty, sample, seen_mask


def _row_params(n: int, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0):
    return (torch.full((n,), temperature), torch.full((n,), top_k, dtype=torch.long), torch.full((n,), top_p))


def test_greedy_rows_take_the_argmax() -> None:
    logits = torch.tensor([[0.1, 3.0, 0.2], [5.0, 0.0, 1.0]])
    t, k, p = _row_params(2, temperature=0.0)
    assert sample(logits, t, k, p, torch.rand(2, dtype=torch.float64)).tolist() == [1, 0]


def test_top_k_one_and_tiny_top_p_are_greedy_whatever_the_draw() -> None:
    logits = torch.randn(8, 50, generator=torch.Generator().manual_seed(0))
    for u in (0.0, 0.5, 0.999999):
        uniforms = torch.full((8,), u, dtype=torch.float64)
        assert torch.equal(sample(logits, *_row_params(8, top_k=1), uniforms), logits.argmax(-1))
        assert torch.equal(sample(logits, *_row_params(8, top_p=1e-6), uniforms), logits.argmax(-1))


def test_extreme_logits_and_temperatures_still_pick_a_real_token() -> None:
    """A temperature or repetition penalty of 1e-40 (both in range) makes logits / t infinite;
    found by the request fuzzer as an out-of-range index (a NaN softmax kept no token)."""
    logits = torch.tensor([[0.5, 2.0, -1.0, 2.0 - 1e-3], [float("inf"), 1.0, float("nan"), float("-inf")],
                           [float("-inf"), float("-inf"), 3.0, float("-inf")], [float("nan")] * 4])
    for temperature in (1e-40, 1e-6, 1.0, 100.0):
        for u in (0.0, 0.5, 0.999999):
            tokens = sample(logits, *_row_params(4, temperature=temperature), torch.full((4,), u, dtype=torch.float64))
            assert ((tokens >= 0) & (tokens < 4)).all(), (temperature, u, tokens)
            assert tokens[1] == 0 and tokens[2] == 2
            if temperature <= 1e-6:
                assert tokens[0] == 1  # a near-zero temperature is greedy
    penalised = apply_repetition_penalty(torch.tensor([[3.0, -2.0, 1.0]]), torch.tensor([1e-40]),
                                         torch.tensor([[True, True, False]]))
    assert int(sample(penalised, *_row_params(1), torch.tensor([0.7], dtype=torch.float64))) == 0


def test_top_k_never_picks_outside_the_k_best() -> None:
    logits = torch.randn(1, 30, generator=torch.Generator().manual_seed(1))
    best = set(logits[0].topk(3).indices.tolist())
    for u in torch.linspace(0, 0.999, 200, dtype=torch.float64):
        token = sample(logits, *_row_params(1, top_k=3), u.reshape(1))
        assert int(token) in best


def test_inverse_cdf_matches_the_softmax_distribution() -> None:
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0]])
    draws = torch.rand(20000, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    tokens = sample(logits.expand(20000, -1), *_row_params(20000, temperature=1.0), draws)
    freq = torch.bincount(tokens, minlength=4).double() / 20000
    assert torch.allclose(freq, torch.softmax(logits[0].double(), -1), atol=0.015)


def test_rows_are_independent_of_their_batch_neighbours() -> None:
    gen = torch.Generator().manual_seed(4)
    logits = torch.randn(6, 40, generator=gen)
    temps = torch.tensor([0.0, 0.7, 1.0, 1.3, 0.5, 2.0])
    top_k = torch.tensor([0, 5, 0, 10, 1, 0])
    top_p = torch.tensor([1.0, 0.9, 0.5, 1.0, 1.0, 0.95])
    uniforms = torch.rand(6, generator=gen, dtype=torch.float64)
    batched = sample(logits, temps, top_k, top_p, uniforms)
    for i in range(6):
        alone = sample(logits[i : i + 1], temps[i : i + 1], top_k[i : i + 1], top_p[i : i + 1], uniforms[i : i + 1])
        assert int(alone) == int(batched[i])


def test_repetition_penalty_lowers_seen_tokens_only() -> None:
    logits = torch.tensor([[2.0, -1.0, 2.0, -1.0]])
    seen = seen_mask([{0, 1}], 4)
    out = apply_repetition_penalty(logits, torch.tensor([2.0]), seen)
    assert out.tolist() == [[1.0, -2.0, 2.0, -1.0]]


def _draws(bank: UniformBank, steps: int) -> torch.Tensor:
    return torch.stack([bank.draw() for _ in range(steps)], dim=1)  # [rows, steps]


def test_a_rows_draws_depend_only_on_its_seed_not_on_its_batch() -> None:
    alone = _draws(UniformBank.seeded([7]), 200)[0]
    batch = UniformBank.seeded([8, 7, 9])
    _draws(batch, 5)
    late = UniformBank.seeded([7])  # joins five steps later, beside rows mid-stream
    both = UniformBank.concat([batch, late])
    drawn = _draws(both, 195)
    assert torch.equal(drawn[1], alone[5:])
    assert torch.equal(drawn[3], alone[:195])  # past several refills, whatever the neighbours' phase
    assert not torch.equal(drawn[0], alone[5:])


def test_selecting_rows_keeps_their_streams() -> None:
    seeds = [1, 2, 3, 4]
    full = _draws(UniformBank.seeded(seeds), 150)
    bank = UniformBank.seeded(seeds)
    first = _draws(bank, 70)
    bank = bank.select(torch.tensor([3, 1]))
    rest = _draws(bank, 80)
    assert torch.equal(torch.cat([first[[3, 1]], rest], dim=1), full[[3, 1]])
    assert ((full >= 0) & (full < 1)).all()


def test_skipping_the_unused_filters_picks_the_same_tokens() -> None:
    """top_k=None (no row limits it) and some_greedy=False (no greedy row) only skip work."""
    generator = torch.Generator().manual_seed(7)
    for _ in range(50):
        logits = torch.randn(16, 40, generator=generator) * 3
        temperature = torch.rand(16, generator=generator) + 0.2
        top_p = torch.where(torch.rand(16, generator=generator) < 0.5, torch.ones(16), torch.full((16,), 0.9))
        uniforms = torch.rand(16, generator=generator, dtype=torch.float64)
        full = sample(logits, temperature, torch.zeros(16, dtype=torch.long), top_p, uniforms)
        assert torch.equal(sample(logits, temperature, None, top_p, uniforms, some_greedy=False), full)
