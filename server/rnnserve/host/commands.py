"""CLI commands contributed by plugins through the ``register_commands`` hook."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

#: Command groups the host provides; a plugin command names one, or None for top level.
GROUPS = {
    "train": "train a model with a backend's own trainer",
    "data": "obtain and prepare a training corpus",
    "eval": "evaluate a trained model",
}


@dataclass(frozen=True)
class Command:
    """A CLI command: ``rnnserve [group] name ...``.

    ``add_arguments`` fills the command's argparse parser; ``run`` receives the parsed
    namespace and returns the process exit status.
    """

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    group: str | None = None
