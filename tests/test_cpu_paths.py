"""Every CPU-dependent path runs on every CPU.

The suite itself runs with this CPU's own kernels. Here the numerical contracts (the
char-LSTM conformance in float32, bfloat16, int8 and ``dtype = "auto"``, and the
precision bounds) run again in a child process with the kernels forced down to another
instruction set: torch's ATen by ``ATEN_CPU_CAPABILITY``, oneDNN by ``ONEDNN_MAX_CPU_ISA`` and
fbgemm (int8) by ``FBGEMM_ENABLE_INSTRUCTIONS``, all read when a process starts, and ``"auto"`` forced to each
precision by ``RNNSERVE_PRECISION`` (its unmeasured guess by ``RNNSERVE_NATIVE_BFLOAT16``).
So an AVX-512 or AMX machine also checks what an AVX2-only machine would run, and every
machine checks the plain (no SIMD) kernels.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rnnserve.host import precision
from rnnserve.host.precision_choice import PRECISION_ENV

ROOT = Path(__file__).resolve().parents[1]
CONFORMANCE = "tests/conformance/test_conformance_char_lstm.py"
CONTRACTS = [f"{CONFORMANCE}::{cls}" for cls in ("TestCharLSTM", "TestCharLSTMBFloat16", "TestCharLSTMInt8",
                                                 "TestCharLSTMAuto")]
#: path -> (the CPU flag it needs, ATEN_CPU_CAPABILITY, ONEDNN_MAX_CPU_ISA, FBGEMM_ENABLE_INSTRUCTIONS,
#: RNNSERVE_NATIVE_BFLOAT16, RNNSERVE_PRECISION). fbgemm has no kernels below AVX2 (it needs AVX2:
#: below it torch has no fbgemm and int8 runs the onednn kernels), so no-simd leaves it unset.
PATHS = {
    "avx2": ("avx2", "avx2", "AVX2", "AVX2", "0", "int8"),
    "no-simd": ("sse4_1", "default", "SSE41", "", "1", "bfloat16"),
}


@pytest.mark.parametrize("path", sorted(PATHS))
def test_the_numerical_contracts_hold_on_the_forced_path(path: str) -> None:
    flag, aten, onednn, fbgemm, native_bf16, forced = PATHS[path]
    if flag not in precision.cpu_flags():
        pytest.skip(f"this CPU ({precision.cpu_model()}) has no {flag}: the {path} kernels cannot run here")
    limits = dict(zip(precision.KERNEL_LIMITS, (aten, onednn, fbgemm), strict=True))
    env = {**{k: v for k, v in os.environ.items() if k not in limits},
           **{k: v for k, v in limits.items() if v}, precision.NATIVE_BF16_ENV: native_bf16, PRECISION_ENV: forced}
    capability = subprocess.run([sys.executable, "-c", "import torch; print(torch.backends.cpu.get_cpu_capability())"],
                                env=env, capture_output=True, text=True, timeout=60, check=True).stdout.strip()
    assert capability.lower() == ("default" if aten == "default" else aten), \
        f"ATEN_CPU_CAPABILITY={aten} did not take effect: torch runs {capability}"
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *CONTRACTS,
                           "tests/test_precision.py"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-2000:]
    held = " ".join(f"{k}={v}" for k, v in limits.items() if v)
    print(f"{path} ({held} {precision.NATIVE_BF16_ENV}={native_bf16} {PRECISION_ENV}={forced}): {summary}")
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
