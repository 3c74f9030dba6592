"""Cell math: golden hand-built networks, batched vs unbatched steps, prefill vs step-by-step."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rnnserve_plugins.char_lstm.cells import CELL_KINDS, FusedLayer
from rnnserve_plugins.char_lstm.model import CharRNN, CharRNNConfig


def tiny(cell: str, seed: int = 0) -> CharRNN:
    torch.manual_seed(seed)
    return CharRNN(CharRNNConfig(vocab_size=11, cell=cell, embedding_dim=5, hidden_size=7, num_layers=2,
                                 dropout=0.0)).eval()


def random_state(model: CharRNN, batch: int) -> tuple[torch.Tensor, ...]:
    return tuple(torch.randn_like(s) for s in model.initial_state(batch))


def test_golden_elman_linear_network():
    """All weights 1, no bias, linear activations, memory 0: (1,1),(1,1),(2,2) -> (4,4),(12,12),(32,32)."""
    ones = torch.ones(2, 2)
    cell = FusedLayer.from_weights("rnn", ones, ones, cell_activation="identity")
    readout = nn.Linear(2, 2, bias=False)
    nn.init.ones_(readout.weight)
    h = torch.zeros(1, 2)
    outputs = []
    for x in ([1.0, 1.0], [1.0, 1.0], [2.0, 2.0]):
        h, _ = cell(torch.tensor([x]), h, None)
        outputs.append(readout(h)[0].tolist())
    assert outputs == [[4.0, 4.0], [12.0, 12.0], [32.0, 32.0]]


def test_golden_lstm_memory_cell():
    """Cell input x1, input gate sigmoid(100*x2 - 10), forget gate sigmoid(100*x2 + 10), output gate
    sigmoid(100*x3 - 10), identity cell and output activations: a gated memory."""
    weight_ih = torch.tensor([[0.0, 100.0, 0.0],   # i
                              [0.0, 100.0, 0.0],   # f
                              [1.0, 0.0, 0.0],     # g (cell input)
                              [0.0, 0.0, 100.0]])  # o
    bias = torch.tensor([-10.0, 10.0, 0.0, -10.0])
    cell = FusedLayer.from_weights("lstm", weight_ih, torch.zeros(4, 1), bias_ih=bias,
                                   cell_activation="identity", output_activation="identity")
    inputs = [(1, 0, 0), (3, 1, 0), (2, 0, 0), (4, 1, 0), (2, 0, 0), (1, 0, 1), (3, -1, 0), (6, 1, 0), (1, 0, 1)]
    h, c = torch.zeros(1, 1), torch.zeros(1, 1)
    memory, outputs = [], []
    with torch.no_grad():
        for x in inputs:
            h, c = cell(torch.tensor([x], dtype=torch.float32), h, c)
            memory.append(c.item())
            outputs.append(h.item())
    assert memory == pytest.approx([0, 3, 3, 7, 7, 7, 0, 6, 6], abs=0.01)
    assert outputs == pytest.approx([0, 0, 0, 0, 0, 7, 0, 0, 6], abs=0.01)


@pytest.mark.parametrize("cell", CELL_KINDS)
def test_batched_step_equals_unbatched(cell: str):
    model = tiny(cell)
    step = model.fused_step()
    torch.manual_seed(1)
    tokens = torch.randint(0, 11, (5,))
    state = random_state(model, 5)
    with torch.no_grad():
        logits, new_state = step(tokens, state)
        for b in range(5):
            one_logits, one_state = step(tokens[b: b + 1], tuple(s[:, b: b + 1] for s in state))
            torch.testing.assert_close(one_logits[0], logits[b], atol=1e-6, rtol=1e-5)
            for got, want in zip(one_state, new_state, strict=True):
                torch.testing.assert_close(got[:, 0], want[:, b], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("cell", CELL_KINDS)
def test_prefill_equals_step_by_step(cell: str):
    """The whole-sequence path (nn.LSTM/GRU/RNN or PeepholeLSTM) and the fused step agree."""
    model = tiny(cell, seed=2)
    step = model.fused_step()
    torch.manual_seed(3)
    tokens = torch.randint(0, 11, (3, 17))
    state = random_state(model, 3)
    with torch.no_grad():
        logits, final = model(tokens, state)
        stepped = []
        for t in range(tokens.shape[1]):
            out, state = step(tokens[:, t], state)
            stepped.append(out)
    torch.testing.assert_close(torch.stack(stepped, dim=1), logits, atol=1e-5, rtol=1e-5)
    for got, want in zip(state, final, strict=True):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_state_shapes_per_cell():
    for cell in CELL_KINDS:
        model = tiny(cell)
        state = model.initial_state(4)
        assert len(state) == len(model.state_batch_dims)
        assert all(s.shape == (2, 4, 7) for s in state)


def test_peephole_weights_matter():
    model = tiny("peephole-lstm", seed=4)
    tokens = torch.randint(0, 11, (2, 9), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before, _ = model(tokens, model.initial_state(2))
        model.rnn.weight_peephole_l0.add_(1.0)
        after, _ = model(tokens, model.initial_state(2))
    assert not torch.allclose(before, after)


def test_unknown_cell_rejected():
    with pytest.raises(ValueError, match="unknown cell"):
        CharRNNConfig(vocab_size=5, cell="transformer")
