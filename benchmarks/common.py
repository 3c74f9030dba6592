"""Shared benchmark helpers: percentiles, tables, server configs and the ``--quick`` option."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rnnserve.host.model_spec import ModelSpec
from rnnserve.ops.config import Limits, ServerConfig


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation."""
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[max(0, min(98, round(q) - 1))]


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table, columns right-aligned except the first."""
    cells = [[str(h) for h in headers]] + [[f"{c:,.2f}" if isinstance(c, float) else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for n, r in enumerate(cells):
        padded = (c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
        lines.append("  ".join(padded))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def toml_value(value: Any) -> str:
    """``value`` (bool, number, string, list, dict) written as a TOML value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


#: The repository's root (benchmarks run from a checkout).
REPO = Path(__file__).resolve().parents[1]
#: Austen text committed for the tests (train / val / test splits): ``--quick`` types and scores it.
QUICK_DATA = REPO / "tests" / "data" / "austen_slice"


def parse_args(parser: argparse.ArgumentParser, argv: list[str] | None, quick: dict[str, Any]) -> argparse.Namespace:
    """Add ``--quick`` to ``parser`` and parse ``argv``. ``--quick``: a run of seconds against a real
    server, the same code path at small sizes (the test suite runs it so the benchmark cannot rot);
    ``quick`` holds its defaults, and flags given explicitly still win."""
    shown = ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in quick.items() if v not in (None, False, True))
    parser.add_argument("--quick", action="store_true",
                        help=f"a seconds-long run at small sizes, as the test suite runs it ({shown})")
    args = parser.parse_args(argv)
    if args.quick:
        parser.set_defaults(**quick)
        args = parser.parse_args(argv)
    return args


def config_toml(config: ServerConfig) -> str:
    """``config``'s limits and models as the TOML of a server config file, paths made absolute."""
    lines = ["[server]", f"default_models = {toml_value(config.default_models)}"]
    if config.torch_threads:
        lines.append(f"torch_threads = {toml_value(config.torch_threads)}")
    lines += ["", "[limits]"]
    for f in dataclasses.fields(Limits):
        lines.append(f"{f.name} = {toml_value(getattr(config.limits, f.name))}")
    for spec in config.models:
        lines += ["", "[[models]]", f"name = {toml_value(spec.name)}", f"backend = {toml_value(spec.backend)}"]
        if spec.path is not None:
            lines.append(f"path = {toml_value(str(config.path(spec.path).resolve()))}")
        if spec.options:
            lines.append(f"options = {toml_value(spec.options)}")
        for key in ("max_batch_size", "step_timeout_s", "emit_interval_ms"):
            if getattr(spec, key) is not None:
                lines.append(f"{key} = {toml_value(getattr(spec, key))}")
    return "\n".join(lines) + "\n"


@functools.cache
def shipped_specs() -> dict[str, ModelSpec]:
    """The models the installed plugins ship, by name (the plugins are loaded once per process)."""
    from rnnserve.host.plugins import load_plugins

    return {spec.name: spec for spec in load_plugins().models}


def shipped_models(*names: str) -> ServerConfig:
    """A config serving only the named shipped models, as their plugins register them (so a run
    loads no more than it uses)."""
    shipped = shipped_specs()
    missing = [name for name in names if name not in shipped]
    if missing:
        raise SystemExit(f"no shipped model {', '.join(map(repr, missing))} among the installed plugins' "
                         f"({', '.join(sorted(shipped)) or 'none'}); check RNNSERVE_PLUGINS")
    return ServerConfig(default_models=False, models=tuple(shipped[name] for name in names))


def shipped_config(*names: str) -> str:
    """:func:`shipped_models` as the TOML of a server config file."""
    return config_toml(shipped_models(*names))


#: The CPU features that decide the kernels and ``dtype = "auto"`` (as the test suite's header names them).
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_bf16", "amx_int8")


def usable_cores() -> int:
    """The cores this process may run on (all of them where the OS cannot say)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def machine() -> str:
    """This machine in one line, as the test suite's header says it: CPU model, the cores this process
    may use, the :data:`ISA_FLAGS`, torch's kernels and ``dtype = "auto"``'s unmeasured guess (a loaded
    model's measured choice is ``GetModel``'s ``precision``), any instruction-set limits on the
    kernels (``scripts/as-avx2``), memory, and the load average (a
    benchmark's figures mean little without it; idle is near 0)."""
    import torch

    from rnnserve.host import precision

    flags = precision.cpu_flags()
    meminfo = Path("/proc/meminfo")
    memory = ""
    if meminfo.exists():
        lines = meminfo.read_text().splitlines()
        kib = next((int(line.split()[1]) for line in lines if line.startswith("MemTotal")), 0)
        memory = f"; {kib / 2**20:.0f} GiB"
    limits = precision.kernel_limits()
    held = ("; kernels held by " + " ".join(f"{k}={v}" for k, v in limits.items())) if limits else ""
    load = "; load average " + " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else ""
    return (f"cpu: {precision.cpu_model()}, {usable_cores()} cores; "
            + " ".join(f"{flag}={'yes' if flag in flags else 'no'}" for flag in ISA_FLAGS)
            + f"; torch {torch.__version__}: kernels {torch.backends.cpu.get_cpu_capability()}, dtype auto: "
            f"measured per model (unmeasured guess {precision.precision_of({'dtype': 'auto'}, 'auto')})"
            f"{held}{memory}{load}")


def print_machine() -> None:
    """Print :func:`machine` as a benchmark's first line (``machine: cpu: ...``), before its work starts."""
    print(f"machine: {machine()}", flush=True)
