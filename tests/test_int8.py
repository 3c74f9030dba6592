"""rnnserve.host.int8: int8 Linear layers on plain tensors (torch._int_mm), no deprecated quantization API."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from rnnserve.host.int8 import Int8Linear, quantize_linears, quantize_rows


def test_quantize_rows_round_trips_within_half_a_step_and_keeps_zero_rows():
    x = torch.randn(5, 33)
    x[2] = 0.0
    q, scale = quantize_rows(x)
    assert q.dtype == torch.int8 and scale.shape == (5, 1)
    assert int(q.abs().max()) == 127  # each non-zero row uses the full range
    assert torch.all((q.float() * scale - x).abs() <= scale / 2 + 1e-7)
    assert torch.equal(q[2], torch.zeros(33, dtype=torch.int8))


@pytest.mark.parametrize("bias", [True, False])
def test_int8_linear_stays_close_to_float32(bias):
    torch.manual_seed(0)
    linear = nn.Linear(96, 200, bias=bias)
    x = torch.randn(3, 7, 96)  # any leading shape
    layer = Int8Linear.from_linear(linear)
    with torch.no_grad():
        want, got = linear(x), layer(x)
    assert got.shape == want.shape == (3, 7, 200) and got.dtype == torch.float32
    # two roundings of at most half a step each: relative error of a few tenths of a percent
    assert (got - want).abs().max() < 0.02 * want.abs().max()
    assert layer.weight.dtype == torch.int8 and "int8" in repr(layer)


def test_a_row_does_not_depend_on_its_batch_neighbours():
    """Per-row scales and exact int32 sums: a row's output is the same alone or among others."""
    torch.manual_seed(1)
    layer = Int8Linear.from_linear(nn.Linear(64, 128))
    batch = torch.randn(16, 64)
    batch[5] *= 100  # a loud neighbour would change a per-tensor scale
    with torch.no_grad():
        together = layer(batch)
        alone = torch.cat([layer(batch[i:i + 1]) for i in range(16)])
    assert torch.equal(together, alone)


def test_quantize_linears_swaps_every_linear_of_a_copy_without_deprecation_warnings():
    model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Sequential(nn.Linear(16, 4)), nn.GRUCell(4, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch.ao.quantization would warn
        quantized = quantize_linears(model)
    assert isinstance(quantized[0], Int8Linear) and isinstance(quantized[2][0], Int8Linear)
    assert isinstance(quantized[3], nn.GRUCell)  # recurrent kernels stay float
    assert isinstance(model[0], nn.Linear)  # the original is untouched
    assert isinstance(quantize_linears(nn.Linear(3, 2)), Int8Linear)
    x = torch.randn(2, 8)
    with torch.no_grad():
        assert (quantized[:3](x) - model[:3](x)).abs().max() < 0.05


def test_int8_copy_uses_the_kernels_asked_for(monkeypatch: pytest.MonkeyPatch):
    from rnnserve.edge.errors import ConfigurationError
    from rnnserve.host.int8 import int8_copy, int8_kernels

    model = nn.Sequential(nn.Linear(8, 16), nn.LSTM(16, 16))
    monkeypatch.setenv("RNNSERVE_INT8_KERNELS", "onednn")
    onednn = int8_copy(model, (nn.LSTM,))
    assert isinstance(onednn[0], Int8Linear) and type(onednn[1]) is nn.LSTM
    monkeypatch.setenv("RNNSERVE_INT8_KERNELS", "fbgemm")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the deprecation warnings are silenced where they are expected
        fbgemm = int8_copy(model, (nn.LSTM,))
    assert "quantized" in type(fbgemm[0]).__module__ and "quantized" in type(fbgemm[1]).__module__
    monkeypatch.setenv("RNNSERVE_INT8_KERNELS", "tpu")
    with pytest.raises(ConfigurationError, match="RNNSERVE_INT8_KERNELS must be one of"):
        int8_kernels()
    monkeypatch.delenv("RNNSERVE_INT8_KERNELS")
    assert int8_kernels() == "fbgemm"  # this torch has the engine
