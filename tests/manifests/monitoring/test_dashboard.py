"""The Grafana dashboard (monitoring/grafana/): well-formed, wired to the
provisioned datasource, and every recording rule it reads exists, so a renamed
rule breaks this test rather than the dashboard. (Its queries also run against
the live Prometheus in tests/stack/integration/test_monitoring_config.py.)"""

from __future__ import annotations

import json
import re

from tests.support import ROOT

GRAFANA = ROOT / "monitoring" / "grafana"
DASHBOARD = json.loads((GRAFANA / "dashboards" / "wsgistack.json").read_text())
PANELS = [p for p in DASHBOARD["panels"] if p["type"] != "row"]
QUERIES = [t["expr"] for p in PANELS for t in p["targets"]]
RECORDED = set(
    re.findall(
        r"^\s+- record: (\S+)$",
        (ROOT / "monitoring/prometheus/rules/recording.yml").read_text(),
        re.M,
    )
)


def test_every_recording_rule_the_dashboard_reads_exists():
    used = {name for query in QUERIES for name in re.findall(r"\bjob:[a-z0-9_]+:[a-z0-9_]+", query)}
    assert used, "the dashboard should read the recording rules"
    assert used <= RECORDED


def test_the_dashboard_shows_red_workers_and_nginx_connections():
    for name in (
        "job:http_server_requests:rate5m",  # rate
        "job:http_server_request_errors:ratio_rate5m",  # errors
        "job:http_server_request_duration_seconds:p99_rate5m",  # duration
        "wsgi_server_workers",
        "wsgi_server_worker_restarts_total",
        "nginx_connections_active",
        "job:nginx_upstream_errors:ratio_rate5m",
    ):
        assert any(name in query for query in QUERIES), name


def test_panels_use_the_provisioned_datasource_and_say_what_they_show():
    provisioned = (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text()
    uid = re.search(r"^\s+uid: (\S+)$", provisioned, re.M).group(1)
    ids = [p["id"] for p in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids))
    for panel in PANELS:
        assert panel["datasource"]["uid"] == uid
        assert all(t["datasource"]["uid"] == uid for t in panel["targets"])
        assert panel["title"] and panel["description"] and panel["fieldConfig"]["defaults"]["unit"]


def test_the_provider_loads_the_dashboards_folder():
    provider = (GRAFANA / "provisioning" / "dashboards" / "wsgistack.yml").read_text()
    assert "path: /var/lib/grafana/dashboards" in provider
    compose = (ROOT / "docker-compose.yml").read_text()
    assert "./monitoring/grafana/dashboards:/var/lib/grafana/dashboards:ro" in compose
