"""Prometheus metrics (opt-in: ``rnnserve serve --metrics-port N``), served over HTTP.

Per model, read from the schedulers' counters at scrape time (nothing on the hot path):
queue length, running batch size, steps, tokens (characters for char models: rate() of
``rnnserve_tokens_total`` is chars/s), requests and refusals, hangs and background reloads. Per RPC method and status
code: a latency histogram observed by the admission interceptor when each call ends.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from rnnserve.host.registry import ModelRegistry

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class _ModelCollector(Collector):
    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        gauges = {
            "queue_depth": GaugeMetricFamily("rnnserve_queue_depth", "Requests waiting to join the batch",
                                             labels=["model"]),
            "active_sequences": GaugeMetricFamily("rnnserve_batch_size", "Sequences in the running batch",
                                                  labels=["model"]),
        }
        counters = {
            "steps_total": CounterMetricFamily("rnnserve_steps", "Batched model steps", labels=["model"]),
            "tokens_total": CounterMetricFamily("rnnserve_tokens", "Tokens produced", labels=["model"]),
            "requests_total": CounterMetricFamily("rnnserve_requests", "Requests accepted", labels=["model"]),
            "rejected_total": CounterMetricFamily("rnnserve_rejected", "Requests refused (queue full)",
                                                  labels=["model"]),
        }
        ready = GaugeMetricFamily("rnnserve_model_ready", "1 when the model is READY", labels=["model"])
        hangs = CounterMetricFamily("rnnserve_model_hangs", "Times the watchdog found a model call past "
                                    "step_timeout_s (the model was marked FAILED)", labels=["model"])
        reloads = CounterMetricFamily("rnnserve_model_reloads", "Background reloads of a FAILED model, by outcome "
                                      "(ready: serving again; failed: the load failed, retried with backoff)",
                                      labels=["model", "outcome"])
        for entry in self.registry.entries():
            stats = entry.stats
            for key, family in (*gauges.items(), *counters.items()):
                family.add_metric([entry.name], getattr(stats, key))
            ready.add_metric([entry.name], 1.0 if entry.state == "ready" else 0.0)
            hangs.add_metric([entry.name], entry.hangs)
            reloads.add_metric([entry.name, "ready"], entry.reloads)
            reloads.add_metric([entry.name, "failed"], entry.reload_failures)
        yield from gauges.values()
        yield from counters.values()
        yield ready
        yield hangs
        yield reloads


class Metrics:
    """The server's metrics registry."""

    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_ModelCollector(registry))
        self.latency = Histogram("rnnserve_request_seconds", "Call duration by RPC method and status code",
                                 ["method", "code"], buckets=LATENCY_BUCKETS, registry=self.registry)

    def observe(self, method: str, code: str, seconds: float) -> None:
        self.latency.labels(method, code).observe(seconds)

    def serve(self, host: str, port: int) -> int:
        """Start the HTTP endpoint (``/metrics``) on a daemon thread; returns the bound port."""
        server, _ = start_http_server(port, addr=host, registry=self.registry)
        return server.server_port
