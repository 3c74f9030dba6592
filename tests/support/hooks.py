"""Collect what a plugin module's hooks register, by calling them with a list-appending callback."""

from __future__ import annotations

from types import ModuleType
from typing import Any


def registered(plugin: ModuleType) -> tuple[dict[str, Any], set[tuple[str, str]], list[Any]]:
    """(backend name -> factory, {(command group, name)}, model specs) registered by ``plugin``."""
    backends: dict[str, Any] = {}
    plugin.register_backends(register=backends.__setitem__)
    commands: list[Any] = []
    if hasattr(plugin, "register_commands"):  # hooks a plugin does not implement are optional
        plugin.register_commands(register=commands.append)
    models: list[Any] = []
    plugin.register_models(register=models.append)
    return backends, {(c.group, c.name) for c in commands}, models
