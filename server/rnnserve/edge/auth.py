"""Transport security and caller authentication: TLS / mutual TLS and bearer tokens.

* TLS: ``tls_cert`` + ``tls_key`` (PEM) turn the listening port into a TLS port; with
  ``tls_client_ca`` every client must present a certificate signed by that CA (mTLS).
* Bearer token: with a token configured, every RPC except health must carry metadata
  ``authorization: Bearer <token>``; the comparison is constant-time
  (``hmac.compare_digest``) and a missing or wrong token is UNAUTHENTICATED.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
from collections.abc import Iterable
from pathlib import Path

import grpc

from rnnserve.edge.errors import ConfigurationError
from rnnserve.ops.config import ServerConfig

log = logging.getLogger("rnnserve.auth")

#: Environment variable ``rnnserve serve`` reads the token from (after --auth-token-file).
TOKEN_ENV = "RNNSERVE_AUTH_TOKEN"
AUTHORIZATION_KEY = "authorization"
_BEARER = "bearer "


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc


def read_token_file(path: Path) -> str:
    """The token in ``path`` (surrounding whitespace removed); it must not be empty."""
    token = _read(path, "auth token file").decode("utf-8", "strict").strip()
    if not token:
        raise ConfigurationError(f"auth token file {path} is empty")
    if any(ch.isspace() or not ch.isprintable() for ch in token):
        raise ConfigurationError(f"auth token in {path} must be one line of printable characters without spaces")
    return token


def resolve_token(config: ServerConfig) -> str | None:
    """The bearer token the server requires, or None for no auth (config value, then file)."""
    if config.auth_token is not None:
        if not config.auth_token.strip():
            raise ConfigurationError("the auth token must not be empty")
        return config.auth_token.strip()
    if config.auth_token_file:
        return read_token_file(config.path(config.auth_token_file))
    return None


class TokenChecker:
    """Checks the ``authorization: Bearer <token>`` metadata of a call in constant time."""

    def __init__(self, token: str) -> None:
        self._token = token.encode()

    def check(self, metadata: Iterable[tuple[str, str | bytes]] | None) -> bool:
        supplied = b""
        for key, value in metadata or ():
            if key == AUTHORIZATION_KEY:
                text = value.decode("latin-1") if isinstance(value, bytes) else value
                if text[: len(_BEARER)].lower() == _BEARER:
                    supplied = text[len(_BEARER):].strip().encode("utf-8", "replace")
                break
        # compare_digest on every call, even without a token, so timing does not tell the two apart
        return hmac.compare_digest(supplied, self._token) and bool(supplied)


def server_credentials(config: ServerConfig) -> grpc.ServerCredentials | None:
    """TLS credentials from ``tls_cert``/``tls_key`` (and ``tls_client_ca`` for mTLS), or None."""
    if not config.tls_cert and not config.tls_key:
        if config.tls_client_ca:
            raise ConfigurationError("tls_client_ca needs tls_cert and tls_key (mutual TLS runs over TLS)")
        return None
    if not (config.tls_cert and config.tls_key):
        raise ConfigurationError("TLS needs both tls_cert and tls_key")
    cert = _read(config.path(config.tls_cert), "TLS certificate")
    key = _read(config.path(config.tls_key), "TLS private key")
    client_ca = _read(config.path(config.tls_client_ca), "TLS client CA") if config.tls_client_ca else None
    return grpc.ssl_server_credentials([(key, cert)], root_certificates=client_ca,
                                       require_client_auth=client_ca is not None)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def warn_about_exposure(config: ServerConfig, tls: bool, token: str | None) -> None:
    """Log what an operator should know when the server is reachable beyond this machine."""
    if is_loopback(config.host):
        return
    if not tls:
        log.warning("serving on %s without TLS: traffic%s is readable on the network (see tls_cert/tls_key)",
                    config.host, " and the bearer token" if token else "")
    if token is None:
        log.warning("serving on %s without authentication: anyone who can connect can call every RPC "
                    "(see --auth-token-file)", config.host)


def token_from_env() -> str | None:
    value = os.environ.get(TOKEN_ENV, "").strip()
    return value or None
