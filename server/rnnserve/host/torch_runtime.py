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

**Threads.** Every model runs its math on its own scheduler thread, and each thread that
runs a parallel torch operation gets its own OpenMP team. Once the process holds more
OpenMP threads than the machine has cores, libgomp stops letting idle team threads spin
and puts them to sleep after ~100 spins, so every small step of a decoding batch pays a
futex wake-up: on 2 cores with two torch threads, one int8 stream fell from 2,003 to 817
chars/s once a second model had run a batch (``benchmarks.generation``, 2026-12-06, AMD
EPYC). Unless the config, ``--torch-threads`` or ``OMP_NUM_THREADS`` says otherwise, a
server therefore gives each model thread ``(cores - 1) // models`` torch threads, at least
one (:func:`default_threads`): the teams fit on the cores beside one core left for the
event loop, gRPC and the schedulers' Python.
"""

from __future__ import annotations

import os

ONEDNN_CACHE_ENV = "ONEDNN_PRIMITIVE_CACHE_CAPACITY"
DEFAULT_ONEDNN_CACHE = 128
IDEEP_CACHE_ENV = "LRU_CACHE_CAPACITY"
DEFAULT_IDEEP_CACHE = 64


def usable_cores() -> int:
    """The cores this process may run on (all of them where the OS cannot say, e.g. macOS)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def default_threads(cores: int, models: int) -> int:
    """Torch threads per model thread when nothing says: ``(cores - 1) // models``, at least 1
    (see the module docstring)."""
    return max(1, (cores - 1) // max(1, models))


def configure(torch_threads: int | None = None, *, models: int = 1) -> int:
    """Apply the serving defaults for a server of ``models`` models; call before the process's
    first model call (oneDNN reads its cache capacity once, when it first builds a
    primitive). Returns the torch threads each model thread runs."""
    import torch  # here, so that the CLI can ask for usable_cores without loading torch

    os.environ.setdefault(ONEDNN_CACHE_ENV, str(DEFAULT_ONEDNN_CACHE))
    os.environ.setdefault(IDEEP_CACHE_ENV, str(DEFAULT_IDEEP_CACHE))
    if torch_threads is None and "OMP_NUM_THREADS" not in os.environ:
        torch_threads = default_threads(usable_cores(), models)
    if torch_threads is not None:
        torch.set_num_threads(torch_threads)
    return torch.get_num_threads()
