"""Process-wide torch settings for serving: intra-op threads and the CPU kernels' caches.

Served prompts come in every length, and torch's CPU kernels cache work per input shape:

* oneDNN (``nn.LSTM``/``nn.GRU``, bfloat16 matmuls) caches one compiled primitive per
  shape, 1,024 by default, about half a megabyte each for a recurrent layer
  (``ONEDNN_PRIMITIVE_CACHE_CAPACITY``);
* ideep, torch's layer over oneDNN, keeps its own LRU of computations with their
  reordered weights per shape, also 1,024 by default (``LRU_CACHE_CAPACITY``); this is
  what grows bfloat16 and int8 reads (pytorch/pytorch#27971).

With the defaults a server's RSS climbs by hundreds of megabytes before it levels off
(measured: 363 -> 937 MB over four minutes of mixed traffic; 600 reads of random shapes in
bfloat16: 369 -> 500 MB, with ``LRU_CACHE_CAPACITY=64``: 360 -> 379 MB). The bounds below
keep every shape a steady decoding batch uses (a step reuses the previous step's shapes)
and bound the rest; rebuilding costs microseconds against the milliseconds of the call.
Explicit values in the environment win. Both are read when the kernels first run, so
``configure`` must come before the process's first model call.
"""

from __future__ import annotations

import os

import torch

ONEDNN_CACHE_ENV = "ONEDNN_PRIMITIVE_CACHE_CAPACITY"
DEFAULT_ONEDNN_CACHE = 128
IDEEP_CACHE_ENV = "LRU_CACHE_CAPACITY"
DEFAULT_IDEEP_CACHE = 64


def configure(torch_threads: int | None = None) -> None:
    """Apply the serving defaults; call before the process's first model call (oneDNN reads
    its cache capacity once, when it first builds a primitive)."""
    os.environ.setdefault(ONEDNN_CACHE_ENV, str(DEFAULT_ONEDNN_CACHE))
    os.environ.setdefault(IDEEP_CACHE_ENV, str(DEFAULT_IDEEP_CACHE))
    if torch_threads is not None:
        torch.set_num_threads(torch_threads)
