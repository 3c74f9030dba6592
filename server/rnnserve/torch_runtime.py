"""Process-wide torch settings for serving: intra-op threads and oneDNN's primitive cache.

oneDNN (torch's CPU kernels for ``nn.LSTM``/``nn.GRU`` and bfloat16 matmuls) caches one
compiled primitive per input shape, 1,024 by default. A recurrent layer's primitive
holds about half a megabyte, and served prompts come in every length, so with the
default cache a server's RSS climbs by hundreds of megabytes before it levels off
(measured: 363 -> 937 MB over four minutes of mixed traffic). 128 entries keep every
shape a steady decoding batch uses (a step reuses the previous step's shapes) and bound
the rest; building a primitive again costs microseconds against the milliseconds of the
call. An explicit ``ONEDNN_PRIMITIVE_CACHE_CAPACITY`` in the environment wins.
"""

from __future__ import annotations

import os

import torch

ONEDNN_CACHE_ENV = "ONEDNN_PRIMITIVE_CACHE_CAPACITY"
DEFAULT_ONEDNN_CACHE = 128


def configure(torch_threads: int | None = None) -> None:
    """Apply the serving defaults; call before the process's first model call (oneDNN reads
    its cache capacity once, when it first builds a primitive)."""
    os.environ.setdefault(ONEDNN_CACHE_ENV, str(DEFAULT_ONEDNN_CACHE))
    if torch_threads is not None:
        torch.set_num_threads(torch_threads)
