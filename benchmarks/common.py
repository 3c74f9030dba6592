"""Shared benchmark helpers: a server with the installed plugins, percentiles, tables."""

from __future__ import annotations

import statistics
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from rnnserve.config import ModelSpec, ServerConfig, load_config
from rnnserve.testing.server import ServerThread, running_server


@contextmanager
def server(config: str | Path | None = None, extra_models: Sequence[ModelSpec] = ()) -> Iterator[ServerThread]:
    """A real server: installed plugins, default models unless the config says otherwise, plus ``extra_models``."""
    base = load_config(config) if config else ServerConfig()
    with running_server(base.replace(models=(*base.models, *extra_models)), wait_loaded=600) as srv:
        yield srv


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
