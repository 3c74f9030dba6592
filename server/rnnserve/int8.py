"""int8 inference for ``nn.Linear`` layers on plain tensors: the supported path since torch
deprecated ``torch.ao.quantization`` (quantized tensor types, ``quantize_dynamic``).

:class:`Int8Linear` holds a weight [N, K] as int8 with one scale per output channel
(symmetric, ``max |w_n| / 127``). Each call quantizes its input [M, K] per row the same way
(dynamic quantization: the scale follows the data, so no calibration is needed), multiplies
int8 x int8 with int32 accumulation (``torch._int_mm``: oneDNN's VNNI / AMX kernels where
the CPU has them, AVX2 elsewhere) and rescales to float32:

    y[m, n] = (sum_k xq[m, k] * wq[n, k]) * sx[m] * sw[n] + b[n]

Per-row activation scales lose less than ``quantize_dynamic``'s one scale per tensor: a
row's rounding does not depend on the other rows of its batch, only on itself.

:func:`quantize_linears` swaps every ``nn.Linear`` of a module (a copy) for an
``Int8Linear``; recurrent kernels (``nn.LSTM``/``nn.GRU`` over whole sequences) stay in
their float dtype. Measured against the deprecated path: ``python -m benchmarks.int8``.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

#: The precision name :func:`rnnserve.registry.weights_precision` reports for a module holding these.
PRECISION = "int8"
_QMAX = 127.0
#: Smallest scale: an all-zero row quantizes to zeros instead of dividing by zero.
_TINY = 1e-12


def quantize_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-row int8: x [M, K] float -> (int8 [M, K], scale [M, 1] float32)."""
    scale = x.abs().amax(dim=1, keepdim=True).clamp_min(_TINY) / _QMAX
    return torch.round(x / scale).to(torch.int8), scale


class Int8Linear(nn.Module):
    """``nn.Linear`` with int8 weights [N, K] (per-output-channel scales [N]) and per-row dynamic
    int8 activations; input [..., K] float32, output [..., N] float32."""

    precision = PRECISION

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
        super().__init__()
        weight = weight.detach().float()
        quantized, scale = quantize_rows(weight)
        self.in_features, self.out_features = weight.shape[1], weight.shape[0]
        self.register_buffer("weight", quantized)
        self.register_buffer("weight_scale", scale.squeeze(1))
        self.register_buffer("bias", None if bias is None else bias.detach().float().clone())

    @classmethod
    def from_linear(cls, linear: nn.Linear) -> Int8Linear:
        return cls(linear.weight, linear.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, self.in_features).float()
        quantized, scale = quantize_rows(rows)
        # the weight's transposed view [K, N]: oneDNN reads it in place (no copy per call)
        product = torch._int_mm(quantized, self.weight.t()).float()
        scale = scale * self.weight_scale
        y = product.mul_(scale) if self.bias is None else torch.addcmul(self.bias, product, scale)
        return y.view(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8"


def quantize_linears(module: nn.Module) -> nn.Module:
    """A copy of ``module`` with every ``nn.Linear`` replaced by an :class:`Int8Linear` (float32
    weights in; other submodules copied unchanged)."""
    module = copy.deepcopy(module)
    if isinstance(module, nn.Linear):
        return Int8Linear.from_linear(module)
    for parent in list(module.modules()):
        for attr, child in list(parent.named_children()):
            if isinstance(child, nn.Linear):
                setattr(parent, attr, Int8Linear.from_linear(child))
    return module
