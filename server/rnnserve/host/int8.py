"""int8 weights for inference: the kernels a backend's ``quantize = true`` runs, measured.

Two implementations of dynamic int8 quantization (int8 weights, activations quantized per
call, int32 accumulation), chosen by :func:`int8_copy`:

* **fbgemm** (``torch.ao.quantization.quantize_dynamic``): ``nn.Linear`` and the recurrent
  modules (``nn.LSTM``, ``nn.GRU``, ``nn.GRUCell``: int8 over whole sequences too), one
  activation scale per tensor. torch 2.13 announces ``torch.ao.quantization`` and its
  quantized tensor types as deprecated (pytorch/ao#2259, pytorch#184982); it is still the
  fastest int8 on both CPU classes measured, so it is what runs where torch has it.
* **onednn** (:class:`Int8Linear`, plain tensors, no deprecated API): every ``nn.Linear``
  swapped for one with int8 per-channel weights and per-row dynamic int8 activations,
  ``torch._int_mm`` (oneDNN); recurrent modules stay float. Per-row scales halve the
  logit error and make a row's result independent of its batch neighbours (exact int32
  sums), but it is slower: decoding steps 0.67-0.88x fbgemm's speed on an AMD EPYC with
  AVX-512 VNNI, 0.43-0.62x with oneDNN held to AVX2 (where its s8 x s8 products also
  lose precision), and whole prompts read with float32 recurrence
  (``python -m benchmarks.int8``, README "int8 kernels"). It runs where torch lacks fbgemm.

``RNNSERVE_INT8_KERNELS=fbgemm|onednn`` forces one (tests, measurements).

:class:`Int8Linear` holds a weight [N, K] as int8 with one scale per output channel
(symmetric, ``max |w_n| / 127``). Each call quantizes its input [M, K] per row the same way
and rescales the int32 product to float32:

    y[m, n] = (sum_k xq[m, k] * wq[n, k]) * sx[m] * sw[n] + b[n]
"""

from __future__ import annotations

import copy
import os
import warnings
from collections.abc import Iterable

import torch
from torch import nn

from rnnserve.edge.errors import ConfigurationError

#: The precision name :func:`rnnserve.host.weights_precision.weights_precision` reports for a module holding these.
PRECISION = "int8"
#: Forces :func:`int8_copy`'s kernels: "fbgemm" or "onednn".
KERNELS_ENV = "RNNSERVE_INT8_KERNELS"
KERNELS = ("fbgemm", "onednn")
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


def int8_kernels() -> str:
    """The int8 implementation :func:`int8_copy` uses here: ``RNNSERVE_INT8_KERNELS`` if set, else
    "fbgemm" where this torch has its engine, else "onednn"."""
    forced = os.environ.get(KERNELS_ENV, "").strip()
    if forced:
        if forced not in KERNELS:
            raise ConfigurationError(f"{KERNELS_ENV} must be one of {list(KERNELS)}, got {forced!r}")
        return forced
    engines = torch.backends.quantized.supported_engines
    return "fbgemm" if hasattr(torch.ao, "quantization") and {"fbgemm", "x86"} & set(engines) else "onednn"


def int8_copy(module: nn.Module, recurrent: Iterable[type[nn.Module]] = ()) -> nn.Module:
    """A copy of ``module`` computing in int8 with :func:`int8_kernels`: every ``nn.Linear``, and with
    fbgemm the ``recurrent`` module types too (e.g. ``nn.LSTM``); the input stays float32."""
    if int8_kernels() == "onednn":
        return quantize_linears(module)
    with warnings.catch_warnings():  # torch.ao.quantization announces its deprecation (module docstring)
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(module, {nn.Linear, *recurrent}, dtype=torch.qint8)
