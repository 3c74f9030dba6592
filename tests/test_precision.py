"""The ``dtype`` model option: validation, and "auto" following the CPU's bfloat16 support."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rnnserve import precision
from rnnserve.errors import ConfigurationError


def test_explicit_dtypes_and_their_conflicts() -> None:
    assert precision.dtype_option({}, "m") == torch.float32
    assert precision.dtype_option({"dtype": "bfloat16"}, "m") == torch.bfloat16
    assert precision.dtype_option({"quantize": True, "dtype": "auto"}, "m") == torch.float32
    with pytest.raises(ConfigurationError, match="drop 'dtype'"):
        precision.dtype_option({"quantize": True, "dtype": "bfloat16"}, "m")
    with pytest.raises(ConfigurationError, match="must be one of"):
        precision.dtype_option({"dtype": "float16"}, "m")


def test_auto_is_bfloat16_exactly_where_the_cpu_multiplies_it_natively() -> None:
    expected = torch.bfloat16 if precision.native_bfloat16() else torch.float32
    assert precision.dtype_option({"dtype": "auto"}, "m") == expected


@pytest.mark.parametrize(("flags", "native"), [
    ("fpu sse2 avx2 fma avx512f", False),
    ("fpu avx512f avx512_bf16", True),
    ("fpu amx_bf16 amx_tile", True),
])
def test_native_bfloat16_reads_the_cpu_flags(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, flags: str,
                                             native: bool) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: test\nflags\t\t: {flags}\n")
    real = Path.read_text
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: real(cpuinfo if str(self) == "/proc/cpuinfo"
                                                                      else self, *a, **k))
    assert precision.native_bfloat16.__wrapped__() is native
