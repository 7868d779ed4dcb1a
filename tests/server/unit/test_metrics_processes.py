"""The server's metrics with real processes: a server and its exporter over one
multiprocess directory, as in the app container (server.metrics,
wsgistack.metrics.files, wsgistack.metrics.exporter).

Every loop is bounded in count and time; nothing asserts how fast this noisy
machine is, except one generous sanity bound printed beside its measurement.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from wsgistack.metrics.routes import MAX_ROUTES

from tests.support import ROOT, wait_until
from tests.support.process import free_port

APP = "wsgistack_demo.wsgi:application"


class Server:
    """``python -m wsgistack`` and ``wsgistack-exporter`` over ``directory``."""

    def __init__(
        self, directory: Path, *flags: str, app: str = APP, cwd: Path = ROOT / "app"
    ) -> None:
        self.directory = directory
        self.port, self.metrics_port = free_port(), free_port()
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
        self.server = subprocess.Popen(
            [sys.executable, "-m", "wsgistack", "-b", f"127.0.0.1:{self.port}"]
            + ["--log-level", "warning", *flags, app],
            cwd=cwd,
            env=env,
        )
        self.exporter = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "wsgistack.metrics.exporter",
                "-b",
                f"127.0.0.1:{self.metrics_port}",
            ],
            cwd=ROOT / "app",
            env=env,
            stderr=subprocess.DEVNULL,
        )
        assert wait_until(self._answers), "the server or its exporter did not start"

    def _answers(self) -> bool:
        try:
            self.get("/healthz")
            self.scrape()
        except OSError:
            return False
        return True

    def get(self, target: str) -> tuple[int, bytes]:
        """One request on a new connection: (status, body)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        try:
            conn.request("GET", target)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def scrape(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics") as r:
            return r.read().decode()

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples called ``name`` whose labels include ``labels``."""
        return sum(
            sample.value
            for family in text_string_to_metric_families(self.scrape())
            for sample in family.samples
            if sample.name == name and labels.items() <= sample.labels.items()
        )

    def stop(self) -> None:
        for process in (self.server, self.exporter):
            if process.poll() is None:
                process.terminate()
        for process in (self.server, self.exporter):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def start(tmp_path) -> Iterator:
    servers: list[Server] = []

    def _start(*flags: str, **where: Any) -> Server:
        servers.append(Server(tmp_path, *flags, **where))
        return servers[-1]

    yield _start
    for server in servers:
        server.stop()


def _count(server: Server, status: str, route: str) -> float:
    return server.value(
        "http_server_request_duration_seconds_count",
        http_response_status_code=status,
        http_route=route,
    )


@pytest.mark.slow
def test_a_thousand_recycles_keep_the_directory_small_and_the_totals_exact(start):
    recycles = 1000
    server = start("--workers", "2", "--max-requests", "1")
    restarts = {"reason": "max-requests"}
    # start()'s readiness probes recycled workers too. A worker counts its
    # request just after answering it, then counts it out of the in-flight gauge:
    # once that is 0, the last probe is counted.
    assert wait_until(lambda: server.value("http_server_active_requests") == 0)
    probes = _count(server, "200", "/healthz")
    assert wait_until(
        lambda: server.value("wsgi_server_worker_restarts_total", **restarts) == probes
    )
    started = time.monotonic()
    for n in range(recycles):
        target = "/api/status?code=200" if n % 2 else "/no/such/page"
        for _ in range(100):  # a recycling worker may close before this request lands
            try:
                server.get(target)
                break
            except (ConnectionError, http.client.RemoteDisconnected):
                time.sleep(0.01)
        else:
            pytest.fail(f"request {n} failed 100 times")
    print(f"\n{recycles} recycles in {time.monotonic() - started:.1f} s")
    total = probes + recycles
    assert wait_until(
        lambda: server.value("wsgi_server_worker_restarts_total", **restarts) == total, 60
    ), server.value("wsgi_server_worker_restarts_total", **restarts)

    # The cause of a fast /metrics: a bounded directory, whatever the recycles.
    files = sorted(path.name for path in server.directory.glob("*.db"))
    print(f"{len(files)} files: {' '.join(files)}")
    assert len(files) <= 12
    for name in files:
        assert re.fullmatch(
            r"(counter|histogram|gauge_live(sum|max))_(master|worker[0-3])\.db", name
        )

    started = time.perf_counter()
    text = server.scrape()
    took = time.perf_counter() - started
    print(f"/metrics after {recycles} recycles: {took * 1000:.1f} ms, {len(text)} bytes")
    assert took < 2.0  # sanity only: the 100 ms holds here with room to spare

    assert server.value("wsgi_server_worker_restarts_total", **restarts) == total
    assert _count(server, "200", "/api/status") == recycles / 2
    assert _count(server, "404", "_OTHER") == recycles / 2
    # Gauges: the master sets the worker count on its next pass after the last
    # replacement, and the last worker counts its request out just after answering.
    assert wait_until(lambda: server.value("http_server_active_requests") == 0)
    assert wait_until(lambda: server.value("wsgi_server_workers") == 2), server.value(
        "wsgi_server_workers"
    )


def test_a_killed_worker_counts_as_an_exit_and_leaves_no_request_in_flight(start):
    server = start("--workers", "1")
    pid = json.loads(server.get("/api/echo")[1])["pid"]
    # The worker counts a request out just after its response: wait, or the
    # wait below could see this one and the kill come before the slow request.
    assert wait_until(lambda: server.value("http_server_active_requests") == 0)
    outcome: list[object] = []

    def slow_request() -> None:
        try:
            outcome.append(server.get("/api/sleep?ms=20000"))
        except (ConnectionError, http.client.RemoteDisconnected) as exc:
            outcome.append(exc)

    thread = threading.Thread(target=slow_request)
    thread.start()
    assert wait_until(lambda: server.value("http_server_active_requests") == 1)
    os.kill(pid, signal.SIGKILL)
    thread.join(timeout=20)
    assert outcome and isinstance(outcome[0], Exception)  # it died mid-request
    assert wait_until(lambda: server.value("wsgi_server_worker_restarts_total", reason="exit") == 1)
    assert server.value("http_server_active_requests") == 0  # its live gauge went with it
    assert server.get("/")[0] == 200  # the replacement serves
    assert server.value("wsgi_server_worker_restarts_total", reason="timeout") == 0


def test_a_worker_silent_past_the_timeout_counts_as_a_timeout(start):
    server = start("--workers", "1", "--timeout", "3")
    with pytest.raises((ConnectionError, http.client.RemoteDisconnected)):
        server.get("/api/sleep?ms=15000")  # blocks the worker's only thread: no heartbeat
    assert wait_until(
        lambda: server.value("wsgi_server_worker_restarts_total", reason="timeout") == 1
    )
    assert server.value("wsgi_server_worker_restarts_total", reason="exit") == 0
    assert server.get("/")[0] == 200


def test_routes_label_requests_and_unknown_paths_fold_into_one_value(start):
    server = start("--workers", "1")
    for target in ("/", "/api/echo?a=1", "/api/echo?a=2", "/x/1", "/x/2", "/y"):
        server.get(target)
    assert _count(server, "200", "/") == 1
    assert _count(server, "200", "/api/echo") == 2  # the query string is not the route
    assert _count(server, "404", "_OTHER") == 3
    routes = {
        sample.labels["http_route"]
        for family in text_string_to_metric_families(server.scrape())
        for sample in family.samples
        if sample.name == "http_server_request_duration_seconds_count"
    }
    assert routes <= {"/", "/healthz", "/api/echo", "_OTHER"}


@pytest.mark.parametrize("flags", [(), ("--preload",)], ids=["worker", "preload"])
def test_an_app_that_cannot_be_imported_is_counted(tmp_path, flags):
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "wsgistack", "-w", "1", "-b", f"127.0.0.1:{free_port()}", *flags]
        + ["no_such_module:app"],
        cwd=ROOT / "app",
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 3
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(tmp_path))
    assert registry.get_sample_value("wsgi_server_app_import_failures_total") == 1


def test_check_config_leaves_the_metrics_directory_alone(tmp_path):
    (tmp_path / "gauge_livesum_worker0.db").write_bytes(b"")
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "wsgistack", "--check-config", APP],
        cwd=ROOT / "app",
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert [path.name for path in tmp_path.iterdir()] == ["gauge_livesum_worker0.db"]


def test_a_restarted_server_continues_its_counters(start):
    first = start("--workers", "1")
    for _ in range(3):
        first.get("/")
    first.stop()
    second = start("--workers", "1")
    second.get("/")
    # A worker counts a request just after sending its response: wait for it.
    assert wait_until(lambda: _count(second, "200", "/") == 4)
    assert second.value("wsgi_server_workers") == 1  # the last run's gauges were dropped


ROUTE_PER_PATH = """
def application(environ, start_response):
    environ["wsgistack.http_route"] = environ["PATH_INFO"]  # the raw path, by mistake
    start_response("200 OK", [("Content-Length", "2")])
    return [b"ok"]
"""


def test_the_route_cap_holds_for_the_directory_across_recycled_workers(start, tmp_path):
    """An app that labels raw paths, 2 workers recycled every 150 requests, 2,000
    distinct paths: at most MAX_ROUTES http_route values (and _OTHER) in the
    directory, where each new worker used to bring MAX_ROUTES more."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "rawroutes.py").write_text(ROUTE_PER_PATH)
    server = start("-w", "2", "--max-requests", "150", app="rawroutes:application", cwd=project)
    for n in range(2000):
        assert server.get(f"/item/{n}")[0] == 200
    routes = {
        sample.labels["http_route"]
        for family in text_string_to_metric_families(server.scrape())
        for sample in family.samples
        if "http_route" in sample.labels
    }
    print(f"\n  {len(routes)} http_route values after 2,000 paths and ~13 recycles")
    assert len(routes) <= MAX_ROUTES + 1 and "_OTHER" in routes
