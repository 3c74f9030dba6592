"""Building and running the gRPC server.

``create_server(address)`` wires plugins -> registry -> services and returns
``(server, port)`` without starting it, so tests can bind ``127.0.0.1:0``.
``serve(config)`` runs it until SIGTERM/SIGINT, then drains: health goes NOT_SERVING,
new calls get UNAVAILABLE, in-flight calls get ``grace_seconds`` to finish.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from grpc import aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from rnnserve.backends import ModelKind
from rnnserve.config import ServerConfig
from rnnserve.errors import Draining, status_for
from rnnserve.plugins import PluginHost, load_plugins
from rnnserve.registry import ModelEntry, ModelRegistry, ModelState
from rnnserve.services.assistant import AssistantService
from rnnserve.services.generation import GenerationService
from rnnserve.services.models import ModelsService
from rnnserve.services.translation import TranslationService
from rnnserve_client.v1 import (
    assistant_pb2,
    assistant_pb2_grpc,
    generation_pb2,
    generation_pb2_grpc,
    models_pb2,
    models_pb2_grpc,
    translation_pb2,
    translation_pb2_grpc,
)

log = logging.getLogger("rnnserve.app")

SERVICE_KINDS = {
    generation_pb2.DESCRIPTOR.services_by_name["Generation"].full_name: ModelKind.LANGUAGE_MODEL,
    translation_pb2.DESCRIPTOR.services_by_name["Translation"].full_name: ModelKind.TRANSLATOR,
    assistant_pb2.DESCRIPTOR.services_by_name["Assistant"].full_name: ModelKind.ASSISTANT,
}
MODELS_SERVICE = models_pb2.DESCRIPTOR.services_by_name["Models"].full_name
#: Calls that are never refused while draining or overloaded.
EXEMPT_PREFIXES = ("/grpc.health.v1.", "/grpc.reflection.")


class DrainInterceptor(aio.ServerInterceptor):
    """Counts in-flight calls and, once draining, refuses new ones with UNAVAILABLE.

    Health and reflection are exempt: a draining server keeps answering NOT_SERVING.
    """

    def __init__(self) -> None:
        self.draining = False
        self.in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until no call is in flight; False if ``timeout`` passed first."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
            return True
        except TimeoutError:
            return False

    def _enter(self) -> None:
        self.in_flight += 1
        self._idle.clear()

    def _leave(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0:
            self._idle.set()

    async def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None or details.method.startswith(EXEMPT_PREFIXES):
            return handler
        if handler.response_streaming:
            behavior = handler.stream_stream if handler.request_streaming else handler.unary_stream

            async def streaming(request: Any, context: aio.ServicerContext) -> Any:
                if self.draining:
                    await context.abort(*status_for(Draining()))
                self._enter()
                try:
                    async for response in behavior(request, context):
                        yield response
                finally:
                    self._leave()

            make = grpc.stream_stream_rpc_method_handler if handler.request_streaming \
                else grpc.unary_stream_rpc_method_handler
            return make(streaming, request_deserializer=handler.request_deserializer,
                        response_serializer=handler.response_serializer)
        behavior = handler.stream_unary if handler.request_streaming else handler.unary_unary

        async def unary(request: Any, context: aio.ServicerContext) -> Any:
            if self.draining:
                await context.abort(*status_for(Draining()))
            self._enter()
            try:
                return await behavior(request, context)
            finally:
                self._leave()

        make = grpc.stream_unary_rpc_method_handler if handler.request_streaming \
            else grpc.unary_unary_rpc_method_handler
        return make(unary, request_deserializer=handler.request_deserializer,
                    response_serializer=handler.response_serializer)


@dataclass
class App:
    """A built server and the parts tests and the CLI reach into."""

    server: aio.Server
    port: int
    config: ServerConfig
    host: PluginHost
    registry: ModelRegistry
    health: health.aio.HealthServicer
    drain: DrainInterceptor
    services: list[object]

    async def start(self) -> None:
        await self.server.start()
        await self.health.set("", health_pb2.HealthCheckResponse.SERVING)
        await self.health.set(MODELS_SERVICE, health_pb2.HealthCheckResponse.SERVING)
        await self._refresh_health()
        self.registry.start()

    async def stop(self, grace: float | None = None) -> None:
        """Drain, then stop.

        Health turns NOT_SERVING and new calls get UNAVAILABLE while the port stays open,
        so load balancers see the change; in-flight calls get ``grace`` seconds to finish;
        then the server stops (cancelling whatever is left) and the schedulers exit.
        """
        grace = self.config.grace_seconds if grace is None else grace
        self.drain.draining = True
        await self.health.enter_graceful_shutdown()
        if not await self.drain.wait_idle(grace):
            log.warning("grace period over with %d calls in flight; cancelling them", self.drain.in_flight)
        await self.server.stop(0.5)
        self.registry.stop()

    async def _refresh_health(self) -> None:
        if self.drain.draining:
            return
        ready = {e.kind for e in self.registry.entries() if e.state == ModelState.READY}
        for service, kind in SERVICE_KINDS.items():
            status = health_pb2.HealthCheckResponse.SERVING if kind in ready \
                else health_pb2.HealthCheckResponse.NOT_SERVING
            await self.health.set(service, status)


def create_server(address: str = "127.0.0.1:0", config: ServerConfig | None = None,
                  host: PluginHost | None = None) -> App:
    """Build (not start) a server bound to ``address``; ``App.port`` is the bound port."""
    config = config or ServerConfig()
    host = host if host is not None else load_plugins()
    loop = asyncio.get_running_loop()
    drain = DrainInterceptor()
    limits = config.limits
    server = aio.server(interceptors=[drain], options=[
        ("grpc.max_receive_message_length", limits.max_message_bytes),
        ("grpc.max_send_message_length", limits.max_message_bytes),
        ("grpc.so_reuseport", 0),
    ])
    health_servicer = health.aio.HealthServicer()
    app_ref: list[App] = []

    def on_model_change(entry: ModelEntry) -> None:  # called on a loader thread
        if app_ref:
            asyncio.run_coroutine_threadsafe(app_ref[0]._refresh_health(), loop)

    registry = ModelRegistry(host, config, on_change=on_model_change)
    services: list[object] = [GenerationService(registry, limits), TranslationService(registry, limits),
                              AssistantService(registry, limits), ModelsService(registry)]
    generation_pb2_grpc.add_GenerationServicer_to_server(services[0], server)
    translation_pb2_grpc.add_TranslationServicer_to_server(services[1], server)
    assistant_pb2_grpc.add_AssistantServicer_to_server(services[2], server)
    models_pb2_grpc.add_ModelsServicer_to_server(services[3], server)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        [*SERVICE_KINDS, MODELS_SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"could not bind {address}")
    app = App(server, port, config, host, registry, health_servicer, drain, services)
    app_ref.append(app)
    return app


async def serve(config: ServerConfig, host: PluginHost | None = None,
                on_ready: Callable[[App], None] | None = None) -> None:
    """Run a server until SIGTERM or SIGINT, then drain and exit."""
    app = create_server(f"{config.host}:{config.port}", config, host)
    await app.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if on_ready is not None:
        on_ready(app)
    await stop.wait()
    log.info("draining: health NOT_SERVING, new calls refused, %.0f s grace", config.grace_seconds)
    await app.stop()
    log.info("stopped")
