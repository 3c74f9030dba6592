"""Prometheus metrics: per-model scheduler counters and per-method latency histograms."""

from __future__ import annotations

import re
import urllib.request

from rnnserve.host.plugins import PluginHost
from rnnserve.ops.config import ServerConfig
from rnnserve.testing.server import running_server
from rnnserve_client import Client


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return response.read().decode()


def _value(text: str, sample: str) -> float:
    match = re.search(rf"^{re.escape(sample)} (\S+)$", text, re.M)
    assert match, f"{sample} not in metrics"
    return float(match.group(1))


def test_metrics_count_tokens_requests_and_latency(toy_host: PluginHost) -> None:
    with running_server(ServerConfig(metrics_port=0), toy_host) as srv, Client(srv.target, timeout=10) as client:
        assert srv.app.metrics_port
        client.generate("toy", "the", max_new_tokens=7, temperature=0)
        text = _scrape(srv.app.metrics_port)
    assert _value(text, 'rnnserve_tokens_total{model="toy"}') == 7
    assert _value(text, 'rnnserve_requests_total{model="toy"}') == 1
    assert _value(text, 'rnnserve_model_ready{model="toy"}') == 1
    assert _value(text, 'rnnserve_queue_depth{model="toy"}') == 0
    count = 'rnnserve_request_seconds_count{code="OK",method="/rnnserve.v1.Generation/Generate"}'
    assert _value(text, count) == 1


def test_metrics_are_off_by_default(toy_host: PluginHost) -> None:
    with running_server(ServerConfig(), toy_host) as srv:
        assert srv.app.metrics_port is None
