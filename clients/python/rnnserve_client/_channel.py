"""Channel settings shared by the sync and asyncio clients.

The service config is the API's published one, ``proto/rnnserve/v1/service_config.json``
(shipped in this package as ``rnnserve_client/v1/service_config.json``; clients in other
languages load the same file). It sets ``round_robin`` load balancing (so a
multi-address target such as ``ipv4:127.0.0.1:50051,127.0.0.1:50052`` or a ``dns:///``
name with several records spreads calls over every backend), gRPC client-side health
checking (each backend's ``grpc.health.v1`` ``Watch`` on the overall service ``""``: a
replica that reports NOT_SERVING, e.g. while it drains after SIGTERM, leaves the rotation
before it stops; a server without the health service counts as healthy) and gRPC's
built-in retry policy for the unary methods only: a call that fails with UNAVAILABLE is
retried up to ``MAX_ATTEMPTS`` attempts in total, with exponential backoff, within the
call's deadline. Streaming methods get no retry policy, because a stream may already have
delivered part of its output.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import grpc

#: The published service config (``proto/rnnserve/v1/service_config.json``), as JSON text.
SERVICE_CONFIG_JSON = resources.files("rnnserve_client.v1").joinpath("service_config.json").read_text("utf-8")
_SERVICE_CONFIG: dict[str, Any] = json.loads(SERVICE_CONFIG_JSON)
#: Retry policy of the unary methods (gRPC service config syntax).
RETRY_POLICY: dict[str, Any] = _SERVICE_CONFIG["methodConfig"][0]["retryPolicy"]
#: Attempts per unary call, the first included.
MAX_ATTEMPTS: int = RETRY_POLICY["maxAttempts"]
#: Client-side health checking: watch the overall health ("") of every backend.
HEALTH_CHECK_CONFIG: dict[str, str] = _SERVICE_CONFIG["healthCheckConfig"]


def unary_methods() -> list[dict[str, str]]:
    """The methods the retry policy covers (the API's unary methods), as service config ``name`` entries."""
    return [dict(name) for name in _SERVICE_CONFIG["methodConfig"][0]["name"]]


def service_config() -> str:
    """The channel's service config as JSON: round_robin, health checking, retries for unary methods."""
    return SERVICE_CONFIG_JSON


def channel_options(max_message_bytes: int | None, options: Sequence[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """Channel arguments: the service config, message size limits, then ``options``.

    Entries of ``options`` replace the defaults of the same name.
    """
    merged: dict[str, Any] = {"grpc.enable_retries": 1, "grpc.service_config": service_config()}
    if max_message_bytes is not None:
        merged["grpc.max_send_message_length"] = max_message_bytes
        merged["grpc.max_receive_message_length"] = max_message_bytes
    merged.update(options)
    return list(merged.items())


def channel_credentials(
    credentials: grpc.ChannelCredentials | None, root_certificates: bytes | None
) -> grpc.ChannelCredentials | None:
    """TLS credentials for the channel, or None for a plaintext channel."""
    if credentials is not None and root_certificates is not None:
        raise ValueError("pass either credentials or root_certificates, not both")
    if root_certificates is not None:
        return grpc.ssl_channel_credentials(root_certificates=root_certificates)
    return credentials


@dataclass(frozen=True, slots=True)
class CallSettings:
    """The default timeout and the metadata sent with every call."""

    timeout: float | None
    metadata: tuple[tuple[str, str], ...]

    @classmethod
    def create(cls, timeout: float | None, token: str | None) -> CallSettings:
        metadata = (("authorization", f"Bearer {token}"),) if token else ()
        return cls(timeout=timeout, metadata=metadata)

    def kwargs(self, timeout: float | None) -> dict[str, Any]:
        """Keyword arguments for a stub call; ``timeout`` None means the client default."""
        return {
            "timeout": self.timeout if timeout is None else timeout,
            "metadata": self.metadata or None,
        }
