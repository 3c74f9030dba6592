"""The ``dtype`` model option shared by backends: float32 or bfloat16 weights and arithmetic.

bfloat16 keeps float32's exponent range with an 8-bit mantissa. On CPUs with AMX or
AVX512-BF16 (oneDNN uses them) its matrix products run about 3x faster than float32 from
a batch of a few dozen rows, and weights take half the memory; on CPUs without them it
is slower than float32. ``"auto"`` picks bfloat16 where the CPU has those instructions and
float32 elsewhere. Backends keep their logits float32.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import torch

from rnnserve.errors import ConfigurationError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
#: CPU flags (Linux /proc/cpuinfo) of native bfloat16 matrix arithmetic
BF16_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})


@cache
def native_bfloat16() -> bool:
    """Whether this CPU multiplies bfloat16 matrices natively (AMX or AVX512-BF16)."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in cpuinfo.splitlines() if line.startswith("flags")), [])
    return not BF16_FLAGS.isdisjoint(flags)


def resolve(name: str) -> torch.dtype:
    """The torch dtype of a ``dtype`` option value ("auto": bfloat16 with native support, else float32)."""
    if name == "auto":
        return torch.bfloat16 if native_bfloat16() else torch.float32
    return DTYPES[name]


def dtype_option(options: dict[str, Any], model: str) -> torch.dtype:
    """The validated ``dtype`` of a model spec's options (default float32).

    int8 ``quantize`` works from float32 weights, so it excludes any other dtype ("auto"
    then means float32).
    """
    name = options.get("dtype", "float32")
    if name not in (*DTYPES, "auto"):
        raise ConfigurationError(f"model {model!r}: option 'dtype' must be one of {[*sorted(DTYPES), 'auto']}, "
                                 f"got {name!r}")
    if options.get("quantize"):
        if name not in ("float32", "auto"):
            raise ConfigurationError(f"model {model!r}: quantize = true works from float32 weights; drop 'dtype'")
        return torch.float32
    return resolve(name)
