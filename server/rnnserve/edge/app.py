"""Building and running the gRPC server.

``create_server(address)`` wires plugins -> registry -> services and returns an ``App``
without starting it, so tests can bind ``127.0.0.1:0``. Every call but health passes the
admission interceptor (``admission.py``: request ids, bearer-token auth, drain, the
global in-flight cap); the port is TLS (or mutual TLS) when the config names a
certificate (``auth.py``). ``serve(config)`` runs it until SIGTERM/SIGINT, then drains:
health goes NOT_SERVING, new calls get UNAVAILABLE, in-flight calls get
``grace_seconds`` to finish.

With an HTTP port, the same process also serves the HTTP API (``rnnserve.edge.http``): its
routes call the same servicer objects, and its requests pass the same admission object,
so models, limits, the in-flight cap, auth, TLS, request ids, logs and metrics are shared;
draining refuses new HTTP requests too and waits for both transports' calls.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import grpc
from grpc import aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from rnnserve.backends import ModelKind
from rnnserve.edge.admission import EXEMPT_PREFIXES, AdmissionInterceptor
from rnnserve.edge.auth import resolve_token, server_credentials, warn_about_exposure
from rnnserve.edge.errors import ConfigurationError
from rnnserve.edge.services.assistant import AssistantService
from rnnserve.edge.services.generation import GenerationService
from rnnserve.edge.services.health import HealthService
from rnnserve.edge.services.models import ModelsService
from rnnserve.edge.services.reflection import ReflectionService
from rnnserve.edge.services.translation import TranslationService
from rnnserve.host import torch_runtime
from rnnserve.host.model_entry import ModelEntry, ModelState
from rnnserve.host.plugins import PluginHost, load_plugins
from rnnserve.host.registry import ModelRegistry
from rnnserve.ops.config import ServerConfig
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

if TYPE_CHECKING:
    from rnnserve.edge.http.server import HttpServer

log = logging.getLogger("rnnserve.app")

SERVICE_KINDS = {
    generation_pb2.DESCRIPTOR.services_by_name["Generation"].full_name: ModelKind.LANGUAGE_MODEL,
    translation_pb2.DESCRIPTOR.services_by_name["Translation"].full_name: ModelKind.TRANSLATOR,
    assistant_pb2.DESCRIPTOR.services_by_name["Assistant"].full_name: ModelKind.ASSISTANT,
}
MODELS_SERVICE = models_pb2.DESCRIPTOR.services_by_name["Models"].full_name
__all__ = ["EXEMPT_PREFIXES", "AdmissionInterceptor", "App", "create_server", "serve"]


@dataclass
class App:
    """A built server and the parts tests and the CLI reach into."""

    server: aio.Server
    port: int
    config: ServerConfig
    host: PluginHost
    registry: ModelRegistry
    health: HealthService
    #: The admission interceptor (drain flag, in-flight count, refusals).
    drain: AdmissionInterceptor
    services: list[object]
    tls: bool = False
    #: Port of the Prometheus endpoint, when metrics are on.
    metrics_port: int | None = None
    #: The HTTP API's server, when it is on (``http.port`` is its bound port).
    http: HttpServer | None = None

    @property
    def admission(self) -> AdmissionInterceptor:
        return self.drain

    async def start(self) -> None:
        await self.server.start()
        await self.health.set("", health_pb2.HealthCheckResponse.SERVING)
        await self.health.set(MODELS_SERVICE, health_pb2.HealthCheckResponse.SERVING)
        await self._refresh_health()
        if self.http is not None:
            await self.http.start()
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
        if self.http is not None:
            await self.http.stop()
        await self.server.stop(0.5)
        await asyncio.to_thread(self.registry.stop)

    async def _refresh_health(self) -> None:
        if self.drain.draining:
            return
        ready = {e.kind for e in self.registry.entries() if e.state == ModelState.READY}
        for service, kind in SERVICE_KINDS.items():
            status = health_pb2.HealthCheckResponse.SERVING if kind in ready \
                else health_pb2.HealthCheckResponse.NOT_SERVING
            await self.health.set(service, status)


def create_server(address: str = "127.0.0.1:0", config: ServerConfig | None = None,
                  host: PluginHost | None = None, http_port: int | None = None) -> App:
    """Build (not start) a server bound to ``address``; ``App.port`` is the bound port.

    With ``http_port`` (0: a free one) the HTTP API listens too, on the config's host;
    ``App.http.port`` is its bound port.
    """
    config = config or ServerConfig()
    token = resolve_token(config)
    credentials = server_credentials(config)
    host = host if host is not None else load_plugins()
    loop = asyncio.get_running_loop()
    limits = config.limits
    drain = AdmissionInterceptor(limits.max_in_flight, limits.retry_after_ms, token)
    server = aio.server(interceptors=[drain], options=[
        ("grpc.max_receive_message_length", limits.max_message_bytes),
        ("grpc.max_send_message_length", limits.max_message_bytes),
        ("grpc.so_reuseport", 0),
    ])
    health_servicer = HealthService()
    app_ref: list[App] = []

    def on_model_change(entry: ModelEntry) -> None:  # called on a loader thread
        if app_ref:
            asyncio.run_coroutine_threadsafe(app_ref[0]._refresh_health(), loop)

    registry = ModelRegistry(host, config, on_change=on_model_change)
    metrics_port = _serve_metrics(config, registry, drain) if config.metrics_port is not None else None
    generation, translation = GenerationService(registry, limits), TranslationService(registry, limits)
    assistant, models = AssistantService(registry, limits), ModelsService(registry)
    services: list[object] = [generation, translation, assistant, models]
    generation_pb2_grpc.add_GenerationServicer_to_server(generation, server)
    translation_pb2_grpc.add_TranslationServicer_to_server(translation, server)
    assistant_pb2_grpc.add_AssistantServicer_to_server(assistant, server)
    models_pb2_grpc.add_ModelsServicer_to_server(models, server)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    if config.reflection:  # grpc.reflection.v1 and v1alpha, serving the protos' comments
        ReflectionService([*SERVICE_KINDS, MODELS_SERVICE, health.SERVICE_NAME]).add_to_server(server)
    port = _bind(server, address, credentials)
    http_server = None
    if http_port is not None:
        from rnnserve.edge.http.server import HttpServer, build_app
        from rnnserve.edge.http.servicers import Servicers

        servicers = Servicers(generation, translation, assistant, models)
        http_server = HttpServer(build_app(servicers, registry, drain, config), config.host, http_port, config)
    warn_about_exposure(config, credentials is not None, token)
    app = App(server, port, config, host, registry, health_servicer, drain, services, tls=credentials is not None,
              metrics_port=metrics_port, http=http_server)
    app_ref.append(app)
    return app


def _serve_metrics(config: ServerConfig, registry: ModelRegistry, admission: AdmissionInterceptor) -> int:
    """Serve Prometheus metrics on the config's ``metrics_port``, fed by ``admission``; the bound port."""
    from rnnserve.ops.metrics import Metrics

    metrics = Metrics(registry)
    admission.observe = metrics.observe
    try:
        port = metrics.serve(config.host, config.metrics_port)
    except OSError as exc:
        raise ConfigurationError(f"cannot serve metrics on {config.host}:{config.metrics_port}: "
                                 f"{exc.strerror or exc}") from exc
    log.info("metrics on http://%s:%d/metrics", config.host, port)
    return port


def _bind(server: aio.Server, address: str, credentials: grpc.ServerCredentials | None) -> int:
    """Bind ``server`` to ``address`` (TLS with ``credentials``); the bound port."""
    try:
        port = server.add_secure_port(address, credentials) if credentials is not None \
            else server.add_insecure_port(address)
    except RuntimeError:  # grpcio: "Failed to bind to address ..."
        port = 0
    if port == 0:
        raise ConfigurationError(f"cannot listen on {address}: the port is in use, or the address is not one of "
                                 "this machine's")
    return port


async def serve(config: ServerConfig, host: PluginHost | None = None,
                on_ready: Callable[[App], None] | None = None) -> None:
    """Run a server until SIGTERM or SIGINT, then drain and exit."""
    app = create_server(f"{config.host}:{config.port}", config, host, http_port=config.http_port or None)
    models = len(app.registry.entries())
    threads = torch_runtime.configure(config.torch_threads, models=models)
    log.info("%d torch thread(s) per model thread (%d models, %d cores%s)", threads, models,
             torch_runtime.usable_cores(), "" if config.torch_threads is None and "OMP_NUM_THREADS" not in os.environ
             else "; set by torch_threads, --torch-threads or OMP_NUM_THREADS")
    await app.start()
    log.info("serving on %s:%d: %s, %s, reflection %s, max_in_flight=%d, step_timeout_s=%g", config.host, app.port,
             ("mutual TLS" if config.tls_client_ca else "TLS") if app.tls else "plaintext",
             "bearer-token auth" if app.drain.auth_enabled else "no auth", "on" if config.reflection else "off",
             config.limits.max_in_flight, config.limits.step_timeout_s)
    if app.http is not None:
        log.info("HTTP API on %s://%s:%d (playground /, OpenAI-compatible /v1, JSON /api/v1, docs /docs)",
                 "https" if app.tls else "http", config.host, app.http.port)
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
