"""Faults the metrics must show: a killed worker is counted as a restart with
its reason, and a 502 nginx answers while the app is down is counted at nginx
and not at the app. These disturb the app, so they run last (marker `disruptive`)."""

from __future__ import annotations

import pytest

from tests.stack.integration.metrics_queries import (
    DURATION_COUNT,
    app_value,
    nginx_value,
    prometheus_value,
)
from tests.support import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.disruptive, pytest.mark.slow]

SUPERVISORCTL = ("supervisorctl", "-c", "/etc/supervisor/supervisord.conf")
# Prints the pids of the server master's children (the workers), one per line.
LIST_WORKERS = """
import os, sys
master = int(sys.argv[1])
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except OSError:
        continue
    if int(stat.rsplit(")", 1)[1].split()[1]) == master:
        print(pid)
"""


def _workers(stack) -> list[int]:
    master = stack.app_exec(*SUPERVISORCTL, "pid", "server").strip()
    return [int(pid) for pid in stack.app_exec("python", "-c", LIST_WORKERS, master).split()]


def test_a_killed_worker_is_counted_as_a_restart_with_its_reason(stack):
    exits = {"reason": "exit"}
    before = app_value(stack, "wsgi_server_worker_restarts_total", **exits)
    victim = _workers(stack)[0]
    stack.app_exec("python", "-c", f"import os; os.kill({victim}, 9)")
    counted = before + 1
    assert wait_until(
        lambda: app_value(stack, "wsgi_server_worker_restarts_total", **exits) == counted,
        10,
        interval=0.2,
    )
    # This replica's series: a replica removed moments ago (an earlier test
    # scaled the app) may still be a target until the next DNS refresh.
    (network,) = stack.container("app").attrs["NetworkSettings"]["Networks"].values()
    instance = f"{network['IPAddress']}:9100"
    query = f'wsgi_server_worker_restarts_total{{job="app", instance="{instance}", reason="exit"}}'
    assert wait_until(lambda: prometheus_value(stack, query) == counted, 30, interval=0.2)
    assert app_value(stack, "wsgi_server_worker_restarts_total", reason="timeout") == 0
    workers = int(stack.env["WEB_CONCURRENCY"])
    assert wait_until(
        lambda: len(_workers(stack)) == workers and victim not in _workers(stack), 10, interval=0.2
    )
    assert app_value(stack, "wsgi_server_workers") == workers


def test_a_502_from_nginx_counts_at_nginx_and_not_at_the_app(stack):
    refused = 3
    at_nginx = {"http_request_method": "GET", "http_response_status_code": "502"}
    get_502_at_app = {"http_request_method": "GET", "http_response_status_code": "502"}
    home = {"http_request_method": "GET", "http_response_status_code": "200", "http_route": "/"}
    before = (
        nginx_value(stack, DURATION_COUNT, **at_nginx),
        nginx_value(stack, "nginx_upstream_response_time_seconds_count", upstream_status="502"),
        app_value(stack, DURATION_COUNT, **get_502_at_app),
    )
    home_before = app_value(stack, DURATION_COUNT, **home)
    stack.app_exec(*SUPERVISORCTL, "stop", "server")  # the exporter keeps serving
    try:
        with stack.client() as client:
            for _ in range(refused):
                response = client.get("/api/echo")
                assert response.status_code == 502
                assert response.headers["server"] == "nginx"
    finally:
        stack.app_exec(*SUPERVISORCTL, "start", "server")

    def back() -> bool:
        with stack.client() as client:
            return client.get("/healthz").status_code == 200

    assert wait_until(back, 60, interval=0.2)
    after = (
        nginx_value(stack, DURATION_COUNT, **at_nginx),
        nginx_value(stack, "nginx_upstream_response_time_seconds_count", upstream_status="502"),
        app_value(stack, DURATION_COUNT, **get_502_at_app),
    )
    assert after == (before[0] + refused, before[1] + refused, before[2])
    # The restarted server continued its totals instead of starting from zero.
    assert app_value(stack, DURATION_COUNT, **home) == home_before
