"""The RNN family (rnnserve.rnn_family): the study notes' worked examples by hand, torch parity, BPTT."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from rnnserve.plugin_api import GRU, LSTM, Bidirectional, Elman, Jordan, PeepholeLSTM, Recurrent


def identity(x: torch.Tensor) -> torch.Tensor:
    return x


def set_weights(module: nn.Module, **values: list) -> None:
    """Overwrite the named parameters with ``values`` (all others become zero)."""
    with torch.no_grad():
        for name, parameter in module.named_parameters():
            parameter.copy_(torch.tensor(values[name]) if name in values else torch.zeros_like(parameter))


def sequence(*steps: float | tuple[float, ...]) -> torch.Tensor:
    """A batch of one sequence: [1, T, I] (a float per step means I = 1)."""
    return torch.tensor([[s if isinstance(s, tuple) else (s,) for s in steps]], dtype=torch.float32)


def run_steps(rnn: nn.Module, x: torch.Tensor) -> list:
    """The state after every step (one call per step, carrying the state)."""
    states, state = [], None
    for t in range(x.shape[1]):
        _, state = rnn(x[:, t: t + 1], state)
        states.append(state)
    return states


# --- worked examples, by hand ---------------------------------------------------------------

def test_golden_elman_linear_network():
    """W_ih = W_hh = all ones [2, 2], no bias, identity activation, readout all ones:
    h1 = W(1,1) = (2,2); h2 = W(1,1) + W(2,2) = (2,2)+(4,4) = (6,6); h3 = W(2,2) + W(6,6) = (4,4)+(12,12)
    = (16,16); the readout doubles: (4,4), (12,12), (32,32)."""
    rnn = Elman(2, 2, activation=identity)
    set_weights(rnn, weight_ih_l0=[[1.0, 1.0], [1.0, 1.0]], weight_hh_l0=[[1.0, 1.0], [1.0, 1.0]])
    readout = nn.Linear(2, 2, bias=False)
    nn.init.ones_(readout.weight)
    with torch.no_grad():
        h, last = rnn(sequence((1.0, 1.0), (1.0, 1.0), (2.0, 2.0)))
    assert h[0].tolist() == [[2.0, 2.0], [6.0, 6.0], [16.0, 16.0]]
    assert readout(h)[0].tolist() == [[4.0, 4.0], [12.0, 12.0], [32.0, 32.0]]
    assert last.tolist() == [[[16.0, 16.0]]]


def test_golden_elman_tanh():
    """h_t = tanh(x_t + 0.5 h_{t-1} + 0.25): h1 = tanh(1.25) = 0.848284; h2 = tanh(0 + 0.424142 + 0.25)
    = tanh(0.674142) = 0.587698."""
    rnn = Elman(1, 1)
    set_weights(rnn, weight_ih_l0=[[1.0]], weight_hh_l0=[[0.5]], bias_ih_l0=[0.25])
    with torch.no_grad():
        h, _ = rnn(sequence(1.0, 0.0))
    assert h.flatten().tolist() == pytest.approx([0.848284, 0.587698], abs=1e-6)


def test_golden_jordan_linear_feedback():
    """Identity activations, h_t = x_t + y_{t-1}, y_t = 2 h_t: h = 1, 1+2 = 3, 1+6 = 7; y = 2, 6, 14."""
    rnn = Jordan(1, 1, 1, activation=identity, output_activation=identity)
    set_weights(rnn, weight_ih=[[1.0]], weight_yh=[[1.0]], weight_hy=[[2.0]])
    with torch.no_grad():
        z, y = rnn(sequence(1.0, 1.0, 1.0))
    assert z.flatten().tolist() == [2.0, 6.0, 14.0]
    assert y.tolist() == [[14.0]]


def test_golden_jordan_softmax_feedback():
    """h_t = x_t + (y_a - y_b) (identity), z_t = (h_t, -h_t), y_t = softmax(z_t) = (s(2h), s(-2h)), s the sigmoid.
    t1: x = 0, y0 = 0: h = 0, y = (1/2, 1/2). t2: x = ln(3)/2: h = ln(3)/2, y = (s(ln 3), .) = (3/4, 1/4).
    t3: x = 0: h = 3/4 - 1/4 = 1/2, y = (s(1), s(-1)) = (0.731059, 0.268941)."""
    rnn = Jordan(1, 1, 2, activation=identity)
    set_weights(rnn, weight_ih=[[1.0]], weight_yh=[[1.0, -1.0]], weight_hy=[[1.0], [-1.0]])
    with torch.no_grad():
        ys = [y[0].tolist() for y in run_steps(rnn, sequence(0.0, math.log(3) / 2, 0.0))]
    assert ys == [pytest.approx(y, abs=1e-6) for y in ([0.5, 0.5], [0.75, 0.25], [0.731059, 0.268941])]


def test_golden_lstm_memory_cell():
    """Cell input x1, input gate sigmoid(100*x2 - 10), forget gate sigmoid(100*x2 + 10), output gate
    sigmoid(100*x3 - 10), identity cell and output activations: a gated memory. x2 = 1 writes
    (c = c + x1), x2 = 0 keeps, x2 = -1 erases; x3 = 1 reads c out."""
    rnn = LSTM(3, 1, activation=identity, output_activation=identity)
    set_weights(rnn, weight_ih_l0=[[0.0, 100.0, 0.0],   # i
                                   [0.0, 100.0, 0.0],   # f
                                   [1.0, 0.0, 0.0],     # g (cell input)
                                   [0.0, 0.0, 100.0]],  # o
                bias_ih_l0=[-10.0, 10.0, 0.0, -10.0])
    inputs = sequence((1, 0, 0), (3, 1, 0), (2, 0, 0), (4, 1, 0), (2, 0, 0), (1, 0, 1), (3, -1, 0), (6, 1, 0),
                      (1, 0, 1))
    with torch.no_grad():
        states = run_steps(rnn, inputs)
        h, _ = rnn(inputs)
    assert [c.item() for _, c in states] == pytest.approx([0, 3, 3, 7, 7, 7, 0, 6, 6], abs=0.01)
    assert h.flatten().tolist() == pytest.approx([0, 0, 0, 0, 0, 7, 0, 0, 6], abs=0.01)


def test_golden_peephole_lstm():
    """Only g reads x (g = x, identity), all gate weights 0, peepholes p_i = p_f = p_o = ln 3, identity output.
    t1, c0 = 0: i = f = s(0) = 1/2, c1 = 0 + 2/2 = 1; o = s(ln 3 * 1) = 3/4, h1 = 3/4.
    t2: i = f = s(ln 3) = 3/4, c2 = 3/4 + 3/4 * 2 = 2.25; o = s(2.25 ln 3) = 3^2.25 / (3^2.25 + 1)
    = 11.844666 / 12.844666 = 0.922147, h2 = 2.25 * 0.922147 = 2.074830."""
    rnn = PeepholeLSTM(1, 1, activation=identity, output_activation=identity)
    set_weights(rnn, weight_ih_l0=[[0.0], [0.0], [1.0], [0.0]], weight_peephole_l0=[[math.log(3)]] * 3)
    with torch.no_grad():
        states = run_steps(rnn, sequence(2.0, 2.0))
    assert [(h.item(), c.item()) for h, c in states] == [pytest.approx((0.75, 1.0)),
                                                         pytest.approx((2.074830, 2.25), abs=1e-6)]


def test_golden_gru():
    """Only n reads x and h (weights 1), b_iz = ln 3, identity candidate: r = s(0) = 1/2, z = s(ln 3) = 3/4,
    n = x + h/2, h' = n/4 + 3h/4. x = 4, 4, 0: h1 = 4/4 = 1; h2 = (4 + 0.5)/4 + 0.75 = 1.875;
    h3 = 0.9375/4 + 1.40625 = 1.640625."""
    rnn = GRU(1, 1, activation=identity)
    set_weights(rnn, weight_ih_l0=[[0.0], [0.0], [1.0]], weight_hh_l0=[[0.0], [0.0], [1.0]],
                bias_ih_l0=[0.0, math.log(3), 0.0])
    with torch.no_grad():
        h, _ = rnn(sequence(4.0, 4.0, 0.0))
    assert h.flatten().tolist() == pytest.approx([1.0, 1.875, 1.640625], abs=1e-6)


def test_golden_bidirectional():
    """Two linear Elman networks h_t = x_t + h_{t-1}: forwards over (1, 2, 3) the running sums 1, 3, 6;
    backwards 6, 5, 3 (from the end); each step's output is the pair."""
    halves = [Elman(1, 1, activation=identity) for _ in range(2)]
    for half in halves:
        set_weights(half, weight_ih_l0=[[1.0]], weight_hh_l0=[[1.0]])
    with torch.no_grad():
        out, (ahead, back) = Bidirectional(*halves)(sequence(1.0, 2.0, 3.0))
    assert out[0].tolist() == [[1.0, 6.0], [3.0, 5.0], [6.0, 3.0]]
    assert (ahead.item(), back.item()) == (6.0, 6.0)


# --- the same function as torch's modules, gradients included ----------------------------

PAIRS = [(Elman, nn.RNN), (LSTM, nn.LSTM), (GRU, nn.GRU)]


def random_state(rnn: Recurrent, batch: int) -> torch.Tensor | tuple[torch.Tensor, ...]:
    state = rnn.initial_state(batch)
    return tuple(torch.randn_like(s) for s in state) if isinstance(state, tuple) else torch.randn_like(state)


@pytest.mark.parametrize(("family", "reference"), PAIRS, ids=lambda c: c.__name__)
def test_matches_torch_outputs_states_and_gradients(family: type[Recurrent], reference: type[nn.Module]):
    torch.manual_seed(0)
    theirs = reference(3, 4, num_layers=2, batch_first=True)
    ours = family(3, 4, num_layers=2)
    ours.load_state_dict(theirs.state_dict())  # the same parameter names and shapes
    x = torch.randn(2, 6, 3)
    state = random_state(ours, 2)
    out, final = ours(x, state)
    want, want_final = theirs(x, state)
    torch.testing.assert_close(out, want)
    for got, expected in zip(final if isinstance(final, tuple) else (final,),
                             want_final if isinstance(want_final, tuple) else (want_final,), strict=True):
        torch.testing.assert_close(got, expected)
    out.square().sum().backward()
    want.square().sum().backward()
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, msg=name)


def test_peephole_lstm_without_peepholes_is_torch_lstm():
    torch.manual_seed(1)
    theirs = nn.LSTM(3, 4, num_layers=2, batch_first=True)
    ours = PeepholeLSTM(3, 4, num_layers=2)
    missing = ours.load_state_dict(theirs.state_dict(), strict=False).missing_keys
    assert missing == ["weight_peephole_l0", "weight_peephole_l1"]
    x = torch.randn(2, 5, 3)
    with torch.no_grad():
        for name in missing:
            getattr(ours, name).zero_()
        torch.testing.assert_close(ours(x)[0], theirs(x)[0])
        ours.weight_peephole_l1.fill_(0.5)
        assert not torch.allclose(ours(x)[0], theirs(x)[0])


@pytest.mark.parametrize(("family", "reference"), PAIRS, ids=lambda c: c.__name__)
def test_bidirectional_matches_torch(family: type[Recurrent], reference: type[nn.Module]):
    """One layer of torch's bidirectional=True: its *_reverse weights are the backward member's."""
    torch.manual_seed(2)
    theirs = reference(3, 4, batch_first=True, bidirectional=True)
    weights = theirs.state_dict()
    halves = [family(3, 4), family(3, 4)]
    halves[0].load_state_dict({k: v for k, v in weights.items() if not k.endswith("_reverse")})
    halves[1].load_state_dict({k.removesuffix("_reverse"): v for k, v in weights.items() if k.endswith("_reverse")})
    x = torch.randn(2, 5, 3)
    with torch.no_grad():
        out, (ahead, back) = Bidirectional(*halves)(x)
        want, want_final = theirs(x)
    torch.testing.assert_close(out, want)
    h_n = want_final[0] if isinstance(want_final, tuple) else want_final  # [2 directions, B, H]
    torch.testing.assert_close(torch.cat([ahead[0] if isinstance(ahead, tuple) else ahead,
                                          back[0] if isinstance(back, tuple) else back]), h_n)


def test_bidirectional_is_forward_and_reversed_backward_concatenated():
    """Any two members, even of different kinds and widths: [fwd(x) ; flip(bwd(flip(x)))]."""
    torch.manual_seed(3)
    ahead, back = GRU(3, 4), Elman(3, 2, num_layers=2)
    x = torch.randn(2, 5, 3)
    with torch.no_grad():
        out, _ = Bidirectional(ahead, back)(x)
        torch.testing.assert_close(out, torch.cat([ahead(x)[0], back(x.flip(1))[0].flip(1)], dim=-1))
    assert out.shape == (2, 5, 6)


def test_jordan_is_the_example_plugins_network():
    """The tutorial's JordanRNN (docs/plugins.md) is an embedding followed by this Jordan network."""
    from rnnserve_jordan_lm.model import JordanConfig, JordanRNN

    torch.manual_seed(4)
    example = JordanRNN(JordanConfig(vocab_size=7, embedding_dim=3, hidden_size=5))
    ours = Jordan(3, 5, 7)
    ours.load_state_dict({"weight_ih": example.W.weight, "bias_ih": example.W.bias, "weight_yh": example.U.weight,
                          "weight_hy": example.V.weight, "bias_hy": example.V.bias})
    tokens = torch.randint(0, 7, (2, 6))
    with torch.no_grad():
        logits, y = example(tokens, example.initial_state(2))
        z, y_ours = ours(example.embedding(tokens))
    torch.testing.assert_close(z, logits)
    torch.testing.assert_close(y_ours, y)


# --- shapes, carried state, BPTT --------------------------------------------------------------

@pytest.mark.parametrize("family", [Elman, LSTM, PeepholeLSTM, GRU], ids=lambda c: c.__name__)
def test_shapes_and_the_state_carries_across_calls(family: type[Recurrent]):
    torch.manual_seed(5)
    rnn = family(3, 4, num_layers=2)
    x = torch.randn(2, 7, 3)
    with torch.no_grad():
        out, final = rnn(x)
        first, middle = rnn(x[:, :3])
        rest, resumed = rnn(x[:, 3:], middle)
    assert out.shape == (2, 7, 4)
    parts = final if isinstance(final, tuple) else (final,)
    assert [p.shape for p in parts] == [(2, 2, 4)] * (2 if rnn.has_memory else 1)
    torch.testing.assert_close(torch.cat([first, rest], dim=1), out)
    torch.testing.assert_close(resumed, final)


@pytest.mark.parametrize("make", [lambda: Elman(3, 4, num_layers=2), lambda: LSTM(3, 4, num_layers=2),
                                  lambda: PeepholeLSTM(3, 4), lambda: GRU(3, 4), lambda: Jordan(3, 4, 5),
                                  lambda: Bidirectional(LSTM(3, 4), GRU(3, 4))],
                         ids=["elman", "lstm", "peephole", "gru", "jordan", "bidirectional"])
def test_bptt_reaches_every_parameter_and_the_first_step(make):
    """The last output's gradient reaches x_1 back through time; a loss on the outputs reaches every weight."""
    torch.manual_seed(6)
    rnn = make()
    x = torch.randn(2, 4, 3, requires_grad=True)
    out, _ = rnn(x)
    (through_time,) = torch.autograd.grad(out[:, -1].square().sum(), x, retain_graph=True)
    assert bool((through_time[:, 0].abs() > 0).any())
    out.square().sum().backward()
    for name, parameter in rnn.named_parameters():
        assert parameter.grad is not None and bool(parameter.grad.abs().sum() > 0), name


def test_bptt_golden_vanishing_gradient_of_elman():
    """Linear Elman h_t = x_t + 0.5 h_{t-1}: dh_5/dx_t = 0.5^(5-t), each step back multiplies by W_hh."""
    rnn = Elman(1, 1, activation=identity)
    set_weights(rnn, weight_ih_l0=[[1.0]], weight_hh_l0=[[0.5]])
    x = sequence(1.0, 1.0, 1.0, 1.0, 1.0).requires_grad_(True)
    _, h = rnn(x)
    h.sum().backward()
    assert x.grad.flatten().tolist() == [0.0625, 0.125, 0.25, 0.5, 1.0]


def test_bptt_lstm_memory_keeps_the_gradient():
    """The constant error carousel: with the forget gate open (f = s(20) ~ 1) and i = s(0) = 1/2,
    c_20 = sum_t x_t / 2, so dc_20/dx_1 = 1/2, where the Elman net above gives 0.5^19 ~ 1.9e-6."""
    rnn = LSTM(1, 1, activation=identity, output_activation=identity)
    set_weights(rnn, weight_ih_l0=[[0.0], [0.0], [1.0], [0.0]], bias_ih_l0=[0.0, 20.0, 0.0, 0.0])
    x = torch.ones(1, 20, 1, requires_grad=True)
    _, (_, c) = rnn(x)
    c.sum().backward()
    assert x.grad[0, 0].item() == pytest.approx(0.5, abs=1e-6)
