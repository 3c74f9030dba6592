"""A boundary fake of the rnnserve server for the client tests.

``FakeServer`` is a real ``grpc`` server on a free loopback port with all four services
registered through the generated ``add_*Servicer_to_server`` functions. Each test
scripts the methods it needs with ``fake.on(method, handler)``; the handler receives the
request (the request iterator for ``Session``) and the servicer context, exactly like a
servicer method. Every call is recorded in ``fake.calls[method]`` with its request and
invocation metadata. Unscripted methods answer UNIMPLEMENTED.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc

from rnnserve_client.v1 import assistant_pb2_grpc, generation_pb2_grpc, models_pb2_grpc, translation_pb2_grpc

_SERVICES = (
    (models_pb2_grpc.ModelsServicer, models_pb2_grpc.add_ModelsServicer_to_server),
    (generation_pb2_grpc.GenerationServicer, generation_pb2_grpc.add_GenerationServicer_to_server),
    (translation_pb2_grpc.TranslationServicer, translation_pb2_grpc.add_TranslationServicer_to_server),
    (assistant_pb2_grpc.AssistantServicer, assistant_pb2_grpc.add_AssistantServicer_to_server),
)


@dataclass
class Call:
    """One call the fake received."""

    request: Any
    metadata: dict[str, str]


class FakeServer:
    """A scripted rnnserve peer; see the module docstring."""

    def __init__(self, credentials: grpc.ServerCredentials | None = None) -> None:
        self.calls: dict[str, list[Call]] = defaultdict(list)
        self._handlers: dict[str, Callable[[Any, grpc.ServicerContext], Any]] = {}
        self._lock = threading.Lock()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
        for base, add in _SERVICES:
            add(self._servicer(base), self._server)
        address = "127.0.0.1:0"
        if credentials is None:
            self.port = self._server.add_insecure_port(address)
        else:
            self.port = self._server.add_secure_port(address, credentials)
        self.target = f"127.0.0.1:{self.port}"
        self._server.start()

    def _servicer(self, base: type) -> Any:
        """An instance of ``base`` whose every RPC method dispatches to :meth:`_invoke`."""
        methods = [name for name in vars(base) if not name.startswith("_")]

        def dispatcher(method: str) -> Callable[[Any, Any, grpc.ServicerContext], Any]:
            return lambda _self, request, context: self._invoke(method, request, context)

        return type(f"Fake{base.__name__}", (base,), {m: dispatcher(m) for m in methods})()

    def on(self, method: str, handler: Callable[[Any, grpc.ServicerContext], Any]) -> None:
        """Script ``method`` (e.g. ``"GetModel"``)."""
        self._handlers[method] = handler

    def _invoke(self, method: str, request: Any, context: grpc.ServicerContext) -> Any:
        with self._lock:
            self.calls[method].append(Call(request, {m.key: m.value for m in context.invocation_metadata()}))
        handler = self._handlers.get(method)
        if handler is None:
            context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{method} not scripted")
        return handler(request, context)

    def stop(self) -> None:
        self._server.stop(grace=None).wait(5)


def wait_until_cancelled(context: grpc.ServicerContext, limit: float = 5.0) -> None:
    """Block a handler until the client's deadline or cancellation ends the call (at most ``limit`` s)."""
    ended = threading.Event()
    if context.add_callback(ended.set) and context.is_active():
        ended.wait(limit)


def fail_first(n: int, code: grpc.StatusCode, then: Callable[[Any, grpc.ServicerContext], Any]) -> Callable:
    """A handler that aborts with ``code`` on its first ``n`` calls, then runs ``then``."""
    seen = 0

    def handler(request: Any, context: grpc.ServicerContext) -> Any:
        nonlocal seen
        seen += 1
        if seen <= n:
            context.abort(code, f"attempt {seen} failed")
        return then(request, context)

    return handler


def chunks(*items: Any) -> Callable[[Any, grpc.ServicerContext], Iterator[Any]]:
    """A server-streaming handler yielding ``items``."""
    return lambda request, context: iter(items)
