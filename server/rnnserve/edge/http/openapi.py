"""The OpenAPI 3.1 document of the HTTP API (``GET /openapi.json``).

The native JSON API's schemas come from the protos (``proto_schemas.py``); the
OpenAI-compatible routes' schemas are written here, after OpenAI's legacy completions API
as far as rnnserve implements it (``completions.py``).
"""

from __future__ import annotations

from typing import Any

from rnnserve import __version__
from rnnserve.edge.http import completions, json_api
from rnnserve.edge.http.proto_schemas import proto_schemas, schema_name

ERROR_STATUSES = {"400": "Invalid request: a parameter, a limit (named), an unknown route",
                  "401": "Missing or wrong bearer token", "404": "No such model (the message lists the models)",
                  "429": "Overloaded: a queue or max_in_flight is full (headers retry-after-ms, Retry-After)",
                  "500": "Internal error (the message names the request id; details are in the server log)",
                  "503": "The model is loading, or the server is draining"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _responses(ok: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    errors = {status: {"description": text, "content": _json(_ref("Error"))} for status, text in ERROR_STATUSES.items()}
    return {"200": {"description": description, "content": ok}, **errors}


def _string_or_list(description: str) -> dict[str, Any]:
    return {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}, {"type": "null"}],
            "description": description}


def _openai_schemas() -> dict[str, Any]:
    number = {"type": ["number", "null"]}
    integer = {"type": ["integer", "null"]}
    return {
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {
            "type": "object", "required": ["message", "type", "code"], "properties": {
                "message": {"type": "string"}, "type": {"type": "string", "description": "e.g. invalid_request_error"},
                "param": {"type": ["string", "null"], "description": "the parameter at fault, when known"},
                "code": {"type": "string", "description": "the gRPC status code's name in lower case, e.g. "
                                                          "invalid_argument, not_found, resource_exhausted"}}}}},
        "Model": {"type": "object", "required": ["id", "object"], "properties": {
            "id": {"type": "string"}, "object": {"const": "model"}, "created": {"type": "integer"},
            "owned_by": {"type": "string", "description": "the plugin distribution that serves it"}}},
        "ModelList": {"type": "object", "properties": {"object": {"const": "list"},
                                                       "data": {"type": "array", "items": _ref("Model")}}},
        "CompletionRequest": {"type": "object", "required": ["model"], "properties": {
            "model": {"type": "string", "description": "a language model (GET /v1/models)"},
            "prompt": _string_or_list("text to continue, or a list of them (one completion set each); default ''"),
            "max_tokens": {**integer, "minimum": 1, "description": f"default {completions.DEFAULT_MAX_TOKENS}"},
            "temperature": {**number, "minimum": 0, "description": "0 is greedy; default 1"},
            "top_p": {**number, "exclusiveMinimum": 0, "maximum": 1},
            "n": {**integer, "minimum": 1, "description": "completions per prompt (limit max_n)"},
            "stop": _string_or_list("stop sequences (never part of the text)"),
            "seed": {**integer, "minimum": 0, "description": "sample j of a prompt uses seed + j"},
            "logprobs": {**integer, "minimum": 0, "maximum": completions.MAX_LOGPROBS,
                         "description": "any value: each token's log-probability (top_logprobs is null)"},
            "echo": {"type": ["boolean", "null"], "description": "prepend the prompt to each text"},
            "stream": {"type": ["boolean", "null"], "description": "server-sent events ending in data: [DONE]"},
            "stream_options": {"type": ["object", "null"], "properties": {"include_usage": {"type": "boolean"}}},
            "top_k": {**integer, "minimum": 0, "description": "rnnserve extension: sample from the k likeliest"},
            "repetition_penalty": {**number, "description": "rnnserve extension"},
            "presence_penalty": {**number, "description": "accepted only as 0"},
            "frequency_penalty": {**number, "description": "accepted only as 0"},
            "best_of": {**integer, "description": "accepted only as 1"},
            "logit_bias": {"type": ["object", "null"], "description": "accepted only empty"},
            "suffix": {"type": ["string", "null"], "description": "accepted only empty"},
            "user": {"type": ["string", "null"], "description": "ignored"}}},
        "Logprobs": {"type": ["object", "null"], "properties": {
            "tokens": {"type": "array", "items": {"type": "string"}},
            "token_logprobs": {"type": "array", "items": {"type": "number"}},
            "top_logprobs": {"type": "null"},
            "text_offset": {"type": "array", "items": {"type": "integer"}}}},
        "Usage": {"type": "object", "properties": {
            "prompt_tokens": {"type": "integer"}, "completion_tokens": {"type": "integer"},
            "total_tokens": {"type": "integer"}},
            "description": "in the model's tokens: characters for character models"},
        "Completion": {"type": "object", "required": ["id", "object", "created", "model", "choices"], "properties": {
            "id": {"type": "string"}, "object": {"const": "text_completion"}, "created": {"type": "integer"},
            "model": {"type": "string"}, "system_fingerprint": {"type": "null"},
            "choices": {"type": "array", "items": {"type": "object", "properties": {
                "text": {"type": "string"}, "index": {"type": "integer"}, "logprobs": _ref("Logprobs"),
                "finish_reason": {"enum": ["stop", "length", "cancelled", None]}}}},
            "usage": _ref("Usage")},
            "description": "a response, or (stream) one server-sent event's data"},
    }


def openapi_document() -> dict[str, Any]:
    """The whole document (built once per server).

    Over 60 lines because it is one literal: the ``paths`` table, an entry per route, reads
    best as the document it produces (the helpers build the repeated parts).
    """
    schemas = {**{schema_name(k): v for k, v in proto_schemas().items()}, **_openai_schemas()}
    paths: dict[str, Any] = {
        "/v1/models": {"get": {"tags": ["OpenAI-compatible"], "summary": "The language models",
                               "operationId": "openaiListModels", "responses": _responses(_json(_ref("ModelList")))}},
        "/v1/models/{model}": {"get": {
            "tags": ["OpenAI-compatible"], "summary": "One language model", "operationId": "openaiGetModel",
            "parameters": [{"name": "model", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": _responses(_json(_ref("Model")))}},
        "/v1/completions": {"post": {
            "tags": ["OpenAI-compatible"], "summary": "Complete prompts (OpenAI's completions API)",
            "operationId": "openaiCompletions",
            "requestBody": {"required": True, "content": _json(_ref("CompletionRequest"))},
            "responses": _responses({**_json(_ref("Completion")),
                                     "text/event-stream": {"schema": {"type": "string"}}},
                                    "The completions; with stream: server-sent events, each a Completion chunk, "
                                    "then data: [DONE]")}},
    }
    for rpc in json_api.UNARY_RPCS:
        paths[json_api.PREFIX + rpc.path] = {"post": {
            "tags": ["rnnserve"], "summary": rpc.summary, "operationId": rpc.method[0].lower() + rpc.method[1:],
            "requestBody": {"required": True, "content": _json(_ref(rpc.request.DESCRIPTOR.full_name))},
            "responses": _responses(_json(_ref(rpc.response.DESCRIPTOR.full_name)))}}
    paths[json_api.PREFIX + json_api.STREAM_PATH] = {"post": {
        "tags": ["rnnserve"], "summary": "Stream generated text (Generation.GenerateStream)",
        "operationId": "generateStream",
        "requestBody": {"required": True, "content": _json(_ref("rnnserve.v1.GenerateRequest"))},
        "responses": _responses({"text/event-stream": {"schema": {"type": "string"}}},
                                "Server-sent events, each an rnnserve.v1.GenerateStreamResponse, then data: [DONE]; "
                                "an error after the first event arrives as a last event {\"error\": ...}")}}
    paths[json_api.PREFIX + json_api.MODELS_PATH] = {"get": {
        "tags": ["rnnserve"], "summary": "Every model: kind, state, card, counters (Models.ListModels)",
        "operationId": "listModels",
        "parameters": [{"name": "kind", "in": "query", "required": False,
                        "schema": _ref("rnnserve.v1.ModelKind")}],
        "responses": _responses(_json(_ref("rnnserve.v1.ListModelsResponse")))}}
    paths[json_api.PREFIX + json_api.MODEL_PATH] = {"get": {
        "tags": ["rnnserve"], "summary": "One model (Models.GetModel)", "operationId": "getModel",
        "parameters": [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
        "responses": _responses(_json(_ref("rnnserve.v1.Model")))}}
    paths[json_api.PREFIX + json_api.SESSION_PATH] = {"get": {
        "tags": ["rnnserve"], "summary": "Assistant session over a WebSocket (Assistant.Session)",
        "operationId": "session",
        "description": "Upgrade to a WebSocket. Send rnnserve.v1.SessionRequest objects as JSON text frames "
                       "('open' first, then 'append', 'delete', 'reset'); receive one rnnserve.v1.SessionResponse "
                       "per event. An error ends the session: a last frame {\"error\": ...} and close code "
                       "4000 + the HTTP status (4400, 4404, 4429, ...). A browser, which cannot set the "
                       "Authorization header on a WebSocket, sends the token as a second subprotocol: "
                       "'Sec-WebSocket-Protocol: rnnserve.v1, rnnserve.bearer.<base64url(token), no padding>'; "
                       "the server accepts 'rnnserve.v1'.",
        "responses": {"101": {"description": "Switching to the WebSocket protocol"},
                      **{k: v for k, v in _responses({}).items() if k != "200"}}}}
    paths["/health"] = {"get": {"tags": ["server"], "summary": "SERVING, or 503 NOT_SERVING while draining",
                                "operationId": "health", "security": [],
                                "responses": {"200": {"description": "serving"},
                                              "503": {"description": "draining"}}}}
    paths["/openapi.json"] = {"get": {"tags": ["server"], "summary": "This document", "operationId": "openapi",
                                      "security": [], "responses": {"200": {"description": "OpenAPI 3.1"}}}}
    paths["/docs"] = {"get": {"tags": ["server"], "summary": "This document as a page", "operationId": "docs",
                              "security": [], "responses": {"200": {"description": "HTML"}}}}
    paths["/"] = {"get": {"tags": ["server"], "summary": "The browser playground (its files under /playground/)",
                          "operationId": "playground", "security": [], "responses": {"200": {"description": "HTML"}}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "rnnserve HTTP API", "version": __version__,
                 "description": "OpenAI-compatible completions (/v1) and every rnnserve.v1 RPC as JSON (/api/v1), "
                                "served beside gRPC by the same process: same models, limits, admission and "
                                "auth. Messages of /api/v1 use protobuf's JSON mapping with the proto's field "
                                "names (lowerCamelCase accepted); enums by name."},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {"schemas": schemas,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                                      "description": "required when the server has a token "
                                                                     "(--auth-token-file)"}}},
        "security": [{"bearer": []}],
    }
