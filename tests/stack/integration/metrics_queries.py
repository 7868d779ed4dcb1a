"""Reading the stack's metrics where each source keeps them: the app's
exporter, nginx's mtail (both inside their containers) and Prometheus' API.
Shared by test_metrics and test_metrics_faults."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

DURATION_COUNT = "http_server_request_duration_seconds_count"


def _matching(samples, name: str, labels: dict[str, str]) -> float:
    return sum(s.value for s in samples if s.name == name and labels.items() <= s.labels.items())


def app_value(stack, name: str, **labels: str) -> float:
    """A sum of samples from the app's exporter (read inside the app container)."""
    return _matching(stack.exporter_samples(), name, labels)


def nginx_value(stack, name: str, **labels: str) -> float:
    """A sum of samples from mtail, nginx's per-request metrics (read inside its container)."""
    result = stack.container("mtail").exec_run(["curl", "-fsS", "http://127.0.0.1:3903/metrics"])
    assert result.exit_code == 0, result.output.decode()
    families = text_string_to_metric_families(result.output.decode())
    return _matching([s for f in families for s in f.samples], name, labels)


def prometheus_query(stack, query: str) -> list[dict]:
    response = httpx.get(f"{stack.prometheus}/api/v1/query", params={"query": query}, timeout=10)
    body = response.json()
    assert body["status"] == "success", body
    return body["data"]["result"]


def prometheus_value(stack, query: str) -> float:
    """The value of a query that yields one series (0 when it yields none)."""
    result = prometheus_query(stack, query)
    assert len(result) <= 1, result
    return float(result[0]["value"][1]) if result else 0.0
