"""The server commands: ``serve`` (one process, or ``--workers N`` under a supervisor) and
``ray-serve`` (a Ray Serve deployment)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from pathlib import Path

from rnnserve import __version__
from rnnserve.edge.errors import ConfigurationError
from rnnserve.ops.config import load_config
from rnnserve.ops.logs import LOG_FORMATS, configure_logging


def add_server_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``serve`` and ``ray-serve``."""
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
    serve.add_argument("--torch-threads", type=int,
                       help="torch threads per model thread (default: (cores - 1) // models, at least 1)")
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


def _serve(args: argparse.Namespace) -> int:
    from rnnserve.edge.app import serve
    from rnnserve.edge.auth import token_from_env

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
        from rnnserve.ops.replicas import exec_supervisor

        exec_supervisor(_replica_args(args, config.torch_threads), args.workers, config.port, config.host,
                        config.log_format, args.verbose,
                        getattr(config, "metrics_port", None),  # replica i: metrics_port + i
                        config.http_port)  # replica i: http_port + i (0: off)

    def ready(app: object) -> None:
        from rnnserve.edge.app import App

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
    from rnnserve.edge.auth import token_from_env
    from rnnserve.ops import ray_serve

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


def _replica_args(args: argparse.Namespace, torch_threads: int | None = None) -> list[str]:
    """The ``serve`` arguments of one replica of ``serve --workers N`` (the supervisor adds --port).

    ``torch_threads`` is the config's value; when neither it, ``--torch-threads`` nor
    ``OMP_NUM_THREADS`` says, the replicas share the cores: cores // N threads each (a replica's
    own rule, ``(cores - 1) // models``, does not know that N replicas share the machine).
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
        from rnnserve.host import torch_runtime

        child += ["--torch-threads", str(max(1, torch_runtime.usable_cores() // args.workers))]
    return child
