"""Test kit for plugin authors: a real server in a thread, fixtures and a backend conformance suite.

Subclass a contract in your plugin's tests and say what to test; every ``test_*`` method
of the contract then runs against your backend, directly and through a real server::

    from rnnserve.testing import LanguageModelContract

    class TestMyLM(LanguageModelContract):
        plugin = "my-lm"          # the entry-point name (or the hooks module itself)
        model = "my-lm-small"     # a model the plugin registers (or override make_spec)

Contracts: :class:`LanguageModelContract`, :class:`TranslatorContract`,
:class:`AssistantContract`. The pytest plugin :mod:`rnnserve.testing.pytest_plugin`
(registered under ``pytest11``, so loaded automatically) adds fixtures for your own
tests: ``rnnserve_plugins``, ``rnnserve_config``, ``rnnserve_host``, ``rnnserve_server``
and ``rnnserve_client``. To wait in a test for a condition rather than sleep:
:func:`wait_until` (a predicate, with a deadline) and :func:`wait_for_health` (a health
``Watch``). See ``docs/plugins.md``.

Attributes are imported on first use, so importing this package (pytest does, at
start-up) costs nothing.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "LanguageModelContract": "rnnserve.testing.contracts",
    "TranslatorContract": "rnnserve.testing.contracts",
    "AssistantContract": "rnnserve.testing.contracts",
    "ProbedLanguageModel": "rnnserve.testing.probe",
    "plugin_host": "rnnserve.testing.hosts",
    "LocalContext": "rnnserve.testing.hosts",
    "ServerThread": "rnnserve.testing.server",
    "running_server": "rnnserve.testing.server",
    "wait_until": "rnnserve.testing.waiting",
    "wait_until_async": "rnnserve.testing.waiting",
    "wait_for_health": "rnnserve.testing.waiting",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'rnnserve.testing' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
