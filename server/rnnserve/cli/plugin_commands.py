"""The local commands for plugin and model authors: ``plugins`` (what is installed),
``new-plugin`` (a plugin package from the scaffold) and ``manifest`` (model directories'
sha256 manifests)."""

from __future__ import annotations

import argparse
import sys

from rnnserve import __version__
from rnnserve.host.plugins import PluginHost


def add_plugin_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser], host: PluginHost) -> None:
    """``plugins``, ``new-plugin`` and ``manifest``."""
    plugins = sub.add_parser("plugins", help="list installed plugins, their backends and models")
    plugins.set_defaults(run=lambda args: _plugins(host))

    new_plugin = sub.add_parser("new-plugin", help="create a plugin package: hooks, a backend, conformance tests")
    new_plugin.add_argument("name", help="plugin name, e.g. my-lm (distribution rnnserve-my-lm)")
    new_plugin.add_argument("--dir", default=".", help="where to create rnnserve-NAME/ (default: here)")
    new_plugin.set_defaults(run=_new_plugin)

    manifest = sub.add_parser("manifest", help="write (or --check) the sha256 manifest.json of model directories")
    manifest.add_argument("directories", nargs="+", metavar="DIR")
    manifest.add_argument("--check", action="store_true", help="verify instead of writing")
    manifest.set_defaults(run=_manifest)


def _plugins(host: PluginHost) -> int:
    from rnnserve.plugin_api import API_VERSION

    print(f"rnnserve {__version__}, plugin API {API_VERSION}")
    if not host.plugins:
        print("no plugins installed")
    for p in host.plugins:
        needs = f", needs plugin API {p.plugin_api}" if p.plugin_api else ""
        print(f"{p.name} ({p.distribution} {p.version}{needs}): {p.state}" + (f" - {p.reason}" if p.reason else ""))
        for label, items in (("hooks", p.hooks), ("backends", p.backends), ("models", p.models),
                             ("commands", p.commands)):
            if items:
                print(f"    {label}: {', '.join(items)}")
    return 0


def _new_plugin(args: argparse.Namespace) -> int:
    from rnnserve.cli.scaffold import create_plugin

    root = create_plugin(args.name, args.dir)
    print(f"created {root}\nnext: cd {root} && pip install -e . && pytest")
    return 0


def _manifest(args: argparse.Namespace) -> int:
    from rnnserve.host.manifest import ManifestError, verify_manifest, write_manifest

    failures = 0
    for directory in args.directories:
        try:
            if args.check:
                if verify_manifest(directory):
                    print(f"{directory}: ok")
                else:
                    print(f"{directory}: no manifest.json")
                    failures += 1
            else:
                print(f"wrote {write_manifest(directory)}")
        except (ManifestError, OSError) as exc:
            print(f"{directory}: {exc}", file=sys.stderr)
            failures += 1
    return 1 if failures else 0
