"""The ``dtype`` model option shared by backends: float32 or bfloat16 weights and arithmetic.

bfloat16 keeps float32's exponent range with an 8-bit mantissa. On CPUs with AMX or
AVX512-BF16 (oneDNN uses them) its matrix products run about 3x faster than float32 from
a batch of a few dozen rows, and weights take half the memory; on CPUs without them it
is slower than float32. Backends keep their logits float32.

``"auto"``: a backend that offers several precisions of a checkpoint measures them where it
loads and serves the fastest within a quality bound (``rnnserve.host.precision_choice``; the
char-lstm backend does, choosing among float32, bfloat16 and int8). For a backend that does
not measure (:func:`dtype_option`, e.g. the gru-seq2seq translator) it is a guess from the
CPU flags: bfloat16 where the CPU has those instructions, float32 elsewhere.

What each precision promises (README "Models"): float32 gives exact seeds (a seeded
sample does not depend on the other sequences in its batch); bfloat16 and int8 give the
same text for the same request and batch, and logits close to float32's (bounds measured
in ``tests/test_precision.py``), because their kernels' rounding depends on the batch
shape and on the CPU.

The CPU-feature guess can be forced, so every path runs on every CPU: set
``RNNSERVE_NATIVE_BFLOAT16=1`` (or ``0``) to make an unmeasured ``"auto"`` act as on a CPU
with (or without) native bfloat16; a measured one is forced by ``RNNSERVE_PRECISION``
(``rnnserve.host.precision_choice``). torch's own kernel choice is forced the same way by
``ATEN_CPU_CAPABILITY`` (``default``/``avx2``/``avx512``), oneDNN's by
``ONEDNN_MAX_CPU_ISA`` (e.g. ``AVX2``) and fbgemm's (the int8 kernels) by
``FBGEMM_ENABLE_INSTRUCTIONS`` (e.g. ``AVX2``), read when the process starts: with all three
at AVX2 (``scripts/as-avx2``) a machine with AVX-512 runs the kernels of an AVX2-only CPU
(:data:`KERNEL_LIMITS`, named by benchmarks and in the precision choice's cache key).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import torch

from rnnserve.edge.errors import ConfigurationError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
#: The precisions a model can run in, as ``GetModel`` names them.
PRECISIONS = ("float32", "bfloat16", "int8")
#: CPU flags (Linux /proc/cpuinfo) of native bfloat16 matrix arithmetic
BF16_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})
#: Forces :func:`native_bfloat16` ("1" or "0") whatever the CPU.
NATIVE_BF16_ENV = "RNNSERVE_NATIVE_BFLOAT16"
#: ``ONEDNN_MAX_CPU_ISA`` values under which oneDNN may still multiply bfloat16 natively.
ONEDNN_BF16_ISAS = frozenset({"ALL", "DEFAULT", "AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX512_CORE_AMX",
                              "AVX512_CORE_AMX_FP16", "AVX10_1_512", "AVX10_1_512_AMX", "AVX10_1_512_AMX_FP16",
                              "AVX10_2_512", "AVX10_2_512_AMX_2"})
#: The environment variables that hold torch's, oneDNN's and fbgemm's kernels to an instruction set.
KERNEL_LIMITS = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "FBGEMM_ENABLE_INSTRUCTIONS")


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none)."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    return frozenset(next((line.split(":", 1)[1].split() for line in cpuinfo.splitlines()
                           if line.startswith("flags")), []))


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo with its family and model numbers, which tell apart
    CPUs that a virtual machine names alike (``AMD EPYC (family 25, model 17)`` is a Zen 4,
    family 26 a Zen 5); "unknown" where there is no /proc/cpuinfo."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown"
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        if not line.strip():
            break  # the first CPU's entry is enough
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    name = fields.get("model name", "unknown")
    if "cpu family" in fields and "model" in fields:
        name += f" (family {fields['cpu family']}, model {fields['model']})"
    return name


def kernel_limits() -> dict[str, str]:
    """The :data:`KERNEL_LIMITS` set in this process's environment (name -> value)."""
    return {name: os.environ[name] for name in KERNEL_LIMITS if os.environ.get(name)}


@cache
def native_bfloat16() -> bool:
    """Whether this CPU multiplies bfloat16 matrices natively (AMX or AVX512-BF16) and oneDNN may
    use those instructions (``ONEDNN_MAX_CPU_ISA`` unset or at least ``AVX512_CORE_BF16``), unless
    ``RNNSERVE_NATIVE_BFLOAT16`` says otherwise."""
    forced = os.environ.get(NATIVE_BF16_ENV, "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    if forced:
        raise ConfigurationError(f"{NATIVE_BF16_ENV} must be 0 or 1, got {forced!r}")
    held = os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip().upper()
    if held and held not in ONEDNN_BF16_ISAS:
        return False
    return not BF16_FLAGS.isdisjoint(cpu_flags())


def resolve(name: str) -> torch.dtype:
    """The torch dtype of a ``dtype`` option value ("auto", unmeasured: bfloat16 with native support, else float32)."""
    if name == "auto":
        return torch.bfloat16 if native_bfloat16() else torch.float32
    return DTYPES[name]


def dtype_option(options: Mapping[str, Any], model: str) -> torch.dtype:
    """The validated ``dtype`` of a model spec's options (default float32).

    int8 ``quantize`` works from float32 weights, so it excludes any other dtype ("auto"
    then means float32). "auto" alone gives the CPU-flag guess (:func:`resolve`): a backend that
    measures (``rnnserve.host.precision_choice``) decides it before calling this.
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


def precision_of(options: Mapping[str, Any], model: str) -> str:
    """The precision a model spec's options run in: one of :data:`PRECISIONS` (for "auto", the
    unmeasured guess: what a loaded model runs in is ``GetModel``'s ``precision``)."""
    dtype = dtype_option(options, model)
    if options.get("quantize"):
        return "int8"
    return "bfloat16" if dtype == torch.bfloat16 else "float32"


#: Precisions whose kernels round differently with the batch shape (no exact seeds).
REDUCED_PRECISIONS = frozenset({"bfloat16", "float16", "int8"})


def exact_seeds(precision: str) -> bool:
    """Whether a model running in ``precision`` (as loaded: ``GetModel``'s ``precision``, "" for a backend
    without torch weights) gives a seeded sample independent of its batch (see the module docstring)."""
    return precision not in REDUCED_PRECISIONS
