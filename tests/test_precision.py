"""The ``dtype`` model option: validation, "auto" following the CPU's bfloat16 support (or
``RNNSERVE_NATIVE_BFLOAT16``), and what each reduced precision promises on every CPU: the
shipped Austen model's log-probabilities stay close to float32's."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rnnserve.edge.errors import ConfigurationError
from rnnserve.host import precision
from rnnserve_plugins.char_lstm.backend import CharRNNBackend
from rnnserve_plugins.char_lstm.plugin import SHIPPED_DIR

HELD_OUT = Path(__file__).resolve().parent / "data" / "austen_slice" / "test.txt"
#: Bounds on the shipped Austen model against float32, over the first 4,000 characters of
#: HELD_OUT. Measured (2026-12-06, AMD EPYC with AVX-512; the same with ATEN_CPU_CAPABILITY=avx2
#: ONEDNN_MAX_CPU_ISA=AVX2 and with ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41):
#: bfloat16 |d nats/char| 0.0005-0.0007, max |d logprob| 0.08-0.11; int8 0.0015 and 0.44.
#: precision -> (|d nats/char|, max |d logprob| over every position and character)
BOUNDS = {"bfloat16": (0.005, 0.3), "int8": (0.005, 1.0)}


def test_explicit_dtypes_and_their_conflicts() -> None:
    assert precision.dtype_option({}, "m") == torch.float32
    assert precision.dtype_option({"dtype": "bfloat16"}, "m") == torch.bfloat16
    assert precision.dtype_option({"quantize": True, "dtype": "auto"}, "m") == torch.float32
    with pytest.raises(ConfigurationError, match="drop 'dtype'"):
        precision.dtype_option({"quantize": True, "dtype": "bfloat16"}, "m")
    with pytest.raises(ConfigurationError, match="must be one of"):
        precision.dtype_option({"dtype": "float16"}, "m")


def test_auto_is_bfloat16_exactly_where_the_cpu_multiplies_it_natively() -> None:
    """Natively or as forced by RNNSERVE_NATIVE_BFLOAT16 (tests/test_cpu_paths.py runs both)."""
    expected = torch.bfloat16 if precision.native_bfloat16() else torch.float32
    assert precision.dtype_option({"dtype": "auto"}, "m") == expected


def fake_cpuinfo(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, text: str) -> None:
    """Make ``/proc/cpuinfo`` read as ``text`` for this test."""
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(text)
    real = Path.read_text
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: real(cpuinfo if str(self) == "/proc/cpuinfo"
                                                                      else self, *a, **k))


@pytest.mark.parametrize(("flags", "native"), [
    ("fpu sse2 avx2 fma avx512f", False),
    ("fpu avx512f avx512_bf16", True),
    ("fpu amx_bf16 amx_tile", True),
])
def test_native_bfloat16_reads_the_cpu_flags(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, flags: str,
                                             native: bool) -> None:
    monkeypatch.delenv(precision.NATIVE_BF16_ENV, raising=False)
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    fake_cpuinfo(monkeypatch, tmp_path, f"processor\t: 0\nmodel name\t: test\nflags\t\t: {flags}\n")
    assert precision.native_bfloat16.__wrapped__() is native


@pytest.mark.parametrize(("held", "native"), [("AVX2", False), ("avx512_core", False), ("AVX512_CORE_BF16", True),
                                               ("AVX512_CORE_AMX", True), ("", True)])
def test_onednn_held_below_bfloat16_is_not_native(monkeypatch: pytest.MonkeyPatch, held: str, native: bool) -> None:
    """``ONEDNN_MAX_CPU_ISA`` (e.g. ``scripts/as-avx2``) takes the bfloat16 instructions away from
    oneDNN, so the unmeasured guess must not count on them."""
    monkeypatch.delenv(precision.NATIVE_BF16_ENV, raising=False)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", held)
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx2", "avx512f", "avx512_bf16"}))
    assert precision.native_bfloat16.__wrapped__() is native


def test_cpu_model_names_family_and_model(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Virtual machines name a Zen 4 and a Zen 5 alike ("AMD EPYC"): the numbers tell them apart."""
    fake_cpuinfo(monkeypatch, tmp_path, "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 26\nmodel\t\t: 2\n"
                 "model name\t: AMD EPYC\n\nprocessor\t: 1\ncpu family\t: 99\n")
    assert precision.cpu_model() == "AMD EPYC (family 26, model 2)"


@pytest.mark.parametrize(("forced", "expected"), [("1", torch.bfloat16), ("0", torch.float32)])
def test_auto_can_be_forced_to_each_path(monkeypatch: pytest.MonkeyPatch, forced: str, expected: torch.dtype) -> None:
    monkeypatch.setenv(precision.NATIVE_BF16_ENV, forced)
    precision.native_bfloat16.cache_clear()
    try:
        assert precision.dtype_option({"dtype": "auto"}, "m") == expected
        assert precision.precision_of({"dtype": "auto"}, "m") == str(expected).removeprefix("torch.")
    finally:
        precision.native_bfloat16.cache_clear()


def test_a_bad_forcing_value_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(precision.NATIVE_BF16_ENV, "yes")
    precision.native_bfloat16.cache_clear()
    try:
        with pytest.raises(ConfigurationError, match="RNNSERVE_NATIVE_BFLOAT16 must be 0 or 1"):
            precision.resolve("auto")
    finally:
        precision.native_bfloat16.cache_clear()


def test_precision_names_and_exact_seeds() -> None:
    assert precision.precision_of({}, "m") == "float32" and precision.exact_seeds("float32")
    assert precision.precision_of({"dtype": "bfloat16"}, "m") == "bfloat16"
    assert precision.precision_of({"quantize": True}, "m") == "int8"
    assert not precision.exact_seeds("int8") and not precision.exact_seeds("bfloat16")
    assert precision.exact_seeds("")  # a backend without torch weights computes its logits exactly


def _logprobs(lm: CharRNNBackend, text: str) -> tuple[float, torch.Tensor]:
    """Mean nats/char of ``text`` and every log-probability [len(text), vocab] (float64)."""
    ids, _ = lm.vocab.encode(text)
    tokens = torch.tensor([[lm.vocab.bos_id, *ids]])
    with torch.inference_mode():
        logits, _ = lm.forward(tokens[:, :-1], lm.initial_state(1))
    logprobs = torch.log_softmax(logits[0].double(), -1)
    return -logprobs[torch.arange(len(ids)), torch.tensor(ids)].mean().item(), logprobs


@pytest.mark.parametrize("name", sorted(BOUNDS))
def test_reduced_precision_stays_close_to_float32(name: str) -> None:
    text = HELD_OUT.read_text()[:4000]
    reference, reference_logprobs = _logprobs(CharRNNBackend.load(SHIPPED_DIR), text)
    options = {"bfloat16": {"dtype": torch.bfloat16}, "int8": {"quantized": True}}[name]
    nats, logprobs = _logprobs(CharRNNBackend.load(SHIPPED_DIR, **options), text)
    max_delta = (logprobs - reference_logprobs).abs().max().item()
    print(f"{name} on {precision.cpu_model()}: {nats:.5f} nats/char vs float32 {reference:.5f}; "
          f"max |d logprob| {max_delta:.3f}")
    nats_bound, logprob_bound = BOUNDS[name]
    assert abs(nats - reference) <= nats_bound
    assert max_delta <= logprob_bound
