"""A trainer's command line: the options every trainer has, one flag per config field, run/main.

``--data``, ``--out``, ``--config`` (a JSON file ``{"model": {...}, "train": {...}}``),
``--quiet`` and ``--snapshot`` are common to the trainers; every field of the model's and the
training's config dataclass becomes a flag (``--hidden-size``, ``--max-steps``) that overrides
the file. :class:`TrainerCommand` holds a trainer's options and runs it (as ``rnnserve train``
or ``python -m <trainer module>``).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import Field, dataclass, field, fields
from pathlib import Path
from typing import Any

from torch import distributed as dist

from .helpers import DEVICES, TrainingSetupError


def _flag_type(default: object) -> Callable[[str], Any]:
    if isinstance(default, bool):  # bool("false") is True
        return lambda text: text.lower() in ("1", "true", "yes")
    return type(default)


def add_config_flags(parser: argparse.ArgumentParser, sections: Mapping[str, Mapping[str, Field]],
                     choices: Mapping[str, Sequence[str]] | None = None) -> None:
    """One ``--name`` flag per field of each section's config dataclass (``sections``: section
    name, e.g. "model" or "train" -> {field name: field}), stored as ``"SECTION.name"`` and None
    when not given, so :func:`config_sections` can tell given flags from defaults. ``choices``
    limits a field's values by its name."""
    for section, flags in sections.items():
        for name, flag in flags.items():
            parser.add_argument(f"--{name.replace('_', '-')}", dest=f"{section}.{name}", default=None,
                                metavar=type(flag.default).__name__.upper(), type=_flag_type(flag.default),
                                choices=(choices or {}).get(name), help=f"{section} {name} (default {flag.default})")


def config_sections(args: argparse.Namespace, sections: Mapping[str, Mapping[str, Field]],
                    config_file: Path | None = None) -> dict[str, dict]:
    """Each section's options: the JSON ``config_file``'s (``{"model": {...}, "train": {...}}``),
    overridden by the flags given. Raises SystemExit naming any option no section has."""
    raw = json.loads(config_file.read_text()) if config_file else {}
    merged: dict[str, dict] = {section: dict(raw.get(section, {})) for section in sections}
    for key, value in vars(args).items():
        section, _, name = key.partition(".")
        if section in merged and value is not None:
            merged[section][name] = value
    unknown = [f"{section}.{name}" for section, options in merged.items() for name in sorted(options)
               if name not in sections[section]]
    if unknown:
        raise SystemExit(f"unknown option(s) {unknown}")
    return merged


@dataclass(frozen=True)
class TrainerCommand:
    """A trainer's command: the common options, a flag per config field, and how it starts.

    ``model_config`` and ``train_config`` are the dataclasses behind the ``"model"`` and
    ``"train"`` sections (the model's ``vocab_size`` comes from the data, so it has no flag);
    ``start(args, model_options, train_config)`` runs the training; ``choices`` limits a
    field's values by its name (``device`` always to :data:`DEVICES`); ``extra_flags`` are the
    trainer's own options (``{"--vocab": {"type": Path, "help": ...}}``); ``errors`` are the
    exceptions printed as one line (besides :class:`TrainingSetupError`).
    """

    module: str
    description: str
    model_config: type
    train_config: type
    start: Callable[[argparse.Namespace, dict, Any], object]
    data_help: str
    snapshot_help: str = ("also keep a small copy of last/ here (float16 weights, no optimizer state) to commit; "
                          "a run without OUT/last resumes from it")
    choices: Mapping[str, Sequence[str]] = field(default_factory=dict)
    extra_flags: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    errors: tuple[type[Exception], ...] = ()

    def sections(self) -> dict[str, dict[str, Field]]:
        """{"model": {field name: field}, "train": {...}}: the flags :func:`add_config_flags` makes."""
        return {"model": {f.name: f for f in fields(self.model_config) if f.name != "vocab_size"},
                "train": {f.name: f for f in fields(self.train_config)}}

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Add the common options, the trainer's own and the config flags to ``parser``."""
        parser.add_argument("--data", type=Path, required=True, help=self.data_help)
        parser.add_argument("--out", type=Path, required=True, help="run directory (best/, last/, loss.png)")
        parser.add_argument("--config", type=Path,
                            help='JSON file {"model": {...}, "train": {...}}; flags override it')
        parser.add_argument("--quiet", action="store_true", help="no progress bar")
        parser.add_argument("--snapshot", type=Path, help=self.snapshot_help)
        for flag, options in self.extra_flags.items():
            parser.add_argument(flag, **options)
        add_config_flags(parser, self.sections(), {"device": DEVICES, **self.choices})

    def parse(self, args: argparse.Namespace) -> tuple[dict, Any]:
        """The model section's options (a dict: a resumed run keeps its checkpoint's model) and the
        training config, from ``--config`` overridden by the flags given."""
        sections = config_sections(args, self.sections(), args.config)
        return sections["model"], self.train_config(**sections["train"])

    def run(self, args: argparse.Namespace) -> int:
        """Train as ``args`` say; a set-up error ends the command with one line, not a traceback.
        Leaves torchrun's process group afterwards."""
        try:
            self.start(args, *self.parse(args))
        except (TrainingSetupError, *self.errors) as exc:
            raise SystemExit(f"error: {exc}") from None
        if dist.is_initialized():
            dist.destroy_process_group()
        return 0

    def main(self, argv: Sequence[str] | None = None) -> int:
        """``python -m module``: parse ``argv`` (default ``sys.argv[1:]``), then :meth:`run`."""
        parser = argparse.ArgumentParser(prog=f"python -m {self.module}", description=self.description)
        self.add_arguments(parser)
        return self.run(parser.parse_args(argv))
