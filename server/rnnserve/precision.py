"""The ``dtype`` model option shared by backends: float32 or bfloat16 weights and arithmetic.

bfloat16 keeps float32's exponent range with an 8-bit mantissa. On CPUs with AMX or
AVX512-BF16 (oneDNN uses them) its matrix products run about 3x faster than float32 from
a batch of a few dozen rows, and weights take half the memory; on CPUs without them it
is slower than float32, so it is opt-in. Backends keep their logits float32.
"""

from __future__ import annotations

from typing import Any

import torch

from rnnserve.errors import ConfigurationError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def dtype_option(options: dict[str, Any], model: str) -> torch.dtype:
    """The validated ``dtype`` of a model spec's options (default float32).

    int8 ``quantize`` works from float32 weights, so it excludes any other dtype.
    """
    name = options.get("dtype", "float32")
    if name not in DTYPES:
        raise ConfigurationError(f"model {model!r}: option 'dtype' must be one of {sorted(DTYPES)}, got {name!r}")
    if options.get("quantize") and name != "float32":
        raise ConfigurationError(f"model {model!r}: quantize = true works from float32 weights; drop 'dtype'")
    return DTYPES[name]
