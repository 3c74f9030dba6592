"""The character-level recurrent language model: embedding -> recurrent stack -> dropout -> linear.

Shapes: B = batch, T = time, V = vocabulary size, E = embedding size, H = hidden size,
L = layers. A state is ``(h, c)`` (LSTM variants) or ``(h,)`` (GRU, Elman), each tensor
[L, B, H].

Two paths compute the same function:

* :meth:`CharRNN.forward` reads whole sequences [B, T] in one call (training, prefill,
  scoring); the standard cells use PyTorch's fused ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN``
  kernels (the same functions and parameter names as ``rnnserve.rnn_family``'s ``LSTM``,
  ``GRU``, ``Elman``, only faster), ``peephole-lstm`` the family's ``PeepholeLSTM``.
* :class:`FusedStep` (built by :meth:`CharRNN.fused_step`) decodes one token per
  sequence with one matmul per layer (:class:`~.cells.FusedLayer`), avoiding
  ``nn.LSTM``'s per-call overhead that dominates at T = 1 on CPU.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from rnnserve.plugin_api import PeepholeLSTM
from rnnserve.training import StoredConfig

from .cells import CELL_KINDS, FusedLayer, has_cell_state

State = tuple[torch.Tensor, ...]


@dataclass
class CharRNNConfig(StoredConfig):
    """Everything needed to rebuild a :class:`CharRNN` (stored as ``config.json`` ``"model"``)."""

    vocab_size: int
    #: One of ``lstm``, ``gru``, ``rnn`` (Elman, tanh), ``peephole-lstm``.
    cell: str = "lstm"
    embedding_dim: int = 64
    hidden_size: int = 512
    num_layers: int = 2
    #: Applied between recurrent layers and before the output layer.
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if self.cell not in CELL_KINDS:
            raise ValueError(f"unknown cell {self.cell!r}; choose one of {CELL_KINDS}")
        if min(self.vocab_size, self.embedding_dim, self.hidden_size, self.num_layers) < 1:
            raise ValueError(f"sizes must be positive: {self}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1): {self.dropout}")


def _recurrent(config: CharRNNConfig) -> nn.Module:
    args = (config.embedding_dim, config.hidden_size, config.num_layers)
    between = config.dropout if config.num_layers > 1 else 0.0
    if config.cell == "peephole-lstm":
        return PeepholeLSTM(*args, dropout=between)
    module = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[config.cell]
    return module(*args, dropout=between, batch_first=True)


class CharRNN(nn.Module):
    """Embedding [V, E] -> L recurrent layers of width H -> dropout -> Linear [H -> V]."""

    def __init__(self, config: CharRNNConfig):
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.embedding_dim)
        self.rnn = _recurrent(config)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.hidden_size, config.vocab_size)

    @property
    def state_batch_dims(self) -> tuple[int, ...]:
        return (1, 1) if has_cell_state(self.config.cell) else (1,)

    def initial_state(self, batch_size: int) -> State:
        """Zeros: ``len(state_batch_dims)`` tensors of [L, batch_size, H]."""
        weight = self.embedding.weight  # (the head may be an int8 quantized Linear)
        shape = (self.config.num_layers, batch_size, self.config.hidden_size)
        return tuple(torch.zeros(shape, dtype=weight.dtype, device=weight.device)
                     for _ in self.state_batch_dims)

    def forward(self, tokens: torch.Tensor, state: State,
                starts: torch.Tensor | None = None) -> tuple[torch.Tensor, State]:
        """Read [B, T] int64 tokens from ``state``; returns logits [B, T, V] and the state after them.

        ``starts`` [B, T] bool marks where a document starts: row b's state goes back to the
        initial state before it reads ``tokens[b, t]`` (its ``<bos>``), as a served request starts.
        """
        if starts is not None and bool(starts.any()):
            return read_documents(self.forward, tokens, state, starts)
        x = self.embedding(tokens)
        if has_cell_state(self.config.cell):
            y, (h, c) = self.rnn(x, (state[0], state[1]))
            new_state: State = (h, c)
        else:
            y, h = self.rnn(x, state[0])
            new_state = (h,)
        return self.head(self.dropout(y)), new_state

    def layer_weights(self, k: int) -> tuple[torch.Tensor | None, ...]:
        """PyTorch-layout weights of recurrent layer k: (w_ih, w_hh, b_ih, b_hh, peephole or None)."""
        names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_peephole")
        return tuple(getattr(self.rnn, f"{name}_l{k}", None) for name in names)

    @torch.no_grad()
    def fused_step(self) -> FusedStep:
        """A :class:`FusedStep` holding copies of this model's weights (inference only)."""
        layers = [FusedLayer.from_weights(self.config.cell, *self.layer_weights(k)[:4],
                                          peephole=self.layer_weights(k)[4])
                  for k in range(self.config.num_layers)]
        head = nn.Linear(self.config.hidden_size, self.config.vocab_size).to(self.head.weight.dtype)
        head.load_state_dict(self.head.state_dict())
        return FusedStep(self.embedding.weight.detach().clone(), layers, head).eval()


Forward = Callable[[torch.Tensor, State], tuple[torch.Tensor, State]]


def read_documents(forward: Forward, tokens: torch.Tensor, state: State,
                   starts: torch.Tensor) -> tuple[torch.Tensor, State]:
    """``forward`` (a :meth:`CharRNN.forward` or a backend's: [B, T] tokens and a state of tensors
    [L, B, H] -> logits [B, T, V] and the new state) over [B, T] ``tokens`` where ``starts`` [B, T]
    marks document starts.

    The fused kernels read a whole segment at once, so the window is cut before every column
    where some row starts a document; there those rows' states are zeroed (the initial state),
    the others carry on. Zeroing multiplies by a mask, so gradients still flow through the rows
    that carry on (truncated BPTT within the window, as without documents).
    """
    columns = torch.nonzero(starts.any(dim=0)).flatten().tolist()
    bounds = [0, *(c for c in columns if c > 0), tokens.shape[1]]
    pieces = []
    for begin, end in itertools.pairwise(bounds):
        keep = (~starts[:, begin]).to(state[0].dtype).view(1, -1, 1)
        state = tuple(s * keep for s in state)
        logits, state = forward(tokens[:, begin:end], state)
        pieces.append(logits)
    return torch.cat(pieces, dim=1), state


class FusedStep(nn.Module):
    """Single-token decoding: embedding lookup, one :class:`FusedLayer` per layer, output Linear."""

    def __init__(self, embedding: torch.Tensor, layers: list[FusedLayer], head: nn.Linear):
        super().__init__()
        self.register_buffer("embedding", embedding)
        self.layers = nn.ModuleList(layers)
        self.head = head
        self.has_cell_state = layers[0].kind in ("lstm", "peephole-lstm")

    def forward(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """Read [B] int64 tokens from ``state`` (tensors [L, B, H]); returns logits [B, V] and the new state."""
        x = self.embedding[tokens]
        hs, cs = [], []
        for k, layer in enumerate(self.layers):
            x, c = layer(x, state[0][k], state[1][k] if self.has_cell_state else None)
            hs.append(x)
            cs.append(c)
        new_state = (torch.stack(hs), torch.stack(cs)) if self.has_cell_state else (torch.stack(hs),)
        return self.head(x), new_state

    def read(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """Read [B, T] int64 tokens from ``state`` with these layers, one time step at a time per
        layer (layer by layer, so the output layer runs once over all positions); returns logits
        [B, T, V] and the state after them: what ``CharRNN.forward`` computes, in this module's
        arithmetic (an int8 copy reads prompts in int8)."""
        x = self.embedding[tokens]
        hs, cs = [], []
        for k, layer in enumerate(self.layers):
            h, c = state[0][k], state[1][k] if self.has_cell_state else None
            outputs = []
            for t in range(x.shape[1]):
                h, c = layer(x[:, t], h, c)
                outputs.append(h)
            x = torch.stack(outputs, dim=1)
            hs.append(h)
            cs.append(c)
        new_state = (torch.stack(hs), torch.stack(cs)) if self.has_cell_state else (torch.stack(hs),)
        return self.head(x), new_state
