"""The plugin hooks. Each is callback style: the host owns the registries, plugins call ``register``.

A plugin is any module exposed through an entry point in the group ``rnnserve`` that
implements some of these hooks with ``@hookimpl`` (``rnnserve.plugin_api``). An implementation whose name
or arguments match no hook here fails its plugin with a message naming both
(``rnnserve.host.plugins.hook_problems``); ``RNNSERVE_TRACE_PLUGINS=1`` logs every hook call.
See ``docs/plugins.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from rnnserve.backends import BackendFactory
    from rnnserve.host.commands import Command
    from rnnserve.host.model_spec import ModelSpec

hookspec = pluggy.HookspecMarker("rnnserve")


@hookspec
def register_backends(register: Callable[[str, BackendFactory], None]) -> None:
    """Register backend factories: ``register("char-lstm", factory)``; see ``rnnserve.backends``."""


@hookspec
def register_models(register: Callable[[ModelSpec], None]) -> None:
    """Register models this plugin ships (served by default): ``register(ModelSpec(...))``."""


@hookspec
def register_commands(register: Callable[[Command], None]) -> None:
    """Register CLI commands, top level or under a group such as ``train`` or ``data``."""
