"""``rnnserve ray-serve``: rnnserve's models as a Ray Serve deployment behind Ray's gRPC proxy.

Optional: ``pip install 'rnnserve[ray]'``. Each Ray Serve replica of the ``rnnserve``
deployment runs a complete rnnserve server (``create_server``: registry, schedulers with
continuous batching, validation, admission) on a private loopback port inside the replica
actor, and forwards every call it gets from Ray's proxy to it. So results, limits and
status codes are exactly a plain server's, and Ray adds what it is for: replicas placed
over a Ray cluster, request routing, autoscaling and a bounded proxy-side queue.

Ray's gRPC proxy serves rnnserve's own v1 services (``gRPCOptions.grpc_servicer_functions``),
so an unchanged ``rnnserve_client.Client("HOST:9000")`` talks to it. The mapping:

* ``--replicas N`` -> ``num_replicas``; with ``--max-replicas M > N``, autoscaling
  (``min_replicas=N``, ``max_replicas=M``, ``target_ongoing_requests``);
* ``--max-ongoing-requests`` -> requests one replica runs at once (they share its batches);
* ``--max-queued-requests`` -> requests waiting for a replica per caller; past it Ray
  answers RESOURCE_EXHAUSTED at once (``BackPressureError``);
* a status from the replica's server (NOT_FOUND, INVALID_ARGUMENT with the limit's name,
  RESOURCE_EXHAUSTED with ``retry-after-ms``, ...) is passed through with its details and
  trailing metadata; metadata ``authorization`` and ``x-request-id`` are forwarded, so the
  server's bearer-token auth (``auth_token_file`` in the config) also guards the proxy.

Not forwarded: ``grpc.health.v1`` (Ray's proxy has its own
``/ray.serve.RayServeAPIService/Healthz``; a client's health watch gets UNIMPLEMENTED and
gRPC then treats the proxy as healthy) and reflection. Ray's proxy serves plaintext on
every interface (``[::]:PORT``); see docs/scaling.md for TLS and network placement.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from grpc import aio

from rnnserve.edge.errors import ConfigurationError
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

log = logging.getLogger("rnnserve.ray_serve")

#: Ray reads it as "form clusters" (default on Linux): "0" keeps a local Ray on the loopback address.
LOCAL_ONLY_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def local_ray_on_loopback() -> None:
    """Make the local Ray that :func:`start` begins (no ``address``) listen on 127.0.0.1 only.

    Ray takes the loopback address as its node's only where Ray clusters are off (the
    variable's name says Windows or macOS, but Ray reads it everywhere, once, on import, so
    this must run before ``import ray``); then Ray's own servers (GCS, raylet, object manager,
    workers, agents) listen on 127.0.0.1 instead of every interface. (``ray.init``'s
    ``_node_ip_address="127.0.0.1"`` is turned back into the machine's address.) A value the
    user set wins.
    """
    os.environ.setdefault(LOCAL_ONLY_ENV, "0")

APP_NAME = "rnnserve"
DEPLOYMENT_NAME = "rnnserve"
#: ``gRPCOptions.grpc_servicer_functions``: rnnserve's v1 services on Ray's gRPC proxy. They
#: are the generated ``add_*Servicer_to_server`` functions, reached through this module so
#: that importing them in the proxy also installs the module aliases below.
SERVICER_FUNCTIONS = [
    "rnnserve.ops.ray_serve.add_GenerationServicer_to_server",
    "rnnserve.ops.ray_serve.add_TranslationServicer_to_server",
    "rnnserve.ops.ray_serve.add_AssistantServicer_to_server",
    "rnnserve.ops.ray_serve.add_ModelsServicer_to_server",
]
add_GenerationServicer_to_server = generation_pb2_grpc.add_GenerationServicer_to_server
add_TranslationServicer_to_server = translation_pb2_grpc.add_TranslationServicer_to_server
add_AssistantServicer_to_server = assistant_pb2_grpc.add_AssistantServicer_to_server
add_ModelsServicer_to_server = models_pb2_grpc.add_ModelsServicer_to_server


def _alias_wire_modules() -> None:
    """Make the wire types picklable: Ray pickles each request and response between its proxy
    and the replicas, and pickle finds a class by its ``__module__``, which protoc set to
    ``rnnserve.v1.X_pb2`` (the proto package); the modules live in ``rnnserve_client.v1``."""
    for module in (assistant_pb2, generation_pb2, models_pb2, translation_pb2):
        sys.modules.setdefault(f"rnnserve.v1.{module.__name__.rsplit('.', 1)[1]}", module)


_alias_wire_modules()
#: Metadata passed from the proxy's caller to the replica's server.
FORWARDED_METADATA = ("authorization", "x-request-id")


class ForwardedStatus(Exception):
    """A status from the replica's server, re-raised so Ray's proxy answers with its code."""


@dataclass(frozen=True)
class RayServeOptions:
    """How the ``rnnserve`` deployment is scaled (the ``rnnserve ray-serve`` flags)."""

    replicas: int = 1
    #: Above ``replicas``: autoscale between the two on ``target_ongoing_requests``.
    max_replicas: int | None = None
    target_ongoing_requests: float = 8.0
    #: Requests one replica runs at once (they share its decoding batches).
    max_ongoing_requests: int = 64
    #: Requests waiting for a replica (per proxy); more are RESOURCE_EXHAUSTED. -1: unbounded.
    max_queued_requests: int = 256
    #: CPUs Ray reserves for each replica.
    replica_cpus: float = 1.0
    grpc_port: int = 9000
    #: Port of Ray Serve's HTTP proxy (unused by rnnserve; bound to 127.0.0.1).
    http_port: int = 8000

    def deployment_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "name": DEPLOYMENT_NAME,
            "max_ongoing_requests": self.max_ongoing_requests,
            "max_queued_requests": self.max_queued_requests,
            "ray_actor_options": {"num_cpus": self.replica_cpus},
            "health_check_period_s": 5,
        }
        if self.max_replicas is not None and self.max_replicas > self.replicas:
            options["autoscaling_config"] = {
                "min_replicas": self.replicas,
                "initial_replicas": self.replicas,
                "max_replicas": self.max_replicas,
                "target_ongoing_requests": self.target_ongoing_requests,
            }
        else:
            options["num_replicas"] = self.replicas
        return options


class _LocalServer:
    """An rnnserve server on 127.0.0.1:0, on its own event loop thread (inside a replica)."""

    def __init__(self, config: ServerConfig, load_timeout: float) -> None:
        from rnnserve.edge.app import create_server
        from rnnserve.host import torch_runtime

        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="rnnserve-replica-server", daemon=True)
        self.thread.start()

        async def start() -> Any:
            app = create_server("127.0.0.1:0", config)
            torch_runtime.configure(config.torch_threads, models=len(app.registry.entries()))
            await app.start()
            return app

        self.app = asyncio.run_coroutine_threadsafe(start(), self.loop).result(120)
        self.app.registry.wait_loaded(load_timeout)
        self.target = f"127.0.0.1:{self.app.port}"

    def close(self) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self.app.stop(), self.loop).result(self.app.config.grace_seconds + 10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)


class RnnserveReplica:
    """The body of the ``rnnserve`` Ray Serve deployment: one rnnserve server per replica.

    Method names are the gRPC method names, as Ray Serve's gRPC proxy expects.
    """

    def __init__(self, config: ServerConfig, load_timeout: float = 600.0) -> None:
        # The replica's server is private: loopback, no TLS (the hop never leaves the actor's
        # host), but with the config's bearer token, checked on the forwarded metadata.
        config = config.replace(host="127.0.0.1", port=0, tls_cert=None, tls_key=None, tls_client_ca=None,
                                reflection=False)
        if getattr(config, "metrics_port", None) is not None:  # replicas share hosts: Ray exports its metrics
            config = config.replace(metrics_port=None)
        self._server = _LocalServer(config, load_timeout)
        self._max_message_bytes = config.limits.max_message_bytes
        self._channel: aio.Channel | None = None
        log.info("rnnserve replica serving %s on %s",
                 ", ".join(e.name for e in self._server.app.registry.entries()), self._server.target)

    def _stubs(self) -> aio.Channel:
        if self._channel is None:  # created on the replica's user event loop, where calls run
            size = self._max_message_bytes
            self._channel = aio.insecure_channel(self._server.target, options=[
                ("grpc.max_send_message_length", size), ("grpc.max_receive_message_length", size)])
            self._generation = generation_pb2_grpc.GenerationStub(self._channel)
            self._translation = translation_pb2_grpc.TranslationStub(self._channel)
            self._assistant = assistant_pb2_grpc.AssistantStub(self._channel)
            self._models = models_pb2_grpc.ModelsStub(self._channel)
        return self._channel

    @staticmethod
    def _metadata(grpc_context: Any) -> tuple[tuple[str, str], ...]:
        if grpc_context is None:
            return ()
        return tuple((k, v) for k, v in grpc_context.invocation_metadata() if k in FORWARDED_METADATA)

    @staticmethod
    def _forward_status(exc: aio.AioRpcError, grpc_context: Any) -> ForwardedStatus:
        if grpc_context is not None:
            grpc_context.set_code(exc.code())
            grpc_context.set_details(exc.details() or "")
            trailing = [(k, v) for k, v in (exc.trailing_metadata() or ()) if isinstance(v, str)]
            if trailing:
                grpc_context.set_trailing_metadata(trailing)
        return ForwardedStatus(f"{exc.code().name}: {exc.details()}")

    async def _unary(self, method_name: str, stub: str, request: Any, grpc_context: Any) -> Any:
        self._stubs()
        method = getattr(getattr(self, stub), method_name)
        try:
            return await method(request, metadata=self._metadata(grpc_context))
        except aio.AioRpcError as exc:
            raise self._forward_status(exc, grpc_context) from None

    async def _stream(self, call: Any, grpc_context: Any) -> AsyncIterator[Any]:
        try:
            async for response in call:
                yield response
        except aio.AioRpcError as exc:
            raise self._forward_status(exc, grpc_context) from None
        finally:
            call.cancel()  # no-op once finished; stops the server's work if the caller went away

    # rnnserve.v1.Generation
    async def Generate(self, request: Any, grpc_context: Any = None) -> Any:  # gRPC method names
        return await self._unary("Generate", "_generation", request, grpc_context)

    async def Score(self, request: Any, grpc_context: Any = None) -> Any:
        return await self._unary("Score", "_generation", request, grpc_context)

    async def GenerateStream(self, request: Any, grpc_context: Any = None) -> AsyncIterator[Any]:
        self._stubs()
        call = self._generation.GenerateStream(request, metadata=self._metadata(grpc_context))
        async for response in self._stream(call, grpc_context):
            yield response

    # rnnserve.v1.Translation
    async def Translate(self, request: Any, grpc_context: Any = None) -> Any:
        return await self._unary("Translate", "_translation", request, grpc_context)

    # rnnserve.v1.Assistant
    async def Suggest(self, request: Any, grpc_context: Any = None) -> Any:
        return await self._unary("Suggest", "_assistant", request, grpc_context)

    async def Session(self, requests: AsyncIterator[Any], grpc_context: Any = None) -> AsyncIterator[Any]:
        self._stubs()
        call = self._assistant.Session(requests.__aiter__(), metadata=self._metadata(grpc_context))
        async for response in self._stream(call, grpc_context):
            yield response

    # rnnserve.v1.Models
    async def ListModels(self, request: Any, grpc_context: Any = None) -> Any:
        return await self._unary("ListModels", "_models", request, grpc_context)

    async def GetModel(self, request: Any, grpc_context: Any = None) -> Any:
        return await self._unary("GetModel", "_models", request, grpc_context)

    def check_health(self) -> None:
        """Ray restarts a replica whose server thread died."""
        if not self._server.thread.is_alive():
            raise RuntimeError("the replica's rnnserve server stopped")

    def __del__(self) -> None:
        server = getattr(self, "_server", None)
        if server is not None and server.thread.is_alive():
            with contextlib.suppress(Exception):  # the actor is going away anyway
                server.close()


def build_app(config: ServerConfig, options: RayServeOptions) -> Any:
    """The Ray Serve application: the ``rnnserve`` deployment, bound to ``config``."""
    from ray import serve

    deployment = serve.deployment(RnnserveReplica).options(**options.deployment_options())
    return deployment.bind(config)


def start(config: ServerConfig, options: RayServeOptions, *, address: str | None = None,
          num_cpus: int | None = None) -> float:
    """Start (or join) Ray, start Serve's proxies and deploy; the seconds it took.

    ``address`` None starts a local Ray instance bound to 127.0.0.1 with no dashboard;
    otherwise it is passed to ``ray.init`` (``"auto"`` joins the cluster of this node).
    """
    if address is None:
        local_ray_on_loopback()
    import ray
    from ray import serve
    from ray.serve.config import gRPCOptions

    started = time.perf_counter()
    if not ray.is_initialized():
        if address is None:
            # "local": a new instance even if a cluster runs on this machine (never join one by accident).
            ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, configure_logging=False,
                     log_to_driver=False)
        else:
            ray.init(address=address, configure_logging=False, log_to_driver=False)
    serve.start(http_options={"host": "127.0.0.1", "port": options.http_port},
                grpc_options=gRPCOptions(port=options.grpc_port, grpc_servicer_functions=SERVICER_FUNCTIONS))
    # A route prefix makes the app an endpoint of the proxies; the only one, so gRPC calls
    # need no "application" metadata.
    serve.run(build_app(config, options), name=APP_NAME, route_prefix=f"/{APP_NAME}", blocking=False)
    _wait_running(time.monotonic() + 900)
    return time.perf_counter() - started


def _wait_running(deadline: float) -> None:
    from ray import serve
    from ray.serve.schema import ApplicationStatus

    while True:
        status = serve.status().applications.get(APP_NAME)
        if status is not None and status.status == ApplicationStatus.RUNNING:
            return
        if status is not None and status.status == ApplicationStatus.DEPLOY_FAILED:
            raise RuntimeError(f"Ray Serve could not deploy rnnserve: {status.message}")
        if time.monotonic() > deadline:
            raise TimeoutError("Ray Serve did not start the rnnserve deployment")
        time.sleep(0.5)


#: Seconds ``shutdown`` waits for Ray Serve to stop its deployment before stopping Ray itself.
SERVE_SHUTDOWN_S = 30.0


def shutdown(timeout_s: float = SERVE_SHUTDOWN_S, *, joined: bool = False) -> None:
    """Stop the deployment, then Ray.

    On the local Ray this process started, all of Serve stops (``serve.shutdown``). On a
    cluster it ``joined`` (``--address``), only the rnnserve application is deleted: other
    applications and Serve itself keep running, and ``ray.shutdown`` only disconnects.
    Serve's own shutdown never returns once Ray's raylet is gone (a SIGTERM to the whole
    process group, as ``timeout`` and systemd's default ``KillMode=control-group`` send,
    reaches it too): it is given ``timeout_s``.
    """
    import ray
    from ray import serve

    stopper = threading.Thread(target=(lambda: serve.delete(APP_NAME)) if joined else serve.shutdown,
                               name="serve-shutdown", daemon=True)
    stopper.start()
    stopper.join(timeout_s)
    if stopper.is_alive():
        log.warning("Ray Serve did not stop within %.0f s (was a Ray process stopped first?); stopping Ray", timeout_s)
    ray.shutdown()


def model_names(port: int, token: str | None = None) -> list[str]:
    """The models behind Ray's gRPC proxy on ``port``; ConfigurationError if it does not serve rnnserve."""
    from rnnserve_client import Client, errors

    try:
        with Client(f"127.0.0.1:{port}", timeout=60, token=token) as client:
            return [m.name for m in client.list_models()]
    except (errors.Unimplemented, errors.Unavailable) as exc:
        raise ConfigurationError(
            f"Ray's gRPC proxy on port {port} does not serve rnnserve's services ({exc}): where Serve already runs "
            "on the cluster, it keeps the gRPC port and servicer functions it started with; start it with "
            "rnnserve.ops.ray_serve.SERVICER_FUNCTIONS and that port, or run rnnserve ray-serve on its own Ray"
        ) from exc


def run(config: ServerConfig, options: RayServeOptions, *, address: str | None, num_cpus: int | None,
        announce: Any = print) -> int:
    """``rnnserve ray-serve``: deploy, print the address, serve until SIGTERM/SIGINT, then shut down."""
    from rnnserve import __version__
    from rnnserve.edge.auth import resolve_token

    stop = threading.Event()
    previous: dict[int, Any] = {}
    try:
        seconds = start(config, options, address=address, num_cpus=num_cpus)
        # After ray.init, which installs its own SIGTERM handler in this (driver) process.
        previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
        names = ", ".join(model_names(options.grpc_port, resolve_token(config))) or "none"
        scaling = f"{options.replicas} replica(s)" + (
            f", autoscaling to {options.max_replicas} at {options.target_ongoing_requests:g} ongoing requests"
            if options.max_replicas and options.max_replicas > options.replicas else "")
        announce(f"rnnserve {__version__} listening on 0.0.0.0:{options.grpc_port} (models: {names}) "
                 f"[Ray Serve gRPC proxy, {scaling}, started in {seconds:.1f} s]", flush=True)
        stop.wait()
        log.info("shutting down Ray Serve")
        return 0
    finally:
        shutdown(joined=address is not None)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


__all__: Sequence[str] = ["SERVICER_FUNCTIONS", "RayServeOptions", "RnnserveReplica", "build_app",
                          "local_ray_on_loopback", "run", "shutdown", "start"]
