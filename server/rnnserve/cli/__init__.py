"""The ``rnnserve`` command line: serve, call a server, list plugins, and plugin commands.

One module per command group: the server commands (``server_commands.py``: serve,
ray-serve), the client commands that talk to a running server (``client_commands.py``:
generate, translate, suggest, write, models), and the local commands for plugin and model
authors (``plugin_commands.py``: plugins, new-plugin, manifest); ``scaffold.py``,
``write_ui.py`` and ``attention_plot.py`` serve them. Plugins add commands under the groups
``train``, ``data`` and ``eval`` (or at top level) through a hook.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from rnnserve import __version__
from rnnserve.cli.client_commands import add_client_commands
from rnnserve.cli.plugin_commands import add_plugin_commands
from rnnserve.cli.server_commands import add_server_commands
from rnnserve.edge.errors import RnnserveError
from rnnserve.host.commands import GROUPS
from rnnserve.host.plugins import PluginHost, load_plugins
from rnnserve.ops.logs import configure_logging
from rnnserve_client.errors import RnnserveError as ClientError


def build_parser(host: PluginHost) -> argparse.ArgumentParser:
    """The whole command line: the host's command groups and the commands ``host``'s plugins add."""
    parser = argparse.ArgumentParser(prog="rnnserve", description="Serve recurrent text models over gRPC.")
    parser.add_argument("--version", action="version", version=f"rnnserve {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    add_server_commands(sub)
    add_client_commands(sub)
    add_plugin_commands(sub, host)

    groups = {name: sub.add_parser(name, help=text).add_subparsers(dest="subcommand", required=True,
                                                                    metavar="BACKEND")
              for name, text in GROUPS.items()}
    for command in host.commands:
        target = groups[command.group] if command.group else sub
        cmd_parser = target.add_parser(command.name, help=command.help, description=command.help)
        command.add_arguments(cmd_parser)
        cmd_parser.set_defaults(run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    host = load_plugins()
    args = build_parser(host).parse_args(argv)
    configure_logging(logging.DEBUG if args.verbose else logging.INFO)
    try:
        return int(args.run(args) or 0)
    except RnnserveError as exc:
        print(f"rnnserve: {exc}", file=sys.stderr)
        return 2
    except ClientError as exc:
        print(f"rnnserve: {exc.code.name}: {exc.details}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
