"""The native JSON API, ``/api/v1/...``: every RPC of ``rnnserve.v1`` over HTTP.

Each route calls the servicer method gRPC calls, with the request and response messages
in protobuf's JSON mapping (``messages.py``). Unary RPCs are ``POST`` (``GET`` for the
models index); ``GenerateStream`` is a server-sent event stream of ``GenerateStreamResponse``
objects ending in ``data: [DONE]``; the assistant ``Session`` is a WebSocket
(``session_socket.py``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute

from rnnserve.edge.errors import InvalidArgument
from rnnserve.edge.http.calls import (
    CallContext,
    ClientGone,
    error_body,
    error_response,
    error_status,
    unless_disconnected,
)
from rnnserve.edge.http.messages import read_json, sse_event, sse_response, to_json, to_message
from rnnserve.edge.http.servicers import Servicers
from rnnserve.edge.http.session_socket import session_endpoint
from rnnserve_client.v1 import assistant_pb2, generation_pb2, models_pb2, translation_pb2

PREFIX = "/api/v1"


@dataclass(frozen=True)
class JsonRpc:
    """A unary RPC served as ``POST PREFIX/path`` with a JSON body."""

    path: str
    service: str
    method: str
    request: type[Message]
    response: type[Message]
    summary: str


UNARY_RPCS = (
    JsonRpc("/generate", "generation", "Generate", generation_pb2.GenerateRequest, generation_pb2.GenerateResponse,
            "Generate text (Generation.Generate)"),
    JsonRpc("/score", "generation", "Score", generation_pb2.ScoreRequest, generation_pb2.ScoreResponse,
            "Score a text: per-token log-probabilities, bits per character (Generation.Score)"),
    JsonRpc("/translate", "translation", "Translate", translation_pb2.TranslateRequest,
            translation_pb2.TranslateResponse, "Translate texts: n-best, scores, attention (Translation.Translate)"),
    JsonRpc("/suggest", "assistant", "Suggest", assistant_pb2.SuggestRequest, assistant_pb2.SuggestResponse,
            "Writing suggestions for a text (Assistant.Suggest)"),
)
#: ``GET`` routes: the models index.
MODELS_PATH, MODEL_PATH = "/models", "/models/{name}"
STREAM_PATH, SESSION_PATH = "/generate/stream", "/session"


async def call_unary(method: Callable[[Any, CallContext], Awaitable[Message]], message: Message,
                     request: Request) -> Response:
    """Call a servicer method as gRPC does; its response as JSON, or its error as an HTTP status.
    A client that disconnects first cancels the call, as a cancelled gRPC call does."""
    context = CallContext()
    try:
        return JSONResponse(to_json(await unless_disconnected(request, method(message, context))))
    except ClientGone:
        return Response(status_code=499)  # nobody is listening
    except Exception as exc:
        return error_response(exc)
    finally:
        context.finish()


def json_routes(services: Servicers, max_bytes: int) -> list[BaseRoute]:
    """The ``/api/v1`` routes over ``services``; request bodies of at most ``max_bytes``.

    About 60 lines: the three endpoint shapes (unary, server stream, the Session socket) are
    closures over ``services`` and ``max_bytes``, next to the route table they fill.
    """

    def unary(rpc: JsonRpc) -> Callable[[Request], Awaitable[Response]]:
        method = getattr(getattr(services, rpc.service), rpc.method)

        async def endpoint(request: Request) -> Response:
            try:
                message = to_message(await read_json(request, max_bytes), rpc.request)
            except Exception as exc:
                return error_response(exc)
            return await call_unary(method, message, request)

        endpoint.__doc__ = rpc.summary
        return endpoint

    async def list_models(request: Request) -> Response:
        try:
            kind = request.query_params.get("kind")
            message = models_pb2.ListModelsRequest()
            if kind:
                message.kind = _enum_value(models_pb2.ModelKind, kind, "kind")
        except Exception as exc:
            return error_response(exc)
        return await call_unary(services.models.ListModels, message, request)

    async def get_model(request: Request) -> Response:
        return await call_unary(services.models.GetModel, models_pb2.GetModelRequest(name=request.path_params["name"]),
                                request)

    async def generate_stream(request: Request) -> Response:
        context = CallContext()
        try:
            message = to_message(await read_json(request, max_bytes), generation_pb2.GenerateRequest)
            chunks = aiter(services.generation.GenerateStream(message, context))
            first = await anext(chunks, None)  # errors before the first chunk get their own HTTP status
        except Exception as exc:
            context.finish()
            return error_response(exc)

        async def events() -> AsyncIterator[bytes]:
            try:
                if first is not None:
                    yield sse_event(to_json(first))
                    async for chunk in chunks:
                        yield sse_event(to_json(chunk))
            except Exception as exc:  # after the 200: the error is the stream's last event
                yield sse_event(_error_event(exc))
            finally:
                context.finish()
            yield sse_event("[DONE]")

        return sse_response(events())

    return [
        *(Route(PREFIX + rpc.path, unary(rpc), methods=["POST"]) for rpc in UNARY_RPCS),
        Route(PREFIX + STREAM_PATH, generate_stream, methods=["POST"]),
        Route(PREFIX + MODELS_PATH, list_models, methods=["GET"]),
        Route(PREFIX + MODEL_PATH, get_model, methods=["GET"]),
        WebSocketRoute(PREFIX + SESSION_PATH, session_endpoint(services.assistant)),
    ]


def _error_event(exc: BaseException) -> dict[str, Any]:
    code, message = error_status(exc)
    return error_body(code, message)


def _enum_value(enum: Any, name: str, field: str) -> int:
    """The number of an enum value given by name (``MODEL_KIND_TRANSLATOR``) or number."""
    if name.isdigit():
        return int(name)
    try:
        return int(enum.Value(name))
    except ValueError as exc:
        valid = ", ".join(n for n, number in enum.items() if number)
        raise InvalidArgument(f"{field}: unknown {enum.DESCRIPTOR.name} value {name!r}; valid: {valid}") from exc
