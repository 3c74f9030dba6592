"""Waiting in tests on the condition itself, with a deadline, instead of sleeping "long enough".

``wait_until`` polls a predicate (a counter, a flag) until it holds; ``wait_for_health``
follows the standard health ``Watch`` stream until a service reports a status. Both fail
with what was awaited and for how long, so a stuck test says why::

    wait_until(lambda: stats.active_sequences == 0, 10, "the cancelled sequence to leave the batch")
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

T = TypeVar("T")

#: Seconds between two looks at a polled condition: short next to any model step in the tests.
POLL_S = 0.002


def wait_until(predicate: Callable[[], T], timeout: float = 10.0, what: str = "the condition") -> T:
    """Return the first truthy value of ``predicate()``; AssertionError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(POLL_S)


async def wait_until_async(predicate: Callable[[], T | Awaitable[T]], timeout: float = 10.0,
                           what: str = "the condition") -> T:
    """:func:`wait_until` for a running event loop: yields to it between looks (``predicate`` may be async)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value) or isinstance(value, asyncio.Future):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(POLL_S)


def wait_for_health(target: str, status: int, service: str = "", timeout: float = 10.0) -> None:
    """Follow ``grpc.health.v1.Health/Watch`` on ``target`` until ``service`` reports ``status``
    (a ``HealthCheckResponse.ServingStatus``); AssertionError with the statuses seen after ``timeout`` s.

    Watch sends the current status at once, then every change, so it does not matter
    whether the change happened before or after the call.
    """
    seen: list[str] = []
    name = health_pb2.HealthCheckResponse.ServingStatus.Name
    with grpc.insecure_channel(target) as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=service),
                                                          timeout=timeout)
        try:
            for response in watch:
                seen.append(name(response.status))
                if response.status == status:
                    return
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
                raise
        finally:
            watch.cancel()
    raise AssertionError(f"health of {service or 'the server'!r} at {target} did not become {name(status)} "
                         f"within {timeout:g} s; it reported {seen or 'nothing'}")
