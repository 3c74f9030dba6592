"""Server configuration: the TOML file, its defaults, and the per-request limits.

Example (every key optional)::

    [server]
    host = "127.0.0.1"
    port = 50051
    default_models = true        # also serve the models installed plugins ship

    tls_cert = "server.pem"       # optional TLS (with tls_key); tls_client_ca for mutual TLS
    tls_key = "server.key"
    auth_token_file = "token"     # optional bearer-token auth

    [limits]
    max_prompt_chars = 8192
    max_new_tokens = 2048
    max_in_flight = 512
    step_timeout_s = 30

    [[models]]
    name = "my-lstm"
    backend = "char-lstm"
    path = "models/my-lstm"      # relative to this file
    [models.options]             # passed to the backend factory
    quantize = true
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rnnserve.edge.errors import ConfigurationError
from rnnserve.host.model_spec import ModelCard, ModelSpec


@dataclass(frozen=True)
class Limits:
    """Per-request and per-server bounds, checked before any model work."""

    max_prompt_chars: int = 8192
    max_new_tokens: int = 2048
    default_max_new_tokens: int = 256
    max_n: int = 16
    max_stop_sequences: int = 8
    max_stop_chars: int = 64
    max_texts_per_call: int = 64
    max_text_chars: int = 2000
    max_beam_size: int = 16
    max_suggestions: int = 10
    #: Assistant texts (Suggest text, Session document): recurrent state makes long documents cheap.
    max_document_chars: int = 100_000
    max_message_bytes: int = 4 * 1024 * 1024
    #: Sequences decoded together in one step.
    max_batch_size: int = 128
    #: Requests waiting per model beyond the running batch; more are RESOURCE_EXHAUSTED.
    max_queue: int = 256
    max_sessions: int = 256
    session_idle_timeout_s: float = 600.0
    #: Longest phrase suggestion a caller may ask for (SuggestOptions.max_phrase_chars).
    max_phrase_chars: int = 200
    #: Beams decoded for one Translate call: its texts' sentences (``Translator.sentences``) x beam_size
    #: (n_best <= beam_size).
    max_translation_beams: int = 256
    #: Calls in flight on the whole server (health and reflection exempt); more are
    #: RESOURCE_EXHAUSTED at once, with the retry hint below.
    max_in_flight: int = 512
    #: Back-off suggested to clients (trailing metadata ``retry-after-ms``) with every RESOURCE_EXHAUSTED.
    retry_after_ms: int = 500
    #: A model call (decoding step, prefill, translate batch, assistant call) running longer
    #: than this marks the model FAILED and fails its requests; other models keep serving.
    step_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ConfigurationError(f"limits.{f.name} must be a positive number, got {value!r}")
        if self.default_max_new_tokens > self.max_new_tokens:
            raise ConfigurationError(f"limits.default_max_new_tokens ({self.default_max_new_tokens}) must not "
                                     f"exceed limits.max_new_tokens ({self.max_new_tokens})")


@dataclass(frozen=True)
class ServerConfig:
    """Everything ``rnnserve serve`` needs."""

    host: str = "127.0.0.1"
    port: int = 50051
    #: Serve the models that installed plugins ship, besides those configured here.
    default_models: bool = True
    models: tuple[ModelSpec, ...] = ()
    limits: Limits = Limits()
    #: Seconds in-flight calls get to finish after SIGTERM.
    grace_seconds: float = 10.0
    #: Directory relative model paths are resolved against.
    base_dir: Path = Path(".")
    #: TLS: PEM certificate chain and private key; with ``tls_client_ca`` clients must
    #: present a certificate signed by that CA (mutual TLS). Relative to ``base_dir``.
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_client_ca: str | None = None
    #: Bearer-token auth: a file holding the token (relative to ``base_dir``), or the token
    #: itself (``rnnserve serve`` also reads env RNNSERVE_AUTH_TOKEN). Health is exempt.
    auth_token_file: str | None = None
    auth_token: str | None = field(default=None, repr=False)
    #: gRPC server reflection (grpcurl list/describe).
    reflection: bool = True
    #: Refuse (FAILED) model directories that have no ``manifest.json``.
    require_manifest: bool = False
    #: Log lines as "text" or "json" (one object per line).
    log_format: str = "text"
    #: Prometheus metrics over HTTP on this port (same host); None: off.
    metrics_port: int | None = None
    #: The HTTP API (OpenAI-compatible ``/v1``, JSON ``/api/v1``, ``/docs``) on this port, same
    #: host, TLS and token as gRPC (``rnnserve serve``; ``create_server`` takes the port itself); 0: off.
    http_port: int = 8000
    #: torch intra-op threads of each model thread; None: (cores - 1) // models, at least one
    #: (``rnnserve.host.torch_runtime.default_threads``).
    #: 1 avoids OpenMP oversubscription when other processes share the cores.
    torch_threads: int | None = None

    def path(self, value: str) -> Path:
        """A path from the config, relative to ``base_dir``."""
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.base_dir / path

    def replace(self, **changes: Any) -> ServerConfig:
        return dataclasses.replace(self, **changes)


def _build(cls: type, raw: dict[str, Any], where: str) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise ConfigurationError(f"unknown key(s) {unknown} in [{where}]; valid keys: {sorted(names)}")
    return cls(**raw)


def load_config(path: str | Path | None) -> ServerConfig:
    """Read a TOML config file; None gives the defaults."""
    if path is None:
        return ServerConfig()
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"cannot read config {path}: {exc}") from exc
    unknown = sorted(set(raw) - {"server", "limits", "models"})
    if unknown:
        raise ConfigurationError(f"unknown section(s) {unknown} in {path}; valid: server, limits, models")
    server = dict(raw.get("server", {}))
    if "auth_token" in server:
        raise ConfigurationError(f"[server] auth_token in {path}: put the token in a file and set auth_token_file "
                                 "(or use env RNNSERVE_AUTH_TOKEN), so the config holds no secret")
    if "base_dir" in server:
        raise ConfigurationError(f"[server] base_dir in {path}: paths are relative to the config file's directory")
    limits = _build(Limits, raw.get("limits", {}), "limits")
    models = []
    for entry in raw.get("models", []):
        entry = dict(entry)
        if "name" not in entry or "backend" not in entry:
            raise ConfigurationError(f"each [[models]] entry needs 'name' and 'backend' (got {entry})")
        card = entry.pop("card", None)
        spec = _build(ModelSpec, entry, "models")
        models.append(dataclasses.replace(spec, card=ModelCard.from_dict(card) if card else None))
    names = [m.name for m in models]
    if len(names) != len(set(names)):
        raise ConfigurationError(f"duplicate model names in {path}: {names}")
    return _build(ServerConfig, {**server, "limits": limits, "models": tuple(models),
                                 "base_dir": path.resolve().parent}, "server")
