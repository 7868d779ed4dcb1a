"""Stopping and failing: graceful stop of the app container, and a container
that exits when one of its programs fails for good. These disturb the stack,
so they run last (marker `disruptive`)."""

from __future__ import annotations

import time

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.disruptive]


def test_exporter_failing_for_good_ends_the_container(stack):
    app = stack.container("app")
    restarts = app.attrs["RestartCount"]
    # Kill the exporter each time supervisord starts it, until it gives up (FATAL).
    stack.container("app").exec_run(
        [
            "sh",
            "-c",
            "for i in $(seq 1 60); do p=$(supervisorctl -c /etc/supervisor/supervisord.conf pid "
            'exporter); [ "$p" -gt 0 ] 2>/dev/null && kill -9 $p; sleep 0.2; done',
        ],
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        app.reload()
        if app.attrs["RestartCount"] > restarts:
            break
        time.sleep(1)
    assert app.attrs["RestartCount"] > restarts, "the container did not exit and restart"
    # Docker's restart policy brings it back healthy.
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        app.reload()
        if app.attrs["State"].get("Health", {}).get("Status") == "healthy":
            break
        time.sleep(1)
    assert app.attrs["State"]["Health"]["Status"] == "healthy"


def test_docker_stop_is_a_graceful_shutdown(stack):
    app = stack.container("app")
    started = time.monotonic()
    app.stop(timeout=30)
    took = time.monotonic() - started
    app.reload()
    assert app.attrs["State"]["ExitCode"] == 0
    assert took < 25, f"stop took {took:.1f} s, too close to the 30 s stop timeout"
    logs = app.logs(tail=50).decode()
    assert "stopping (SIGTERM, graceful)" in logs


def test_wsgi_server_switches_to_gunicorn_and_back(stack):
    def serve_with(engine: str) -> None:
        result = stack.compose("up", "-d", "--wait", "app", WSGI_SERVER=engine)
        assert result.returncode == 0, result.stderr

    try:
        serve_with("gunicorn")
        assert "Starting gunicorn" in stack.container("app").logs(tail=200).decode()
        before = stack.request_count("POST", 200)
        with stack.client() as client:
            for _ in range(5):
                response = client.post("/api/upload", content=b"abc")
                assert response.json()["bytes"] == 3
        # gunicorn's workers record the same metrics, so the engines compare in one Prometheus.
        deadline = time.monotonic() + 5
        while stack.request_count("POST", 200) - before < 5 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert stack.request_count("POST", 200) - before == 5
    finally:
        serve_with("wsgistack")
    assert "Starting gunicorn" not in stack.container("app").logs(tail=200).decode()
    with stack.client() as client:
        assert client.get("/").status_code == 200
