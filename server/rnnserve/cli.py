"""The ``rnnserve`` command line: serve, call a server, list plugins, and plugin commands.

Client commands (generate, translate, suggest, models) talk to a running server through
``rnnserve_client``; ``serve`` and ``plugins`` work locally; plugins add commands under
the groups ``train``, ``data`` and ``eval`` (or at top level) through a hook.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from rnnserve import __version__
from rnnserve.commands import GROUPS
from rnnserve.config import load_config
from rnnserve.errors import RnnserveError
from rnnserve.plugins import PluginHost, load_plugins
from rnnserve_client.errors import RnnserveError as ClientError

DEFAULT_TARGET = os.environ.get("RNNSERVE_TARGET", "127.0.0.1:50051")


def _add_target(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", default=DEFAULT_TARGET,
                        help="server address (default %(default)s; env RNNSERVE_TARGET)")
    parser.add_argument("--timeout", type=float, default=None, help="deadline per call in seconds")


def build_parser(host: PluginHost) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rnnserve", description="Serve recurrent text models over gRPC.")
    parser.add_argument("--version", action="version", version=f"rnnserve {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the server")
    serve.add_argument("--config", help="TOML config file (models, limits, address)")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 50051; 0 picks a free one)")
    serve.set_defaults(run=_serve)

    gen = sub.add_parser("generate", help="generate text, streaming it to the terminal")
    _add_target(gen)
    gen.add_argument("model")
    gen.add_argument("prompt")
    gen.add_argument("--max-new-tokens", type=int, default=None)
    gen.add_argument("--temperature", type=float, default=None)
    gen.add_argument("--top-k", type=int, default=None)
    gen.add_argument("--top-p", type=float, default=None)
    gen.add_argument("--repetition-penalty", type=float, default=None)
    gen.add_argument("--stop", action="append", default=None, help="stop sequence (repeatable)")
    gen.add_argument("--seed", type=int, default=None)
    gen.set_defaults(run=_generate)

    tr = sub.add_parser("translate", help="translate texts")
    _add_target(tr)
    tr.add_argument("model")
    tr.add_argument("texts", nargs="+")
    tr.add_argument("--beam-size", type=int, default=None)
    tr.add_argument("--n-best", type=int, default=None)
    tr.set_defaults(run=_translate)

    sg = sub.add_parser("suggest", help="writing suggestions for a text")
    _add_target(sg)
    sg.add_argument("model")
    sg.add_argument("text")
    sg.add_argument("--kind", action="append", choices=["word", "next_words", "phrase"], default=None)
    sg.add_argument("-n", "--max-suggestions", type=int, default=3)
    sg.set_defaults(run=_suggest)

    wr = sub.add_parser("write", help="type with live suggestions (Tab accepts, Ctrl-D ends)")
    _add_target(wr)
    wr.add_argument("model")
    wr.add_argument("--kind", action="append", choices=["word", "next_words", "phrase"], default=None)
    wr.add_argument("-n", "--max-suggestions", type=int, default=3)
    wr.set_defaults(run=_write)

    models = sub.add_parser("models", help="list the models a server hosts")
    _add_target(models)
    models.set_defaults(run=_models)

    plugins = sub.add_parser("plugins", help="list installed plugins, their backends and models")
    plugins.set_defaults(run=lambda args: _plugins(host))

    groups = {name: sub.add_parser(name, help=text).add_subparsers(dest="subcommand", required=True,
                                                                    metavar="BACKEND")
              for name, text in GROUPS.items()}
    for command in host.commands:
        target = groups[command.group] if command.group else sub
        cmd_parser = target.add_parser(command.name, help=command.help, description=command.help)
        command.add_arguments(cmd_parser)
        cmd_parser.set_defaults(run=command.run)
    return parser


def _serve(args: argparse.Namespace) -> int:
    from rnnserve.app import serve

    config = load_config(args.config)
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    config = config.replace(**overrides)

    def ready(app: object) -> None:
        from rnnserve.app import App

        assert isinstance(app, App)
        names = ", ".join(e.name for e in app.registry.entries()) or "none"
        print(f"rnnserve {__version__} listening on {config.host}:{app.port} (models: {names})", flush=True)

    asyncio.run(serve(config, on_ready=ready))
    return 0


def _generate(args: argparse.Namespace) -> int:
    from rnnserve_client import Client

    params = {k: v for k, v in {
        "max_new_tokens": args.max_new_tokens, "temperature": args.temperature, "top_k": args.top_k,
        "top_p": args.top_p, "repetition_penalty": args.repetition_penalty, "stop": args.stop,
        "seed": args.seed}.items() if v is not None}
    with Client(args.target, timeout=args.timeout) as client:
        sys.stdout.write(args.prompt)
        reason = None
        for chunk in client.generate_stream(args.model, args.prompt, **params):
            sys.stdout.write(chunk.text)
            sys.stdout.flush()
            reason = chunk.finish_reason or reason
    sys.stdout.write("\n")
    print(f"[finish: {reason}]", file=sys.stderr)
    return 0


def _translate(args: argparse.Namespace) -> int:
    from rnnserve_client import Client

    options = {k: v for k, v in {"beam_size": args.beam_size, "n_best": args.n_best}.items() if v is not None}
    with Client(args.target, timeout=args.timeout) as client:
        for result in client.translate(args.model, args.texts, **options):
            for hyp in result.hypotheses:
                print(f"{hyp.score:8.3f}  {hyp.text}")
    return 0


def _suggest(args: argparse.Namespace) -> int:
    from rnnserve_client import Client

    with Client(args.target, timeout=args.timeout) as client:
        for s in client.suggest(args.model, args.text, max_suggestions=args.max_suggestions,
                                kinds=tuple(args.kind or ["word"])):
            print(f"{s.probability:6.1%}  {s.kind:<10}  {s.text}")
    return 0


def _write(args: argparse.Namespace) -> int:
    from rnnserve import write_ui
    from rnnserve_client import Client

    with Client(args.target, timeout=args.timeout) as client:
        document = write_ui.run(client, args.model, tuple(args.kind or ["word"]), args.max_suggestions)
    print(document)
    return 0


def _models(args: argparse.Namespace) -> int:
    from rnnserve_client import Client

    with Client(args.target, timeout=args.timeout) as client:
        models = client.list_models()
    print(f"{'NAME':<24} {'KIND':<15} {'BACKEND':<18} {'STATE':<8} {'PARAMS':>12}  PLUGIN")
    for m in models:
        print(f"{m.name:<24} {m.kind:<15} {m.backend:<18} {m.state:<8} {m.parameter_count:>12,}  "
              f"{m.plugin} {m.plugin_version}" + (f"  ({m.reason})" if m.reason else ""))
    return 0


def _plugins(host: PluginHost) -> int:
    if not host.plugins:
        print("no plugins installed")
    for p in host.plugins:
        print(f"{p.name} ({p.distribution} {p.version}): {p.state}" + (f" - {p.reason}" if p.reason else ""))
        for label, items in (("backends", p.backends), ("models", p.models), ("commands", p.commands)):
            if items:
                print(f"    {label}: {', '.join(items)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    host = load_plugins()
    args = build_parser(host).parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
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


if __name__ == "__main__":
    sys.exit(main())
