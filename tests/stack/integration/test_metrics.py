"""Metrics end to end: what the app's exporter, nginx's mtail and Prometheus count
matches the traffic sent through nginx exactly; each source is reachable only
inside the stack; Prometheus scrapes every target and loads every rule."""

from __future__ import annotations

import httpx
import pytest

from tests.stack.integration.metrics_queries import (
    DURATION_COUNT,
    app_value,
    nginx_value,
    prometheus_value,
)
from tests.support import wait_until

pytestmark = pytest.mark.integration

ALERTS = {
    "TargetDown",
    "HighErrorRatio",
    "HighLatencyP99",
    "WorkerRestartsSpiking",
    "NginxUpstreamErrors",
    "AppImportFailing",
}


def _selector(name: str, labels: dict[str, str]) -> str:
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def test_mixed_traffic_is_counted_exactly_by_the_app_nginx_and_prometheus(stack):
    # Series the healthchecks never touch: they call /healthz on the app directly
    # and /nginx-health, which nginx doesn't log.
    sent = {  # (target, status, http_route at the app): how many
        ("/", "200", "/"): 7,
        ("/no/such/page", "404", "_OTHER"): 5,
        ("/api/status?code=500", "500", "/api/status"): 3,
    }
    app_series = {
        key: {
            "http_request_method": "GET",
            "http_response_status_code": key[1],
            "http_route": key[2],
        }
        for key in sent
    }
    nginx_series = {
        key: {"http_request_method": "GET", "http_response_status_code": key[1]} for key in sent
    }
    before_app = {key: app_value(stack, DURATION_COUNT, **app_series[key]) for key in sent}
    before_nginx = {key: nginx_value(stack, DURATION_COUNT, **nginx_series[key]) for key in sent}
    with stack.client() as client:
        for (target, status, _), count in sent.items():
            for _ in range(count):
                assert client.get(target).status_code == int(status)

    def app_deltas():
        return {k: app_value(stack, DURATION_COUNT, **app_series[k]) - before_app[k] for k in sent}

    def nginx_deltas():
        return {
            k: nginx_value(stack, DURATION_COUNT, **nginx_series[k]) - before_nginx[k] for k in sent
        }

    wait_until(lambda: app_deltas() == sent and nginx_deltas() == sent, timeout=10, interval=0.2)
    assert app_deltas() == sent
    assert nginx_deltas() == sent

    # Prometheus, after its next scrapes, holds exactly the sources' totals.
    expected = {}
    for key in sent:
        labels = {"job": "app", **app_series[key]}
        expected[_selector(DURATION_COUNT, labels)] = before_app[key] + sent[key]
        labels = {"job": "nginx-log", **nginx_series[key]}
        expected[_selector(DURATION_COUNT, labels)] = before_nginx[key] + sent[key]

    def in_prometheus():
        return {query: prometheus_value(stack, query) for query in expected}

    wait_until(lambda: in_prometheus() == expected, timeout=30, interval=0.2)
    assert in_prometheus() == expected


def test_a_413_from_nginx_counts_at_nginx_and_not_at_the_app(stack):
    limit = int(stack.env["LIMIT_REQUEST_BODY"])
    at_nginx = {"http_request_method": "POST", "http_response_status_code": "413"}
    before_nginx = nginx_value(stack, DURATION_COUNT, **at_nginx)
    before_app = app_value(stack, DURATION_COUNT, http_request_method="POST")
    with stack.client() as client:
        assert client.post("/api/upload", content=b"x" * (limit + 1)).status_code == 413
    assert wait_until(
        lambda: nginx_value(stack, DURATION_COUNT, **at_nginx) == before_nginx + 1, 10, interval=0.2
    )
    assert app_value(stack, DURATION_COUNT, http_request_method="POST") == before_app


def test_exporters_and_stub_status_are_not_published(stack):
    for service in ("app", "nginx-exporter", "mtail"):
        ports = stack.container(service).attrs["NetworkSettings"]["Ports"] or {}
        assert not any(ports.values()), f"{service} publishes {ports}"
    ports = stack.container("proxy").attrs["NetworkSettings"]["Ports"]
    assert sorted(port for port, bound in ports.items() if bound) == ["8080/tcp", "8443/tcp"]
    with stack.client() as client:  # the published HTTPS server proxies it to the app: 404
        response = client.get("/stub_status")
    assert response.status_code == 404
    assert "Active connections" not in response.text


def test_exporter_reports_the_workers(stack):
    workers = [s for s in stack.exporter_samples() if s.name == "wsgi_server_workers"]
    assert workers and workers[0].value == int(stack.env["WEB_CONCURRENCY"])


def test_prometheus_scrapes_every_target(stack):
    def health() -> dict[str, tuple[str, str]]:
        targets = httpx.get(f"{stack.prometheus}/api/v1/targets", timeout=10).json()
        return {
            t["labels"]["job"]: (t["labels"]["instance"], t["health"])
            for t in targets["data"]["activeTargets"]
        }

    # The app job finds every replica by DNS (dns_sd_configs): each is its
    # own instance, ADDRESS:9100.
    (network,) = stack.container("app").attrs["NetworkSettings"]["Networks"].values()
    wait_until(lambda: {h for _, h in health().values()} == {"up"}, 60, interval=0.2)
    assert health() == {
        "app": (f"{network['IPAddress']}:9100", "up"),
        "nginx": ("proxy", "up"),
        "nginx-log": ("proxy", "up"),
        "prometheus": ("prometheus", "up"),
    }


def test_prometheus_loads_every_rule(stack):
    groups = httpx.get(f"{stack.prometheus}/api/v1/rules", timeout=10).json()["data"]["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert {r["name"] for r in rules if r["type"] == "alerting"} == ALERTS
    assert all(r["health"] == "ok" for r in rules), [r for r in rules if r["health"] != "ok"]
    for rule in rules:
        if rule["type"] == "alerting":
            assert rule["annotations"]["runbook"] and rule["annotations"]["summary"]


def test_nginx_metrics_count_connections(stack):
    def accepted() -> float:
        return prometheus_value(stack, "nginx_connections_accepted")

    assert wait_until(lambda: accepted() > 0, 30, interval=0.2)
