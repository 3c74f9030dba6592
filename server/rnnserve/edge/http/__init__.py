"""The HTTP API beside gRPC: OpenAI-compatible completions, every RPC as JSON, a Session WebSocket.

``server.py`` builds the app and runs it (uvicorn, on the gRPC server's event loop);
``admission.py`` admits requests through the gRPC side's admission; ``calls.py`` lets a
route call a gRPC servicer and maps its status to HTTP; ``completions.py`` (``/v1``),
``json_api.py`` (``/api/v1``) and ``session_socket.py`` are the routes; ``openapi.py``,
``proto_schemas.py`` and ``docs_page.py`` describe them.
"""
