"""Metrics: the exporter counts exactly the requests sent; Prometheus scrapes all targets."""

from __future__ import annotations

import time

import httpx
import pytest

pytestmark = pytest.mark.integration


def _wait_for(predicate, timeout: float):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.5)


def test_exporter_counts_exactly_the_requests_sent(stack):
    # The healthcheck sends GET /healthz (200) every few seconds: count only
    # series it cannot touch, POST 200 and GET 404.
    posts, not_found = 15, 10
    before_post = stack.request_count("POST", 200)
    before_404 = stack.request_count("GET", 404)
    with stack.client() as client:
        for n in range(posts):
            assert client.post("/api/echo", content=b"n" * n).status_code == 200
        for _ in range(not_found):
            assert client.get("/api/status?code=404").status_code == 404

    def settled():
        return (
            stack.request_count("POST", 200) - before_post,
            stack.request_count("GET", 404) - before_404,
        ) == (posts, not_found)

    _wait_for(settled, timeout=5)
    assert stack.request_count("POST", 200) - before_post == posts
    assert stack.request_count("GET", 404) - before_404 == not_found


def test_exporter_reports_the_workers(stack):
    workers = [s for s in stack.exporter_samples() if s.name == "wsgi_server_workers"]
    assert workers and workers[0].value == int(stack.env["WEB_CONCURRENCY"])


def test_prometheus_scrapes_app_and_nginx(stack):
    def health() -> dict[str, str]:
        targets = httpx.get(f"{stack.prometheus}/api/v1/targets", timeout=10).json()
        return {t["labels"]["job"]: t["health"] for t in targets["data"]["activeTargets"]}

    _wait_for(lambda: set(health().values()) == {"up"}, 60)
    assert health() == {"app": "up", "nginx": "up", "prometheus": "up"}
    result = httpx.get(
        f"{stack.prometheus}/api/v1/query", params={"query": 'up{job="app"}'}, timeout=10
    ).json()
    assert [sample["value"][1] for sample in result["data"]["result"]] == ["1"]


def test_nginx_metrics_count_connections(stack):
    def accepted() -> float:
        result = httpx.get(
            f"{stack.prometheus}/api/v1/query",
            params={"query": "nginx_connections_accepted"},
            timeout=10,
        ).json()
        values = [float(s["value"][1]) for s in result["data"]["result"]]
        return values[0] if values else 0.0

    assert _wait_for(lambda: accepted() > 0, 30) > 0
