"""The public surface for plugin authors, version :data:`API_VERSION`.

Everything a backend plugin may rely on is importable from here, and ``__all__`` lists it
all; the rest of ``rnnserve`` is the host's own and may change in any release. Two more
public modules stand beside this one: :mod:`rnnserve.testing` (a real server on a loopback
port, conformance contracts) and :mod:`rnnserve.training` (trainer helpers).

What is here, by role:

* hooks: :data:`hookimpl` marks a plugin's ``register_backends``, ``register_models`` and
  ``register_commands`` (see ``rnnserve.host.hookspecs``);
* backend contracts: :class:`LanguageModel`, :class:`Translator`, :class:`Assistant` and the
  types their methods take and return; :data:`BackendFactory` and :class:`LoadContext`;
  :func:`lazy_backend` (new in 1.2), a factory that imports its backend when a model loads;
* models: :class:`ModelSpec` (what a plugin registers) and :class:`ModelCard`;
* commands: :class:`Command` (``rnnserve <group> <name>``);
* step programs, for backends that borrow another model's batched steps (the writing
  assistant): :data:`StepProgram`, :func:`run_alone`, :func:`while_true`;
* batched states: :func:`concat_states`, :func:`split_state`, :func:`select_rows`,
  :func:`state_row`, :func:`batch_size` (``rnnserve.runtime.state``);
* the errors a backend raises for a client's or an operator's mistake (each maps to one
  status code): :class:`InvalidArgument`, :class:`LimitExceeded`, :class:`SessionError`,
  :class:`ConfigurationError`;
* precision options: :func:`dtype_option`, :func:`precision_of`, :data:`DTYPES`,
  :data:`PRECISIONS`, :func:`cpu_flags`; int8 (new in 1.1): :func:`int8_copy` (the kernels
  ``quantize = true`` runs), :class:`Int8Linear`, :func:`quantize_linears` (``rnnserve.host.int8``);
* precision chosen by measurement (``dtype = "auto"``, ``rnnserve.host.precision_choice``):
  :func:`choose_precision` (returns a :class:`PrecisionChoice` with its :class:`Timing`
  figures), :func:`language_model_stepper`, :func:`language_model_reader`,
  :func:`card_costs` and :func:`cost_metrics` (the model-card metrics of quality costs),
  :func:`max_cost_option`, :data:`MAX_COST_OPTION`, :func:`checkpoint_identity` (new in 1.1);
* checkpoint manifests: :func:`write_manifest`, :func:`read_manifest`, :func:`verify_manifest`;
* the RNN family of the study notes (``rnnserve.rnn_family``): :class:`Elman`, :class:`Jordan`,
  :class:`LSTM`, :class:`PeepholeLSTM`, :class:`GRU`, :class:`Bidirectional`, their base
  :class:`Recurrent`, and the step math :func:`lstm_update`, :func:`gru_update`.

Importing this module does not import torch: the names that need it (step programs, states,
precision, the RNN family) load on first use, so a plugin's hook module stays cheap to import.

**Versions.** :data:`API_VERSION` is ``"MAJOR.MINOR"``: a minor release only adds names, a
major one may change or remove them. A plugin states the version it was written against
as a module attribute of its entry point, ``PLUGIN_API_VERSION = "1.0"``; the host refuses
to load it (with the reason, in ``rnnserve plugins``) when the major versions differ or the
plugin needs a newer minor version than the host has (:func:`api_mismatch`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from rnnserve import hookimpl
from rnnserve.backends import (
    Assistant,
    AssistantSession,
    BackendBase,
    BackendFactory,
    Hypothesis,
    LanguageModel,
    LoadContext,
    ModelKind,
    SharedLanguageModel,
    State,
    Suggestion,
    SuggestionKind,
    SuggestOptions,
    TranslateOptions,
    TranslationResult,
    Translator,
    Vocabulary,
)
from rnnserve.edge.errors import ConfigurationError, InvalidArgument, LimitExceeded, SessionError
from rnnserve.host.commands import Command
from rnnserve.host.manifest import read_manifest, verify_manifest, write_manifest
from rnnserve.host.model_spec import ModelCard, ModelSpec

if TYPE_CHECKING:
    from rnnserve.host.int8 import Int8Linear, int8_copy, quantize_linears
    from rnnserve.host.precision import DTYPES, PRECISIONS, cpu_flags, dtype_option, precision_of
    from rnnserve.host.precision_choice import (
        MAX_COST_OPTION,
        PrecisionChoice,
        Timing,
        card_costs,
        checkpoint_identity,
        choose_precision,
        cost_metrics,
        language_model_reader,
        language_model_stepper,
        max_cost_option,
    )
    from rnnserve.rnn_family import (
        GRU,
        LSTM,
        Bidirectional,
        Elman,
        Jordan,
        PeepholeLSTM,
        Recurrent,
        gru_update,
        lstm_update,
    )
    from rnnserve.runtime.state import batch_size, concat_states, select_rows, split_state, state_row
    from rnnserve.runtime.step_programs import StepProgram, run_alone, while_true

#: The plugin API this host provides ("MAJOR.MINOR").
API_VERSION = "1.2"
#: The module attribute through which a plugin states the API version it needs.
REQUIRED_VERSION_ATTRIBUTE = "PLUGIN_API_VERSION"

#: Names that need torch, and the module each loads from on first use.
_LAZY = {
    **dict.fromkeys(("StepProgram", "run_alone", "while_true"), "rnnserve.runtime.step_programs"),
    **dict.fromkeys(("concat_states", "split_state", "select_rows", "state_row", "batch_size"),
                    "rnnserve.runtime.state"),
    **dict.fromkeys(("DTYPES", "PRECISIONS", "cpu_flags", "dtype_option", "precision_of"), "rnnserve.host.precision"),
    **dict.fromkeys(("MAX_COST_OPTION", "PrecisionChoice", "Timing", "card_costs", "checkpoint_identity",
                     "choose_precision", "cost_metrics", "language_model_reader", "language_model_stepper",
                     "max_cost_option"),
                    "rnnserve.host.precision_choice"),
    **dict.fromkeys(("Int8Linear", "int8_copy", "quantize_linears"), "rnnserve.host.int8"),
    **dict.fromkeys(("Elman", "Jordan", "LSTM", "PeepholeLSTM", "GRU", "Bidirectional", "Recurrent",
                     "lstm_update", "gru_update"), "rnnserve.rnn_family"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'rnnserve.plugin_api' has no attribute {name!r}")


def lazy_backend(target: str) -> BackendFactory:
    """A backend factory that imports ``"package.module:function"`` when a model of the backend
    first loads, and returns that function's backend for (spec, context) (new in 1.2).

    A hook module registers ``lazy_backend(f"{__package__}.backend:create_backend")`` rather
    than importing its backend module, so that importing the hooks (``rnnserve plugins``,
    ``--help``) does not import torch.
    """
    module, colon, name = target.partition(":")
    if not (colon and module and name):
        raise ValueError(f"lazy_backend takes 'package.module:function', got {target!r}")

    def create(spec: ModelSpec, context: LoadContext) -> Any:
        return getattr(importlib.import_module(module), name)(spec, context)

    create.__qualname__ = create.__name__ = f"lazy_backend({target!r})"
    return create


def api_mismatch(required: object) -> str | None:
    """Why a plugin needing API version ``required`` cannot load on this host (None: it can)."""
    try:
        major, minor = (int(part) for part in str(required).split("."))
    except ValueError:
        return (f"{REQUIRED_VERSION_ATTRIBUTE} = {required!r} is not a version \"MAJOR.MINOR\" "
                f"(this rnnserve provides plugin API {API_VERSION})")
    host_major, host_minor = (int(part) for part in API_VERSION.split("."))
    if major != host_major or minor > host_minor:
        return f"needs plugin API {major}.{minor}; this rnnserve provides plugin API {API_VERSION}"
    return None


__all__ = [
    "API_VERSION",
    "DTYPES",
    "GRU",
    "LSTM",
    "MAX_COST_OPTION",
    "PRECISIONS",
    "REQUIRED_VERSION_ATTRIBUTE",
    "Assistant",
    "AssistantSession",
    "BackendBase",
    "BackendFactory",
    "Bidirectional",
    "Command",
    "ConfigurationError",
    "Elman",
    "Hypothesis",
    "Int8Linear",
    "InvalidArgument",
    "Jordan",
    "LanguageModel",
    "LimitExceeded",
    "LoadContext",
    "ModelCard",
    "ModelKind",
    "ModelSpec",
    "PeepholeLSTM",
    "PrecisionChoice",
    "Recurrent",
    "SessionError",
    "SharedLanguageModel",
    "State",
    "StepProgram",
    "SuggestOptions",
    "Suggestion",
    "SuggestionKind",
    "Timing",
    "TranslateOptions",
    "TranslationResult",
    "Translator",
    "Vocabulary",
    "api_mismatch",
    "batch_size",
    "card_costs",
    "checkpoint_identity",
    "choose_precision",
    "concat_states",
    "cost_metrics",
    "cpu_flags",
    "dtype_option",
    "gru_update",
    "hookimpl",
    "int8_copy",
    "language_model_reader",
    "language_model_stepper",
    "lazy_backend",
    "lstm_update",
    "max_cost_option",
    "precision_of",
    "quantize_linears",
    "read_manifest",
    "run_alone",
    "select_rows",
    "split_state",
    "state_row",
    "verify_manifest",
    "while_true",
    "write_manifest",
]
