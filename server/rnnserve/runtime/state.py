"""Batched recurrent states: one home for joining, splitting and picking rows.

A state is a tuple of tensors (``rnnserve.backends.State``), each with its own batch
dimension, which the backend declares in ``LanguageModel.state_batch_dims`` (an LSTM's
``(h, c)``, each [layers, batch, hidden], has dims ``(1, 1)``). Every function here takes
those dims, so it works for any backend's layout.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from rnnserve.backends import State


def concat_states(states: Sequence[State], dims: Sequence[int]) -> State:
    """One state holding the rows of ``states`` in order (each tensor joined along its batch dim)."""
    import torch

    return tuple(torch.cat(parts, dim=d) for parts, d in zip(zip(*states, strict=True), dims, strict=True))


def split_state(state: State, dims: Sequence[int], sizes: list[int]) -> list[State]:
    """The inverse of :func:`concat_states`: consecutive blocks of ``sizes`` rows."""
    pieces = [t.split(sizes, dim=d) for t, d in zip(state, dims, strict=True)]
    return [tuple(p[i] for p in pieces) for i in range(len(sizes))]


def select_rows(state: State, dims: Sequence[int], index: torch.Tensor) -> State:
    """Rows ``index`` [k] (int64, any order, repeats allowed) of a batched state: batch k."""
    return tuple(t.index_select(d, index) for t, d in zip(state, dims, strict=True))


def state_row(state: State, dims: Sequence[int], i: int) -> State:
    """Row ``i`` of a batched state, as a state of batch 1 (a view: no copy)."""
    return tuple(t.narrow(d, i, 1) for t, d in zip(state, dims, strict=True))


def batch_size(state: State, dims: Sequence[int]) -> int:
    """The number of rows of a batched state."""
    return state[0].shape[dims[0]]
