"""Hand-written recurrent cells: the single-step math of every cell variant, and the peephole LSTM.

Cell variants (``CharRNNConfig.cell``):

* ``lstm``: i, f, g, o = split(W_ih x + b_ih + W_hh h + b_hh); c' = f*c + i*act_c(g);
  h' = o*act_o(c') (PyTorch's gate order i, f, g, o).
* ``gru``: r, z, n gates as in ``torch.nn.GRU``; h' = (1-z)*n + z*h with
  n = act_c(W_in x + b_in + r*(W_hn h + b_hn)).
* ``rnn``: Elman, h' = act_c(W_ih x + b_ih + W_hh h + b_hh).
* ``peephole-lstm`` (Gers & Schmidhuber): like ``lstm`` but the input and forget gates
  also read c (p_i*c, p_f*c) and the output gate reads c' (p_o*c'). Not in torch.

``act_c`` (the cell-input / candidate activation) and ``act_o`` (the LSTM output
activation) default to tanh; ``identity`` exists for hand-constructed networks (the
golden tests). Gates always use the logistic sigmoid.

:class:`FusedLayer` is one layer prepared for decoding: input and recurrent weights
concatenated into one ``nn.Linear`` over ``[x | h]`` (GRU keeps two, because its
candidate needs W_hn h on its own), so a step is a single matmul per layer. Being plain
``nn.Linear`` modules, they can be int8-quantized with ``quantize_dynamic``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import torch
from torch import nn

CellKind = Literal["lstm", "gru", "rnn", "peephole-lstm"]
CELL_KINDS: tuple[str, ...] = ("lstm", "gru", "rnn", "peephole-lstm")
#: Number of gate blocks stacked in each cell's weight matrices.
GATES = {"lstm": 4, "gru": 3, "rnn": 1, "peephole-lstm": 4}
Activation = Literal["tanh", "identity"]
ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"tanh": torch.tanh, "identity": lambda x: x}


def has_cell_state(kind: str) -> bool:
    """Whether the cell carries a memory c besides h (the LSTM variants)."""
    return kind in ("lstm", "peephole-lstm")


def lstm_update(gates: torch.Tensor, c: torch.Tensor, peephole: torch.Tensor | None,
                act_c: Callable[[torch.Tensor], torch.Tensor] = torch.tanh,
                act_o: Callable[[torch.Tensor], torch.Tensor] = torch.tanh,
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """One LSTM memory update from pre-activations.

    Args:
        gates: [B, 4H] pre-activations in the order i, f, g, o.
        c: [B, H] memory before the step.
        peephole: [3, H] peephole weights (p_i, p_f, p_o) or None for a plain LSTM.
    Returns:
        (h', c'), each [B, H].
    """
    i, f, g, o = gates.chunk(4, dim=1)
    if peephole is not None:
        i = i + peephole[0] * c
        f = f + peephole[1] * c
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * act_c(g)
    if peephole is not None:
        o = o + peephole[2] * c
    return torch.sigmoid(o) * act_o(c), c


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
            gi = self.input(x)
            gh = self.recurrent(h)
            i_r, i_z, i_n = gi.chunk(3, dim=1)
            h_r, h_z, h_n = gh.chunk(3, dim=1)
            r = torch.sigmoid(i_r + h_r)
            z = torch.sigmoid(i_z + h_z)
            n = self.act_c(i_n + r * h_n)
            return n + z * (h - n), None
        gates = self.fused(torch.cat([x, h], dim=1))
        if self.kind == "rnn":
            return self.act_c(gates), None
        assert c is not None
        return lstm_update(gates, c, self.peephole, self.act_c, self.act_o)


class PeepholeLSTM(nn.Module):
    """A multi-layer peephole LSTM over whole sequences (batch first), ``nn.LSTM``-style.

    Parameters per layer k: ``weight_ih_l{k}`` [4H, I_k], ``weight_hh_l{k}`` [4H, H],
    ``bias_ih_l{k}`` / ``bias_hh_l{k}`` [4H] (gate order i, f, g, o) and
    ``weight_peephole_l{k}`` [3, H] (p_i, p_f, p_o). Dropout applies between layers.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, dropout: float = 0.0):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.dropout = dropout
        bound = 1.0 / math.sqrt(hidden_size)
        for k in range(num_layers):
            inputs = input_size if k == 0 else hidden_size
            for name, shape in ((f"weight_ih_l{k}", (4 * hidden_size, inputs)),
                                (f"weight_hh_l{k}", (4 * hidden_size, hidden_size)),
                                (f"bias_ih_l{k}", (4 * hidden_size,)),
                                (f"bias_hh_l{k}", (4 * hidden_size,)),
                                (f"weight_peephole_l{k}", (3, hidden_size))):
                self.register_parameter(name, nn.Parameter(torch.empty(shape).uniform_(-bound, bound)))

    def layer_weights(self, k: int) -> tuple[torch.Tensor, ...]:
        """(weight_ih, weight_hh, bias_ih, bias_hh, peephole) of layer k."""
        return tuple(getattr(self, f"{name}_l{k}") for name in
                     ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_peephole"))

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Run the sequence.

        Args:
            x: [B, T, I]; state: (h, c), each [layers, B, H].
        Returns:
            outputs [B, T, H] of the top layer and the final (h, c), each [layers, B, H].
        """
        h0, c0 = state
        hs, cs = [], []
        for k in range(self.num_layers):
            if k > 0 and self.dropout > 0:
                x = nn.functional.dropout(x, self.dropout, self.training)
            w_ih, w_hh, b_ih, b_hh, peephole = self.layer_weights(k)
            projected = torch.addmm(b_ih + b_hh, x.reshape(-1, x.shape[-1]), w_ih.t()).view(*x.shape[:2], -1)
            h, c = h0[k], c0[k]
            outputs = []
            for t in range(x.shape[1]):
                h, c = lstm_update(torch.addmm(projected[:, t], h, w_hh.t()), c, peephole)
                outputs.append(h)
            x = torch.stack(outputs, dim=1)
            hs.append(h)
            cs.append(c)
        return x, (torch.stack(hs), torch.stack(cs))
