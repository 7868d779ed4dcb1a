"""`make load` against the session stack: a short smoke run of every scenario (seconds, a
tiny rate), run as `python -m loadtest` the way `make load` does. Each checks that the
report's files exist, that the generator's count of answers equals the requests the
server counted in Prometheus (its probe routes left out, give or take what was in flight
at the cut), and that the plots are PNG images holding the expected series. The closed
loop runs against the proxy as .env has it: the run raises nginx's per-client limits
(loadtest/compose.yaml) and puts them back; the other runs find the load limits in
place (the proxy restarts twice for the module, not twice per run). The engine
comparison leaves the app and the proxy as it found them."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from loadtest import target
from loadtest.prometheus import Prometheus
from tests.stack.integration.loadruns import (
    LOAD_LIMITS,
    check_report,
    load,
    proxy_limits,
)
from tests.support import ROOT, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(420)]


def test_the_closed_loop_runs_the_weighted_mix_with_wrk_at_the_load_test_s_limits(stack, tmp_path):
    result = stack.compose("up", "-d", "--no-deps", "--wait", "proxy", timeout=120)
    assert result.returncode == 0, result.stderr  # the proxy as .env has it (a no-op if so)
    found = proxy_limits(stack)
    assert found != LOAD_LIMITS
    folder, summary, output = load(
        stack, tmp_path, "mixed", "--rate", "max", "--duration", "2s", "--connections", "4"
    )
    check_report(folder, summary, ["wsgistack"])  # no errors: no 429 from one client at full speed
    client = summary["engines"]["wsgistack"]["client"]
    assert summary["settings"]["generator"] == "wrk"
    assert sum(r["requests"] for r in client["by_request"].values()) == client["requests"]
    assert (
        client["by_request"]["hello"]["requests"] > client["by_request"]["sleep-20ms"]["requests"]
    )
    assert "nginx restarted with the load test's per-client limits" in output
    assert proxy_limits(stack) == found  # put back
    assert stack.container("proxy").attrs["State"]["Health"]["Status"] == "healthy"
    with stack.client() as http:
        assert http.get("/").status_code == 200


@pytest.mark.parametrize("scenario", ["hello", "json-echo", "cpu", "io", "upload", "stream"])
def test_each_scenario_runs_and_both_sides_count_the_same(stack, load_limits, tmp_path, scenario):
    folder, summary, _ = load(stack, tmp_path, scenario, "--rate", "5", "--duration", "2s")
    check_report(folder, summary, ["wsgistack"])
    client = summary["engines"]["wsgistack"]["client"]
    assert client["requests"] == client["offered"] == 10  # 5/s for 2 s, every one answered
    assert summary["settings"]["generator"] == "h2load (nghttp2)"


def test_both_engines_in_interleaved_rounds_and_the_stack_left_as_found(
    stack, load_limits, tmp_path
):
    app = stack.container("app")
    found = [e for e in app.attrs["Config"]["Env"] if e.startswith("WSGI_SERVER=")]
    proxy = stack.container("proxy").id
    folder, summary, output = load(
        stack, tmp_path, "mixed", "--engine", "both", "--rounds", "2", "--rate", "10",
        "--duration", "4s",
    )  # fmt: skip
    check_report(folder, summary, ["wsgistack", "gunicorn"])
    order = [
        (engine, r["round"])
        for engine in ("wsgistack", "gunicorn")
        for r in summary["engines"][engine]["rounds"]
    ]
    assert sorted(order) == [("gunicorn", 1), ("gunicorn", 2), ("wsgistack", 1), ("wsgistack", 2)]
    ratios = summary["comparison"]["wsgistack/gunicorn"]
    for key in ("throughput_rps", "latency_p50_seconds", "latency_p99_seconds"):
        assert ratios[key]["rounds"] == 2 and len(ratios[key]["per_round"]) == 2
        assert ratios[key]["min"] <= ratios[key]["median"] <= ratios[key]["max"]
    assert summary["engines"]["wsgistack"]["server"]["worker_restarts"] == 0
    assert summary["engines"]["gunicorn"]["server"]["worker_restarts"] is None  # not exported
    assert "## Verdict" in (folder / "report.md").read_text()
    app = stack.container("app")
    assert [e for e in app.attrs["Config"]["Env"] if e.startswith("WSGI_SERVER=")] == found
    assert stack.container("proxy").id == proxy and "nginx restarted" not in output
    assert wait_until(
        lambda: app.reload() or app.attrs["State"]["Health"]["Status"] == "healthy", 60, interval=1
    )
    with stack.client() as client:
        assert client.get("/").status_code == 200


# -- TARGET=: a base URL outside the stack the run is started from ----------------

OUTSIDE = "wsgistack-loadtarget"  # the compose project `make load TARGET=` runs from: never up


def load_target(stack, reports: Path, url: str, *args: str, **env: str):
    """`python -m loadtest ARGS --target URL` from a compose project of its own (OUTSIDE,
    not started), so the session stack is a second, independent stack on other ports."""
    command = [sys.executable, "-m", "loadtest", *args, "--target", url]
    command += ["--reports", str(reports), "--compose-option=-p", f"--compose-option={OUTSIDE}"]
    environment = {
        k: v
        for k, v in stack.compose_env.items()
        if k not in ("COMPOSE_PROJECT_NAME", "SSL_CERT_FILE", "SSL_CERT_DIR")
    }
    return subprocess.run(
        command,
        cwd=ROOT,
        env={**environment, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_target_outside_the_stack_gets_the_load_and_the_stack_is_left_alone(
    stack, load_limits, tmp_path
):
    prometheus = Prometheus(stack.prometheus)
    before = prometheus.wait_for_scrape(time.time())
    result = load_target(
        stack, tmp_path, stack.https, "hello", "--rate", "20", "--duration", "3s",
        SSL_CERT_FILE=str(stack.ca_file),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert f"{stack.https} answers (200)" in result.stdout
    (folder,) = tmp_path.iterdir()
    summary = json.loads((folder / "summary.json").read_text())
    settings = summary["settings"]
    assert (settings["target"], settings["target_local"]) == (stack.https, False)
    assert settings["tls_verified"] is True and "proxy_limits" not in settings
    engine = summary["engines"]["target"]
    assert engine["client"]["requests"] == engine["client"]["offered"] == 60
    assert engine["client"]["errors_total"] == 0
    assert engine["server"] is None  # no Prometheus cross-check outside the stack
    assert set(engine["containers"]) == {"loadgen"}  # Docker stats of the generator only
    assert "outside the stack: client figures only" in (folder / "report.md").read_text()
    # The load reached the session stack: its app counted the requests.
    after = prometheus.wait_for_scrape(time.time() + 0.5)
    assert prometheus.counts(before, after).by_status.get("GET 200", 0) >= 60
    # ... and the project the run started from was neither built up nor started.
    ps = subprocess.run(
        ["docker", "compose", "-p", OUTSIDE, "ps", "-a", "-q"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert ps.returncode == 0 and ps.stdout.strip() == ""


def test_a_target_that_cannot_prove_its_name_is_refused_unless_insecure(stack, tmp_path):
    # httpx trusts certifi's bundle by default (no SSL_CERT_FILE): not the test CA
    result = load_target(stack, tmp_path, stack.https, "hello", "--rate", "5", "--duration", "1s")
    assert result.returncode == 1
    assert "TLS certificate verification failed" in result.stderr
    assert "--insecure" in result.stderr
    assert not list(tmp_path.iterdir())  # refused before any load: no report
    assert target.preflight(target.parse(stack.https, insecure=True)) == 200
