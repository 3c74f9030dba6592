"""The recurrent family of the study notes, one short class each, with its equations.

:class:`Elman`, :class:`Jordan`, :class:`LSTM`, :class:`PeepholeLSTM`, :class:`GRU` and the
:class:`Bidirectional` wrapper; :func:`lstm_update` and :func:`gru_update` are the single-step
gate math they share with hand-fused decoders (the char model's ``FusedLayer``).

Shapes: B batch, T time, I input size, H hidden size, L layers, O output size (Jordan).
Sequences are batch first: ``x`` [B, T, I] -> outputs [B, T, H]. A state is h [L, B, H]
(Elman, GRU) or (h, c), each [L, B, H] (the LSTMs); ``None`` means zeros.

**Computation graph and BPTT.** A recurrent network applies one cell with the same weights
at every step; unrolled over T steps it is a T-layer feed-forward graph with shared weights,
and training backpropagates through that graph (backpropagation through time). The gradient
reaching step t from step t+k is multiplied k times by the step Jacobian
diag(act'(.)) W_hh: with norms below 1 it **vanishes** (long-range dependencies are not
learned), above 1 it **explodes** (hence gradient-norm clipping in the trainers). Gated cells
answer the vanishing: the LSTM's memory is updated additively, c_t = f*c_{t-1} + i*g, so
while the forget gate stays open the error flows back through c almost unchanged.

**Parameter layout** is PyTorch's ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` (``batch_first``):
layer k holds ``weight_ih_l{k}`` [G*H, I_k], ``weight_hh_l{k}`` [G*H, H], ``bias_ih_l{k}``
and ``bias_hh_l{k}`` [G*H], G gate blocks stacked in torch's order (i, f, g, o; r, z, n), so
``load_state_dict`` moves weights between torch's modules and these both ways. torch's fused
kernels compute the same function faster; these classes show the math and add what torch
lacks (peepholes, Jordan feedback, other activations, e.g. the identity for worked examples).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import ClassVar

import torch
from torch import nn
from torch.nn import functional as F

#: An elementwise nonlinearity, e.g. ``torch.tanh`` or ``lambda x: x``.
Activation = Callable[[torch.Tensor], torch.Tensor]
#: A recurrent state: h [L, B, H], or (h, c) for the LSTMs.
Hidden = torch.Tensor | tuple[torch.Tensor, ...]
#: softmax over the last dimension (the Jordan network's default output activation).
softmax: Activation = partial(torch.softmax, dim=-1)


def lstm_update(gates: torch.Tensor, c: torch.Tensor, peephole: torch.Tensor | None,
                act_c: Activation = torch.tanh, act_o: Activation = torch.tanh,
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """One LSTM memory update from the gate pre-activations.

        i, f, g, o = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh          (split in four)
        i = sigmoid(i + p_i*c_{t-1}),  f = sigmoid(f + p_f*c_{t-1})   (peepholes: p = 0 without)
        c_t = f*c_{t-1} + i*act_c(g)
        o = sigmoid(o + p_o*c_t),      h_t = o*act_o(c_t)

    Args:
        gates: [B, 4H] pre-activations in the order i, f, g, o.
        c: [B, H] memory before the step.
        peephole: [3, H] peephole weights (p_i, p_f, p_o), or None for a plain LSTM.
    Returns:
        (h_t, c_t), each [B, H].
    """
    i, f, g, o = gates.chunk(4, dim=1)
    if peephole is not None:
        i = i + peephole[0] * c
        f = f + peephole[1] * c
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * act_c(g)
    if peephole is not None:
        o = o + peephole[2] * c
    return torch.sigmoid(o) * act_o(c), c


def gru_update(gi: torch.Tensor, gh: torch.Tensor, h: torch.Tensor, act: Activation = torch.tanh) -> torch.Tensor:
    """One GRU step from the input and recurrent projections.

        r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)          reset gate
        z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)          update gate
        n = act(W_in x + b_in + r*(W_hn h + b_hn))          candidate
        h_t = (1 - z)*n + z*h_{t-1}

    Args:
        gi: [B, 3H] W_ih x_t + b_ih; gh: [B, 3H] W_hh h_{t-1} + b_hh (order r, z, n); h: [B, H].
    Returns:
        h_t [B, H].
    """
    i_r, i_z, i_n = gi.chunk(3, dim=1)
    h_r, h_z, h_n = gh.chunk(3, dim=1)
    r = torch.sigmoid(i_r + h_r)
    z = torch.sigmoid(i_z + h_z)
    n = act(i_n + r * h_n)
    return n + z * (h - n)


class Recurrent(nn.Module):
    """L stacked layers of one cell over batch-first sequences; a subclass gives :meth:`cell`.

    Parameters as torch's (see the module docstring), drawn from U(-1/sqrt(H), 1/sqrt(H)) as
    torch does. ``dropout`` applies to the inputs of layers 2..L while training.
    """

    #: G, the number of gate blocks stacked in the weights.
    gates: ClassVar[int]
    #: Whether the state carries a memory c besides h.
    has_memory: ClassVar[bool] = False

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, dropout: float = 0.0,
                 activation: Activation = torch.tanh) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.dropout = dropout
        self.activation = activation
        bound = 1.0 / math.sqrt(hidden_size)
        for k in range(num_layers):
            for name, shape in self.parameter_shapes(k):
                self.register_parameter(name, nn.Parameter(torch.empty(shape).uniform_(-bound, bound)))

    def parameter_shapes(self, k: int) -> list[tuple[str, tuple[int, ...]]]:
        """The names and shapes of layer k's parameters, in the order they are drawn."""
        rows, inputs = self.gates * self.hidden_size, self.input_size if k == 0 else self.hidden_size
        return [(f"weight_ih_l{k}", (rows, inputs)), (f"weight_hh_l{k}", (rows, self.hidden_size)),
                (f"bias_ih_l{k}", (rows,)), (f"bias_hh_l{k}", (rows,))]

    def layer_weights(self, k: int) -> tuple[torch.Tensor, ...]:
        """Layer k's parameters in :meth:`parameter_shapes` order (weight_ih, weight_hh, bias_ih, bias_hh, ...)."""
        return tuple(getattr(self, name) for name, _ in self.parameter_shapes(k))

    def initial_state(self, batch_size: int) -> Hidden:
        """Zeros: h [L, B, H], or (h, c) for the LSTMs."""
        h = self.weight_hh_l0.new_zeros(self.num_layers, batch_size, self.hidden_size)
        return (h, torch.zeros_like(h)) if self.has_memory else h

    def cell(self, gi: torch.Tensor, gh: torch.Tensor, state: tuple[torch.Tensor, ...], k: int
             ) -> tuple[torch.Tensor, ...]:
        """One step of layer k: gi = W_ih x_t + b_ih, gh = W_hh h_{t-1} + b_hh (each [B, G*H]);
        ``state`` is (h_{t-1},) or (h_{t-1}, c_{t-1}), each [B, H]; returns the state after x_t."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor, state: Hidden | None = None) -> tuple[torch.Tensor, Hidden]:
        """Read x [B, T, I] from ``state`` (zeros when None).

        Returns:
            the top layer's h_1..h_T [B, T, H] and the state after x_T (as ``state``).
        """
        if state is None:
            state = self.initial_state(x.shape[0])
        layers = state if isinstance(state, tuple) else (state,)
        finals = []
        for k in range(self.num_layers):
            if k > 0 and self.dropout > 0:
                x = F.dropout(x, self.dropout, self.training)
            w_ih, w_hh, b_ih, b_hh = self.layer_weights(k)[:4]
            gi = F.linear(x, w_ih, b_ih)  # the input projection of every step at once: [B, T, G*H]
            s = tuple(part[k] for part in layers)
            outputs = []
            for t in range(x.shape[1]):
                s = self.cell(gi[:, t], F.linear(s[0], w_hh, b_hh), s, k)
                outputs.append(s[0])
            x = torch.stack(outputs, dim=1)
            finals.append(s)
        final = tuple(torch.stack(parts) for parts in zip(*finals, strict=True))
        return x, final if self.has_memory else final[0]


class Elman(Recurrent):
    """Elman network (simple RNN): the hidden layer reads its own previous value. Like ``nn.RNN``.

        h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)          act = tanh by default

    Weights [H, I] and [H, H] (G = 1); state h [L, B, H]. The plain recurrence, and the one
    whose gradients vanish or explode fastest: dh_t/dh_{t-1} = diag(act') W_hh at every step.
    """

    gates = 1

    def cell(self, gi: torch.Tensor, gh: torch.Tensor, state: tuple[torch.Tensor, ...], k: int
             ) -> tuple[torch.Tensor, ...]:
        return (self.activation(gi + gh),)


class LSTM(Recurrent):
    """Long short-term memory: a memory c written and read through gates. Like ``nn.LSTM``.

        i, f, o = sigmoid(.), g = act(.)    of W_ih x_t + b_ih + W_hh h_{t-1} + b_hh (order i, f, g, o)
        c_t = f*c_{t-1} + i*g               forget part of the memory, write the gated candidate
        h_t = o*act_o(c_t)                  read it out through the output gate

    Weights [4H, I] and [4H, H]; state (h, c), each [L, B, H]. Why: vanishing gradients. The
    additive memory path (dc_t/dc_{t-1} = f) carries errors across many steps while f ~ 1.
    ``output_activation`` is act_o (tanh by default; :func:`lstm_update` has the step).
    """

    gates = 4
    has_memory = True

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, dropout: float = 0.0,
                 activation: Activation = torch.tanh, output_activation: Activation = torch.tanh) -> None:
        super().__init__(input_size, hidden_size, num_layers, dropout, activation)
        self.output_activation = output_activation

    def peephole(self, k: int) -> torch.Tensor | None:
        """Layer k's peephole weights [3, H] (None: a plain LSTM)."""
        return None

    def cell(self, gi: torch.Tensor, gh: torch.Tensor, state: tuple[torch.Tensor, ...], k: int
             ) -> tuple[torch.Tensor, ...]:
        return lstm_update(gi + gh, state[1], self.peephole(k), self.activation, self.output_activation)


class PeepholeLSTM(LSTM):
    """LSTM with peepholes (Gers & Schmidhuber): the gates also look at the memory. Not in torch.

        i = sigmoid(. + p_i*c_{t-1}),  f = sigmoid(. + p_f*c_{t-1})
        c_t = f*c_{t-1} + i*g,         o = sigmoid(. + p_o*c_t),      h_t = o*act_o(c_t)

    As :class:`LSTM` plus ``weight_peephole_l{k}`` [3, H] (p_i, p_f, p_o: diagonal, one weight
    per unit). Why: a plain LSTM's gates see c only through h = o*act_o(c), so with o closed
    they cannot time or count; peepholes let them read the memory itself.
    """

    def parameter_shapes(self, k: int) -> list[tuple[str, tuple[int, ...]]]:
        return [*super().parameter_shapes(k), (f"weight_peephole_l{k}", (3, self.hidden_size))]

    def peephole(self, k: int) -> torch.Tensor | None:
        return getattr(self, f"weight_peephole_l{k}")


class GRU(Recurrent):
    """Gated recurrent unit: LSTM-like gating with no separate memory. Like ``nn.GRU``.

        r, z = sigmoid(.)                         reset and update gates (order r, z, n)
        n = act(W_in x_t + b_in + r*(W_hn h_{t-1} + b_hn))
        h_t = (1 - z)*n + z*h_{t-1}               interpolate: z ~ 1 keeps the old state

    Weights [3H, I] and [3H, H]; state h [L, B, H]. Why: the same additive path as the LSTM
    (dh_t/dh_{t-1} contains z) with three gate blocks instead of four and one state tensor.
    """

    gates = 3

    def cell(self, gi: torch.Tensor, gh: torch.Tensor, state: tuple[torch.Tensor, ...], k: int
             ) -> tuple[torch.Tensor, ...]:
        return (gru_update(gi, gh, state[0], self.activation),)


class Jordan(nn.Module):
    """Jordan network: the hidden layer reads the previous *output* y_{t-1}, not h_{t-1}.

        h_t = act(W_ih x_t + b_ih + W_yh y_{t-1})
        z_t = W_hy h_t + b_hy,    y_t = act_y(z_t)          act_y = softmax by default

    Parameters ``weight_ih`` [H, I], ``bias_ih`` [H], ``weight_yh`` [H, O], ``weight_hy`` [O, H],
    ``bias_hy`` [O]. One layer: the state is what recurs, y [B, O] (zeros before x_1), e.g. the
    predicted distribution of a language model. Why: the network conditions on what it said,
    and its state is as small as its output; it cannot keep what the output does not show.
    """

    def __init__(self, input_size: int, hidden_size: int, output_size: int, activation: Activation = torch.tanh,
                 output_activation: Activation = softmax) -> None:
        super().__init__()
        self.activation = activation
        self.output_activation = output_activation
        self.output_size = output_size
        for name, shape, fan_in in (("weight_ih", (hidden_size, input_size), input_size),
                                    ("bias_ih", (hidden_size,), input_size),
                                    ("weight_yh", (hidden_size, output_size), output_size),
                                    ("weight_hy", (output_size, hidden_size), hidden_size),
                                    ("bias_hy", (output_size,), hidden_size)):
            bound = 1.0 / math.sqrt(fan_in)  # nn.Linear's default
            self.register_parameter(name, nn.Parameter(torch.empty(shape).uniform_(-bound, bound)))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Read x [B, T, I] from the previous output y [B, O] (zeros when None).

        Returns:
            z_1..z_T [B, T, O] (the pre-activations: logits under softmax) and y_T [B, O].
        """
        if y is None:
            y = self.weight_hy.new_zeros(x.shape[0], self.output_size)
        gi = F.linear(x, self.weight_ih, self.bias_ih)  # [B, T, H]
        outputs = []
        for t in range(x.shape[1]):
            h = self.activation(gi[:, t] + F.linear(y, self.weight_yh))
            z = F.linear(h, self.weight_hy, self.bias_hy)
            y = self.output_activation(z)
            outputs.append(z)
        return torch.stack(outputs, dim=1), y


class Bidirectional(nn.Module):
    """Two RNNs over one sequence, one reading it forwards and one backwards, outputs side by side.

        a_t = forward_rnn(x_1..x_t),   b_t = backward_rnn(x_T..x_t),   out_t = [a_t ; b_t]

    ``forward_rnn`` and ``backward_rnn``: batch-first sequence modules ``(x, state) -> (outputs,
    state)`` (any class here, or torch's with ``batch_first=True``), outputs [B, T, H_f] and
    [B, T, H_b]; out is [B, T, H_f + H_b]. The state is the pair (forward, backward); the
    backward one is its state after x_1. With single-layer members this is one layer of torch's
    ``bidirectional=True`` (its ``*_reverse`` weights are ``backward_rnn``'s). Why: out_t sees
    the whole sequence, past and future (encoders, tagging); so not for generating left to
    right. Sequences are taken as unpadded (equal lengths).
    """

    def __init__(self, forward_rnn: nn.Module, backward_rnn: nn.Module) -> None:
        super().__init__()
        self.forward_rnn = forward_rnn
        self.backward_rnn = backward_rnn

    def forward(self, x: torch.Tensor, state: tuple[Hidden | None, Hidden | None] | None = None
                ) -> tuple[torch.Tensor, tuple[Hidden, Hidden]]:
        """x [B, T, I] -> out [B, T, H_f + H_b] and (forward state after x_T, backward state after x_1)."""
        ahead_state, back_state = (None, None) if state is None else state
        ahead, ahead_state = self.forward_rnn(x, ahead_state)
        back, back_state = self.backward_rnn(x.flip(1), back_state)
        return torch.cat([ahead, back.flip(1)], dim=-1), (ahead_state, back_state)
