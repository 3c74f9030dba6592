"""``grpc.health.v1.Health``: the standard health service, ``List`` included.

grpcio-health-checking implements ``Check`` and ``Watch``; ``List`` (added to the standard
proto later, and advertised by reflection with the rest of the service) fell through to
the generated base class, which answers UNIMPLEMENTED and logs a traceback on every call.
Here it answers what the standard proto defines: every service the server reports on
(``""`` for the whole server, one entry per ``rnnserve.v1`` service) with its status.
"""

from __future__ import annotations

from grpc import aio
from grpc_health.v1 import health, health_pb2

ServingStatus = health_pb2.HealthCheckResponse.ServingStatus


class HealthService(health.aio.HealthServicer):
    """The asyncio health servicer of grpcio-health-checking, plus ``List``."""

    def __init__(self) -> None:
        super().__init__()
        # The statuses as set through the public API (the base class keeps its own privately).
        self._statuses: dict[str, ServingStatus] = {"": health_pb2.HealthCheckResponse.SERVING}
        self._shutting_down = False

    async def set(self, service: str, status: ServingStatus) -> None:
        await super().set(service, status)
        if not self._shutting_down:
            self._statuses[service] = status

    async def enter_graceful_shutdown(self) -> None:
        await super().enter_graceful_shutdown()
        self._shutting_down = True
        for service in self._statuses:
            self._statuses[service] = health_pb2.HealthCheckResponse.NOT_SERVING

    async def List(self, request: health_pb2.HealthListRequest,
                   context: aio.ServicerContext) -> health_pb2.HealthListResponse:
        """Every service the server reports on, with its status (``""``: the whole server)."""
        return health_pb2.HealthListResponse(statuses={
            service: health_pb2.HealthCheckResponse(status=status) for service, status in self._statuses.items()})
