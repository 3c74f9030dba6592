"""The assistant ``Session`` over a WebSocket: the gRPC Session's messages, one JSON text frame each.

The client sends ``SessionRequest`` objects (``{"open": {"model": ..., "text": ...}}`` first,
then ``{"append": {"text": ...}}``, ``{"delete": {"chars": ...}}``, ``{"reset": {}}``), and
receives one ``SessionResponse`` per event, exactly as from ``Assistant.Session`` (the same
servicer runs it). An error ends the session with a last frame ``{"error": {...}}`` (the
HTTP API's error object) and close code 4000 + the HTTP status (e.g. 4400, 4404, 4429);
a session that ends normally closes with 1000. A client that offers the subprotocol
``rnnserve.v1`` gets it accepted (a browser sending its token in a subprotocol must offer
it: see ``socket_token.py``).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from rnnserve.edge.errors import HTTP_STATUS
from rnnserve.edge.http.calls import CallContext, call_var, error_body, error_status
from rnnserve.edge.http.messages import parse_json, to_json, to_message
from rnnserve.edge.http.socket_token import SESSION_SUBPROTOCOL
from rnnserve.edge.services.assistant import AssistantService
from rnnserve_client.v1 import assistant_pb2

#: Close code of a session that ended with an error: this plus the error's HTTP status.
ERROR_CLOSE_BASE = 4000


async def _requests(socket: WebSocket) -> AsyncIterator[assistant_pb2.SessionRequest]:
    """The client's frames as SessionRequests, until it closes its side."""
    while True:
        message = await socket.receive()
        if message["type"] == "websocket.disconnect":
            return
        data = message.get("text")
        if data is None:
            data = message.get("bytes") or b""
        yield to_message(parse_json(data), assistant_pb2.SessionRequest)


def session_endpoint(assistant: AssistantService) -> Callable[[WebSocket], Awaitable[None]]:
    """The WebSocket endpoint running ``assistant.Session`` for one connection."""

    async def endpoint(socket: WebSocket) -> None:
        offered = SESSION_SUBPROTOCOL in socket.scope.get("subprotocols", ())
        await socket.accept(subprotocol=SESSION_SUBPROTOCOL if offered else None)
        context = CallContext()
        try:
            async for response in assistant.Session(_requests(socket), context):
                await socket.send_text(json.dumps(to_json(response), ensure_ascii=False))
        except (WebSocketDisconnect, OSError):  # the client went away (uvicorn's ClientDisconnected is an OSError)
            return
        except Exception as exc:
            await _close_with_error(socket, exc)
            return
        finally:
            context.finish()
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            if socket.client_state == WebSocketState.CONNECTED:
                await socket.close(1000)

    return endpoint


async def _close_with_error(socket: WebSocket, exc: BaseException) -> None:
    code, message = error_status(exc)
    call = call_var.get()
    if call is not None:
        call.code = code
    with contextlib.suppress(RuntimeError, WebSocketDisconnect):
        if socket.client_state == WebSocketState.CONNECTED:
            await socket.send_text(json.dumps(error_body(code, message), ensure_ascii=False))
            await socket.close(ERROR_CLOSE_BASE + HTTP_STATUS[code][0], reason=code.name)

