"""The monitoring configuration, checked with the stack's own tools: promtool
from its Prometheus image (config, rules, alert unit tests), mtail from its
mtail image (the nginx program on sample lines), the Grafana dashboard's queries
against the live Prometheus, and the optional `grafana` compose profile."""

from __future__ import annotations

import json
import re
from pathlib import Path

import docker
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support import ROOT, wait_until

pytestmark = pytest.mark.integration

MONITORING = ROOT / "monitoring"
DASHBOARD = MONITORING / "grafana" / "dashboards" / "wsgistack.json"


def _run(stack, service: str, entrypoint: str, *command: str, mount: str) -> str:
    """Run ``entrypoint command`` in a throw-away container of the stack's image."""
    image = f"{stack.compose_env['COMPOSE_PROJECT_NAME']}/{service}:latest"
    try:
        output = docker.from_env().containers.run(
            image,
            list(command),
            entrypoint=entrypoint,
            volumes={str(MONITORING / service): {"bind": mount, "mode": "ro"}},
            remove=True,
        )
    except docker.errors.ContainerError as exc:
        pytest.fail(f"{entrypoint} {' '.join(command)} failed:\n{exc.stderr.decode()}")
    return output.decode()


def promtool(stack, *command: str) -> str:
    return _run(stack, "prometheus", "promtool", *command, mount="/etc/prometheus")


def test_promtool_checks_the_config_and_its_rule_files(stack):
    output = promtool(stack, "check", "config", "/etc/prometheus/prometheus.yml")
    assert "SUCCESS: 2 rule files found" in output
    assert "is valid prometheus config file syntax" in output


def test_promtool_checks_the_rules(stack):
    output = promtool(
        stack,
        "check",
        "rules",
        "/etc/prometheus/rules/recording.yml",
        "/etc/prometheus/rules/alerts.yml",
    )
    assert output.count("SUCCESS") == 2


def test_promtool_unit_tests_of_the_alerts_pass(stack):
    assert "SUCCESS" in promtool(stack, "test", "rules", "/etc/prometheus/tests/alerts_test.yml")


def test_every_alert_has_a_firing_and_a_quiet_unit_test():
    alerts = re.findall(
        r"^\s+- alert: (\w+)$", (MONITORING / "prometheus/rules/alerts.yml").read_text(), re.M
    )
    tests = (MONITORING / "prometheus/tests/alerts_test.yml").read_text()
    assert len(alerts) == 6
    for alert in alerts:
        cases = re.findall(rf"alertname: {alert}\n\s+exp_alerts:(.*)", tests)
        assert " []" in cases, f"{alert}: no case where it stays quiet"
        assert "" in cases, f"{alert}: no case where it fires"


def test_mtail_turns_nginx_lines_into_metrics(stack):
    text = _run(
        stack,
        "mtail",
        "mtail",
        "--progs=/etc/mtail",
        "--logs=/monitoring/tests/nginx-metrics.log",
        "--logs=/monitoring/tests/nginx-tls.log",
        "--one_shot",
        "--one_shot_format=prometheus",
        "--emit_prog_label=false",
        mount="/monitoring",
    )
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }

    def value(name: str, **labels: str) -> float:
        return samples.get((name, tuple(sorted(labels.items()))), 0.0)

    count = "http_server_request_duration_seconds_count"
    server = {"http_request_method": "GET"}
    assert value(count, **server, http_response_status_code="200") == 3  # one not proxied
    assert value(count, http_request_method="POST", http_response_status_code="413") == 1
    assert value(count, **server, http_response_status_code="502") == 1
    assert value(count, http_request_method="_OTHER", http_response_status_code="504") == 1
    # A 0.000 s request lands in the first bucket (mtail needs the -1 lower bound for it).
    bucket = "http_server_request_duration_seconds_bucket"
    assert (
        value(bucket, http_request_method="POST", http_response_status_code="413", le="0.005") == 1
    )
    upstream = "nginx_upstream_response_time_seconds_count"
    # Only proxied requests, by the last upstream status; "-" (nginx alone) is not one.
    assert value(upstream, upstream_status="200") == 2
    assert value(upstream, upstream_status="502") == 1
    assert value(upstream, upstream_status="504") == 1
    assert value(upstream, upstream_status="404") == 1
    assert value("nginx_upstream_response_time_seconds_sum", upstream_status="404") == 0.2
    # The refused handshakes, from the catch-all server's error log: no other line.
    assert value("nginx_ssl_handshakes_rejected_total") == 2


def _dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def test_every_dashboard_query_returns_data_from_the_live_prometheus(stack):
    with stack.client() as client:  # traffic for every panel: 2xx, 5xx, through nginx
        for _ in range(5):
            client.get("/")
            client.get("/api/status?code=500")
    queries = [q.replace("$__rate_interval", "1m") for q in _dashboard_queries()]

    def empty() -> list[str]:
        missing = []
        for query in queries:
            answer = httpx.get(f"{stack.prometheus}/api/v1/query", params={"query": query}).json()
            assert answer["status"] == "success", (query, answer)
            if not answer["data"]["result"]:
                missing.append(query)
        return missing

    wait_until(lambda: not empty(), 60, interval=2)
    assert empty() == []


def test_grafana_is_an_optional_profile(stack):
    default = stack.compose("config", "--services")
    assert default.returncode == 0, default.stderr
    assert "grafana" not in default.stdout.split()
    with_grafana = stack.compose("--profile", "grafana", "config", "--format", "json")
    assert with_grafana.returncode == 0, with_grafana.stderr
    grafana = json.loads(with_grafana.stdout)["services"]["grafana"]
    assert "build" not in grafana  # a pulled image: no build step depends on it
    mounted = {Path(v["source"]).relative_to(ROOT) for v in grafana["volumes"]}
    assert mounted == {
        Path("monitoring/grafana/provisioning"),
        Path("monitoring/grafana/dashboards"),
    }
