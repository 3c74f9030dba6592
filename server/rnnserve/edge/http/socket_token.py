"""A bearer token for a WebSocket, carried in its subprotocol list: browsers cannot set headers on one.

A browser's ``new WebSocket(url, protocols)`` sends no ``Authorization`` header, and a token
in the URL's query string would end up in access logs, proxies' logs and the browser's
history. So, as Kubernetes' API server does, the client offers two subprotocols::

    Sec-WebSocket-Protocol: rnnserve.v1, rnnserve.bearer.<base64url(token), no padding>

:func:`take_socket_token` (called by the admission middleware before it checks the token)
takes the ``rnnserve.bearer.`` entry out of the connection's scope, both its
``subprotocols`` list and the raw header, so nothing after admission sees it; the server
accepts with :data:`SESSION_SUBPROTOCOL` only, never echoing the token back. An
``Authorization`` header, where a client can send one, is used as for any other request.
"""

from __future__ import annotations

import base64
import binascii

from starlette.types import Scope

#: The subprotocol the Session WebSocket speaks (and accepts when offered).
SESSION_SUBPROTOCOL = "rnnserve.v1"
#: Prefix of the subprotocol carrying the bearer token, base64url-encoded without padding.
BEARER_PREFIX = "rnnserve.bearer."
_PROTOCOL_HEADER = b"sec-websocket-protocol"


def _decode(encoded: str) -> str | None:
    try:
        return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode("utf-8")
    except (binascii.Error, ValueError):
        return None


def take_socket_token(scope: Scope) -> tuple[Scope, str | None]:
    """``scope`` without the bearer subprotocol, and the token it carried (None: none, or not
    valid base64url UTF-8, which then counts as no token)."""
    offered: list[str] = list(scope.get("subprotocols", ()))
    carriers = [p for p in offered if p.startswith(BEARER_PREFIX)]
    if not carriers:
        return scope, None
    rest = [p for p in offered if not p.startswith(BEARER_PREFIX)]
    headers = [(k, v) for k, v in scope.get("headers", ()) if k.lower() != _PROTOCOL_HEADER]
    if rest:
        headers.append((_PROTOCOL_HEADER, ", ".join(rest).encode("latin-1")))
    return {**scope, "subprotocols": rest, "headers": headers}, _decode(carriers[0][len(BEARER_PREFIX):])
