"""The ``rnnserve`` command line: serve, call a server, list plugins, and plugin commands.

Client commands (generate, translate, suggest, write, models) talk to a running server
through ``rnnserve_client`` (``--tls-ca`` for TLS, ``--token-file`` or env RNNSERVE_TOKEN
for bearer-token auth); ``serve``, ``manifest`` and ``plugins`` work locally; plugins add
commands under the groups ``train``, ``data`` and ``eval`` (or at top level) through a hook.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rnnserve import __version__
from rnnserve.commands import GROUPS
from rnnserve.config import load_config
from rnnserve.errors import ConfigurationError, RnnserveError
from rnnserve.logs import LOG_FORMATS, configure_logging
from rnnserve.plugins import PluginHost, load_plugins
from rnnserve_client.errors import RnnserveError as ClientError

if TYPE_CHECKING:
    from rnnserve_client import Client

DEFAULT_TARGET = os.environ.get("RNNSERVE_TARGET", "127.0.0.1:50051")
#: Environment variable the client commands read the bearer token from (after --token-file).
CLIENT_TOKEN_ENV = "RNNSERVE_TOKEN"


def _add_target(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", default=DEFAULT_TARGET,
                        help="server address (default %(default)s; env RNNSERVE_TARGET)")
    parser.add_argument("--timeout", type=float, default=None, help="deadline per call in seconds")
    parser.add_argument("--token-file", help=f"file holding the bearer token (default: env {CLIENT_TOKEN_ENV})")
    parser.add_argument("--tls-ca", help="PEM CA certificate(s) to verify the server: connect with TLS")
    parser.add_argument("--tls-cert", help="PEM client certificate, for servers that require mutual TLS")
    parser.add_argument("--tls-key", help="PEM private key of --tls-cert")


def _read_file(path: str, what: str) -> bytes:
    try:
        return Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc


def _client(args: argparse.Namespace) -> Client:
    """A client for ``--target`` with the command's TLS and token options."""
    import grpc

    from rnnserve_client import Client

    token = os.environ.get(CLIENT_TOKEN_ENV, "").strip() or None
    if args.token_file:
        token = _read_file(args.token_file, "token file").decode("utf-8").strip()
        if not token:
            raise ConfigurationError(f"token file {args.token_file} is empty")
    if bool(args.tls_cert) != bool(args.tls_key):
        raise ConfigurationError("--tls-cert and --tls-key go together")
    root = _read_file(args.tls_ca, "CA certificate") if args.tls_ca else None
    if args.tls_cert:
        credentials = grpc.ssl_channel_credentials(root, _read_file(args.tls_key, "TLS key"),
                                                   _read_file(args.tls_cert, "TLS certificate"))
        return Client(args.target, timeout=args.timeout, credentials=credentials, token=token)
    return Client(args.target, timeout=args.timeout, root_certificates=root, token=token)


def build_parser(host: PluginHost) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rnnserve", description="Serve recurrent text models over gRPC.")
    parser.add_argument("--version", action="version", version=f"rnnserve {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the server")
    serve.add_argument("--config", help="TOML config file (models, limits, address)")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 50051; 0 picks a free one)")
    serve.add_argument("--tls-cert", help="PEM certificate chain: serve TLS (with --tls-key)")
    serve.add_argument("--tls-key", help="PEM private key of --tls-cert")
    serve.add_argument("--tls-client-ca", help="PEM CA: require client certificates it signed (mutual TLS)")
    serve.add_argument("--auth-token-file", help="require 'authorization: Bearer <token>' with the token in "
                       "this file on every RPC but health (default: env RNNSERVE_AUTH_TOKEN, if set)")
    serve.add_argument("--no-reflection", action="store_true", help="turn gRPC server reflection off")
    serve.add_argument("--metrics-port", type=int, help="serve Prometheus metrics over HTTP on this port")
    serve.add_argument("--http-port", type=int, help="serve the HTTP API (playground /, OpenAI-compatible /v1, "
                       "JSON /api/v1, /docs) on this port, same host (default 8000; 0 turns it off)")
    serve.add_argument("--torch-threads", type=int, help="torch intra-op threads (default: one per core)")
    serve.add_argument("--require-manifest", action="store_true",
                       help="refuse model directories without a manifest.json")
    serve.add_argument("--log-format", choices=LOG_FORMATS, default=None,
                       help="log lines as text (default) or JSON objects")
    serve.add_argument("--workers", type=int, default=1, metavar="N",
                       help="run N server processes on ports PORT, PORT+1, ... (0: each picks one) under one "
                       "supervisor that forwards SIGTERM; clients balance over them (docs/scaling.md)")
    serve.set_defaults(run=_serve)

    ray_serve = sub.add_parser("ray-serve", help="serve the models as a Ray Serve deployment behind Ray's gRPC "
                               "proxy (pip install 'rnnserve[ray]'; docs/scaling.md)")
    ray_serve.add_argument("--config", help="TOML config file (models, limits, auth_token_file)")
    ray_serve.add_argument("--replicas", type=int, default=1, help="replicas (autoscaling minimum; default 1)")
    ray_serve.add_argument("--max-replicas", type=int, default=None,
                           help="autoscale up to this many replicas on --target-ongoing-requests")
    ray_serve.add_argument("--target-ongoing-requests", type=float, default=8.0,
                           help="autoscaling target of requests per replica (default %(default)s)")
    ray_serve.add_argument("--max-ongoing-requests", type=int, default=64,
                           help="requests one replica runs at once (default %(default)s)")
    ray_serve.add_argument("--max-queued-requests", type=int, default=256,
                           help="requests waiting for a replica; more are RESOURCE_EXHAUSTED (-1: no limit; "
                           "default %(default)s)")
    ray_serve.add_argument("--replica-cpus", type=float, default=1.0, help="CPUs Ray reserves per replica")
    ray_serve.add_argument("--grpc-port", type=int, default=9000, help="Ray's gRPC proxy port (default 9000)")
    ray_serve.add_argument("--http-port", type=int, default=8000,
                           help="Ray Serve's HTTP proxy port, bound to 127.0.0.1 (unused; default 8000)")
    ray_serve.add_argument("--address", default=None,
                           help="Ray cluster to join ('auto': this node's); default: start a local Ray "
                           "bound to 127.0.0.1 without dashboard")
    ray_serve.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local Ray (default: all)")
    ray_serve.set_defaults(run=_ray_serve)

    manifest = sub.add_parser("manifest", help="write (or --check) the sha256 manifest.json of model directories")
    manifest.add_argument("directories", nargs="+", metavar="DIR")
    manifest.add_argument("--check", action="store_true", help="verify instead of writing")
    manifest.set_defaults(run=_manifest)

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
    tr.add_argument("--attention", metavar="PNG", help="write the first hypothesis' attention heat map here")
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

    new_plugin = sub.add_parser("new-plugin", help="create a plugin package: hooks, a backend, conformance tests")
    new_plugin.add_argument("name", help="plugin name, e.g. my-lm (distribution rnnserve-my-lm)")
    new_plugin.add_argument("--dir", default=".", help="where to create rnnserve-NAME/ (default: here)")
    new_plugin.set_defaults(run=_new_plugin)

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
    from rnnserve.auth import token_from_env

    config = load_config(args.config)
    overrides: dict[str, object] = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    for key in ("tls_cert", "tls_key", "tls_client_ca", "auth_token_file"):
        value = getattr(args, key)
        if value is not None:  # command-line paths are relative to the working directory
            overrides[key] = str(Path(value).expanduser().resolve())
    if args.no_reflection:
        overrides["reflection"] = False
    if args.metrics_port is not None:
        overrides["metrics_port"] = args.metrics_port
    if args.http_port is not None:
        overrides["http_port"] = args.http_port
    if args.torch_threads is not None:
        overrides["torch_threads"] = args.torch_threads
    if args.require_manifest:
        overrides["require_manifest"] = True
    if args.log_format:
        overrides["log_format"] = args.log_format
    config = config.replace(**overrides)
    if config.auth_token_file is None and config.auth_token is None and (token := token_from_env()):
        config = config.replace(auth_token=token)
    configure_logging(logging.DEBUG if args.verbose else logging.INFO, config.log_format)
    if args.workers < 1:
        raise ConfigurationError(f"--workers must be at least 1, got {args.workers}")
    if args.workers > 1:
        from rnnserve.replicas import exec_supervisor

        exec_supervisor(_replica_args(args, config.torch_threads), args.workers, config.port, config.host,
                        config.log_format, args.verbose,
                        getattr(config, "metrics_port", None),  # replica i: metrics_port + i
                        config.http_port)  # replica i: http_port + i (0: off)

    def ready(app: object) -> None:
        from rnnserve.app import App

        assert isinstance(app, App)
        names = ", ".join(e.name for e in app.registry.entries()) or "none"
        print(f"rnnserve {__version__} listening on {config.host}:{app.port} (models: {names})", flush=True)
        if app.http is not None:
            scheme = "https" if app.tls else "http"
            print(f"HTTP API on {scheme}://{config.host}:{app.http.port} (playground /, OpenAI-compatible /v1, "
                  "JSON /api/v1, docs /docs)", flush=True)

    asyncio.run(serve(config, on_ready=ready))
    return 0


def _ray_serve(args: argparse.Namespace) -> int:
    from rnnserve import ray_serve
    from rnnserve.auth import token_from_env

    if args.address is None:
        ray_serve.local_ray_on_loopback()  # before Ray is imported
    try:
        import ray.serve  # noqa: F401
    except ImportError as exc:  # ray is an optional extra
        raise ConfigurationError(f"rnnserve ray-serve needs Ray Serve: pip install 'rnnserve[ray]' ({exc})") from exc
    config = load_config(args.config)
    if config.auth_token_file is None and config.auth_token is None and (token := token_from_env()):
        config = config.replace(auth_token=token)
    if args.replicas < 1 or (args.max_replicas is not None and args.max_replicas < args.replicas):
        raise ConfigurationError("--replicas must be at least 1 and --max-replicas at least --replicas")
    options = ray_serve.RayServeOptions(
        replicas=args.replicas, max_replicas=args.max_replicas, target_ongoing_requests=args.target_ongoing_requests,
        max_ongoing_requests=args.max_ongoing_requests, max_queued_requests=args.max_queued_requests,
        replica_cpus=args.replica_cpus, grpc_port=args.grpc_port, http_port=args.http_port)
    return ray_serve.run(config, options, address=args.address, num_cpus=args.num_cpus)


def _cores() -> int:
    """The cores this process may run on (all of them where the OS cannot say, e.g. macOS)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _replica_args(args: argparse.Namespace, torch_threads: int | None = None) -> list[str]:
    """The ``serve`` arguments of one replica of ``serve --workers N`` (the supervisor adds --port).

    ``torch_threads`` is the config's value; when neither it, ``--torch-threads`` nor
    ``OMP_NUM_THREADS`` says, the replicas share the cores: cores // N threads each (torch's
    default, a thread per core in every replica, would put N threads on each core).
    """
    child = ["-v"] if args.verbose else []
    child.append("serve")
    if args.config:
        child += ["--config", str(Path(args.config).expanduser().resolve())]
    if args.host:
        child += ["--host", args.host]
    for key in ("tls_cert", "tls_key", "tls_client_ca", "auth_token_file"):
        value = getattr(args, key)
        if value is not None:
            child += [f"--{key.replace('_', '-')}", str(Path(value).expanduser().resolve())]
    if args.no_reflection:
        child.append("--no-reflection")
    if args.require_manifest:
        child.append("--require-manifest")
    if args.log_format:
        child += ["--log-format", args.log_format]
    if args.torch_threads is not None:
        child += ["--torch-threads", str(args.torch_threads)]
    elif torch_threads is None and "OMP_NUM_THREADS" not in os.environ:
        child += ["--torch-threads", str(max(1, _cores() // args.workers))]
    return child


def _manifest(args: argparse.Namespace) -> int:
    from rnnserve.manifest import ManifestError, verify_manifest, write_manifest

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


def _generate(args: argparse.Namespace) -> int:
    params = {k: v for k, v in {
        "max_new_tokens": args.max_new_tokens, "temperature": args.temperature, "top_k": args.top_k,
        "top_p": args.top_p, "repetition_penalty": args.repetition_penalty, "stop": args.stop,
        "seed": args.seed}.items() if v is not None}
    with _client(args) as client:
        reason, started = None, False
        try:
            for chunk in client.generate_stream(args.model, args.prompt, **params):
                if not started:  # the prompt once the server has answered, so an error stands on its own line
                    sys.stdout.write(args.prompt)
                    started = True
                sys.stdout.write(chunk.text)
                sys.stdout.flush()
                reason = chunk.finish_reason or reason
        finally:
            if started:
                sys.stdout.write("\n")
                sys.stdout.flush()
    print(f"[finish: {reason}]", file=sys.stderr)
    return 0


def _translate(args: argparse.Namespace) -> int:
    options = {k: v for k, v in {"beam_size": args.beam_size, "n_best": args.n_best}.items() if v is not None}
    with _client(args) as client:
        results = client.translate(args.model, args.texts, return_attention=bool(args.attention), **options)
    for result in results:
        for hyp in result.hypotheses:
            print(f"{hyp.score:8.3f}  {hyp.text}")
    if args.attention:
        from rnnserve.attention_plot import save_attention_png

        best = results[0].hypotheses[0]
        save_attention_png(best.attention_source_tokens, best.attention_target_tokens, best.attention, args.attention)
        print(f"attention of the first hypothesis written to {args.attention}", file=sys.stderr)
    return 0


def _suggest(args: argparse.Namespace) -> int:
    with _client(args) as client:
        for s in client.suggest(args.model, args.text, max_suggestions=args.max_suggestions,
                                kinds=tuple(args.kind or ["word"])):
            print(f"{s.probability:6.1%}  {s.kind:<10}  {s.text}")
    return 0


def _write(args: argparse.Namespace) -> int:
    from rnnserve import write_ui

    with _client(args) as client:
        document = write_ui.run(client, args.model, tuple(args.kind or ["word"]), args.max_suggestions)
    print(document)
    return 0


def _models(args: argparse.Namespace) -> int:
    with _client(args) as client:
        models = client.list_models()
    print(f"{'NAME':<24} {'KIND':<15} {'BACKEND':<18} {'STATE':<8} {'PARAMS':>12}  {'PRECISION':<9}  PLUGIN")
    for m in models:
        print(f"{m.name:<24} {m.kind:<15} {m.backend:<18} {m.state:<8} {m.parameter_count:>12,}  "
              f"{m.precision or '-':<9}  {m.plugin} {m.plugin_version}" + (f"  ({m.reason})" if m.reason else ""))
        if m.precision_choice:
            print(f"{'':<24} precision {m.precision_choice}")
    return 0


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
    from rnnserve.scaffold import create_plugin

    root = create_plugin(args.name, args.dir)
    print(f"created {root}\nnext: cd {root} && pip install -e . && pytest")
    return 0


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


if __name__ == "__main__":
    sys.exit(main())
