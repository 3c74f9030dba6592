"""What the char model adds to :mod:`rnnserve.rnn_family`: its cell kinds, and a layer fused for decoding.

Cell variants (``CharRNNConfig.cell``), their equations and whole-sequence modules in the
family (``Elman``, ``LSTM``, ``PeepholeLSTM``, ``GRU``, through ``rnnserve.plugin_api``):

* ``lstm``: i, f, g, o gates, c' = f*c + i*act_c(g), h' = o*act_o(c') (``lstm_update``).
* ``gru``: r, z, n gates, h' = (1-z)*n + z*h with n = act_c(W_in x + b_in + r*(W_hn h + b_hn))
  (``gru_update``).
* ``rnn``: Elman, h' = act_c(W_ih x + b_ih + W_hh h + b_hh).
* ``peephole-lstm``: like ``lstm``, with the input and forget gates also reading c and the
  output gate reading c'. Not in torch.

``act_c`` (the cell-input / candidate activation) and ``act_o`` (the LSTM output
activation) default to tanh; ``identity`` exists for hand-constructed networks (the
golden tests). Gates always use the logistic sigmoid.

:class:`FusedLayer` is one layer prepared for decoding: input and recurrent weights
concatenated into one ``nn.Linear`` over ``[x | h]`` (GRU keeps two, because its
candidate needs W_hn h on its own), so a step is a single matmul per layer. Being plain
``nn.Linear`` modules, they can be swapped for int8 ones (``rnnserve.plugin_api.quantize_linears``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from torch import nn

from rnnserve.plugin_api import gru_update, lstm_update

CellKind = Literal["lstm", "gru", "rnn", "peephole-lstm"]
CELL_KINDS: tuple[str, ...] = ("lstm", "gru", "rnn", "peephole-lstm")
#: Number of gate blocks stacked in each cell's weight matrices.
GATES = {"lstm": 4, "gru": 3, "rnn": 1, "peephole-lstm": 4}
Activation = Literal["tanh", "identity"]
ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"tanh": torch.tanh, "identity": lambda x: x}


def has_cell_state(kind: str) -> bool:
    """Whether the cell carries a memory c besides h (the LSTM variants)."""
    return kind in ("lstm", "peephole-lstm")


class FusedLayer(nn.Module):
    """One recurrent layer for single-step decoding, with ``[W_ih | W_hh]`` fused into one Linear.

    Build it with :meth:`from_weights` from PyTorch-layout weights: ``weight_ih``
    [G*H, I], ``weight_hh`` [G*H, H], ``bias_ih`` / ``bias_hh`` [G*H] (G = ``GATES[kind]``).
    """

    def __init__(self, kind: str, input_size: int, hidden_size: int,
                 cell_activation: Activation = "tanh", output_activation: Activation = "tanh"):
        super().__init__()
        if kind not in GATES:
            raise ValueError(f"unknown cell {kind!r}; choose one of {CELL_KINDS}")
        self.kind = kind
        self.hidden_size = hidden_size
        self.act_c = ACTIVATIONS[cell_activation]
        self.act_o = ACTIVATIONS[output_activation]
        gates = GATES[kind] * hidden_size
        if kind == "gru":
            self.input = nn.Linear(input_size, gates)
            self.recurrent = nn.Linear(hidden_size, gates)
        else:
            self.fused = nn.Linear(input_size + hidden_size, gates)
        self.peephole = nn.Parameter(torch.zeros(3, hidden_size)) if kind == "peephole-lstm" else None

    @classmethod
    @torch.no_grad()
    def from_weights(cls, kind: str, weight_ih: torch.Tensor, weight_hh: torch.Tensor,
                     bias_ih: torch.Tensor | None = None, bias_hh: torch.Tensor | None = None,
                     peephole: torch.Tensor | None = None, cell_activation: Activation = "tanh",
                     output_activation: Activation = "tanh") -> FusedLayer:
        """A layer holding copies of the given weights (missing biases are zero)."""
        hidden, inputs = weight_hh.shape[1], weight_ih.shape[1]
        layer = cls(kind, inputs, hidden, cell_activation, output_activation).to(weight_ih.dtype)
        zeros = torch.zeros(weight_ih.shape[0], dtype=weight_ih.dtype)
        bias_ih = zeros if bias_ih is None else bias_ih
        bias_hh = zeros if bias_hh is None else bias_hh
        if kind == "gru":
            layer.input.weight.copy_(weight_ih)
            layer.input.bias.copy_(bias_ih)
            layer.recurrent.weight.copy_(weight_hh)
            layer.recurrent.bias.copy_(bias_hh)
        else:
            layer.fused.weight.copy_(torch.cat([weight_ih, weight_hh], dim=1))
            layer.fused.bias.copy_(bias_ih + bias_hh)
        if layer.peephole is not None:
            if peephole is None:
                raise ValueError("a peephole-lstm layer needs its peephole weights [3, H]")
            layer.peephole.copy_(peephole)
        return layer

    def forward(self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor | None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One step.

        Args:
            x: [B, I] input; h: [B, H] hidden state; c: [B, H] memory (LSTM variants) or None.
        Returns:
            (h', c'), h' [B, H] (also the layer's output), c' [B, H] or None.
        """
        if self.kind == "gru":
            return gru_update(self.input(x), self.recurrent(h), h, self.act_c), None
        gates = self.fused(torch.cat([x, h], dim=1))
        if self.kind == "rnn":
            return self.act_c(gates), None
        assert c is not None
        return lstm_update(gates, c, self.peephole, self.act_c, self.act_o)
