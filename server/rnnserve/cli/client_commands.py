"""The client commands: ``generate``, ``translate``, ``suggest``, ``write`` and ``models`` call a
running server through ``rnnserve_client`` (``--tls-ca`` for TLS, ``--token-file`` or env
RNNSERVE_TOKEN for bearer-token auth)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rnnserve.edge.errors import ConfigurationError

if TYPE_CHECKING:
    from rnnserve_client import Client

DEFAULT_TARGET = os.environ.get("RNNSERVE_TARGET", "127.0.0.1:50051")
#: Environment variable the client commands read the bearer token from (after --token-file).
CLIENT_TOKEN_ENV = "RNNSERVE_TOKEN"


def add_client_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``generate``, ``translate``, ``suggest``, ``write`` and ``models``."""
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
        from rnnserve.cli.attention_plot import save_attention_png

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
    from rnnserve.cli import write_ui

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
