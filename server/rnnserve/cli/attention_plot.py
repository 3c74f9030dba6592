"""Attention heat maps of translation hypotheses (``rnnserve translate --attention out.png``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def save_attention_png(source_tokens: Sequence[str], target_tokens: Sequence[str],
                       weights: Sequence[Sequence[float]], path: str | Path) -> None:
    """Draw ``weights`` [target pieces][source pieces] as a heat map (rows: target, columns: source) into ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, cols = len(target_tokens), len(source_tokens)
    if len(weights) != rows or any(len(row) != cols for row in weights):
        raise ValueError(f"weights must be {rows} rows of {cols} columns (target x source pieces)")
    fig, ax = plt.subplots(figsize=(max(4.0, 0.4 * cols + 2), max(3.0, 0.35 * rows + 1.5)), dpi=100)
    image = ax.imshow(weights if rows else [[0.0] * max(cols, 1)], cmap="Greys", vmin=0.0, vmax=1.0,
                      aspect="auto")
    ax.set_xticks(range(cols), list(source_tokens), rotation=90, fontsize=8)
    ax.set_yticks(range(rows), list(target_tokens), fontsize=8)
    ax.set_xlabel("source pieces")
    ax.set_ylabel("target pieces")
    fig.colorbar(image, ax=ax, fraction=0.04)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
