"""JSON in and out: request bodies, protobuf messages in their canonical JSON mapping, SSE streams.

The native JSON API carries each RPC's protobuf messages in protobuf's JSON mapping, with
the proto's own field names (``max_new_tokens``, as in the ``.proto`` files; lowerCamelCase
is accepted too), enums by name and 64-bit integers as numbers (strings accepted).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.message import Message
from starlette.requests import Request
from starlette.responses import StreamingResponse

from rnnserve.edge.errors import InvalidArgument, LimitExceeded

M = TypeVar("M", bound=Message)

#: Headers of a server-sent event stream (no proxy buffering, no caching).
SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


async def read_json(request: Request, max_bytes: int) -> Any:
    """The request body parsed as JSON; InvalidArgument when it is not JSON, LimitExceeded over ``max_bytes``."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise LimitExceeded("request body (bytes)", len(body), "max_message_bytes", max_bytes)
    if not body:
        raise InvalidArgument("the request body is empty; send a JSON object (Content-Type: application/json)")
    return parse_json(bytes(body))


def parse_json(data: bytes | str) -> Any:
    try:
        return json.loads(data)
    except UnicodeDecodeError as exc:
        raise InvalidArgument("the request body is not UTF-8 text") from exc
    except RecursionError as exc:
        raise InvalidArgument("the request body nests too deeply") from exc
    except json.JSONDecodeError as exc:
        raise InvalidArgument(f"the request body is not valid JSON: {exc.msg} at line {exc.lineno} column "
                              f"{exc.colno}") from exc


def to_message(data: Any, message_type: type[M]) -> M:
    """``data`` (parsed JSON) as a ``message_type`` through protobuf's JSON mapping; InvalidArgument naming
    the field when it does not fit."""
    if not isinstance(data, dict):
        raise InvalidArgument(f"expected a JSON object ({message_type.DESCRIPTOR.name}), got {type(data).__name__}")
    try:
        return json_format.ParseDict(data, message_type())
    except json_format.ParseError as exc:
        raise InvalidArgument(f"invalid {message_type.DESCRIPTOR.name}: {exc}") from exc
    except (ValueError, TypeError, RecursionError) as exc:
        raise InvalidArgument(f"invalid {message_type.DESCRIPTOR.name}: {exc}") from exc


def to_json(message: Message) -> dict[str, Any]:
    """A protobuf message in the JSON API's form (proto field names, every field present, int64 as numbers)."""
    return json_format.MessageToDict(message, preserving_proto_field_name=True,
                                     always_print_fields_with_no_presence=True, unquote_int64_if_possible=True)


def sse_event(data: Any) -> bytes:
    """One server-sent event carrying ``data`` as JSON (or as is, for a str such as ``[DONE]``)."""
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"data: {text}\n\n".encode()


def sse_response(events: AsyncIterator[bytes]) -> StreamingResponse:
    """A ``text/event-stream`` response; the client going away cancels the task iterating ``events``."""
    return StreamingResponse(events, media_type="text/event-stream", headers=SSE_HEADERS)
