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
from pathlib import Path

import pytest
from PIL import Image

from loadtest.stack import Stack as LoadStack
from tests.support import ROOT, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(420)]

WSGISTACK, GUNICORN = "wsgistack", "gunicorn"
LOAD_LIMITS = {"RATE_LIMIT": "100000r/s", "RATE_LIMIT_BURST": "100000", "CONN_LIMIT": "65535"}


def compose_options(stack) -> list[str]:
    return ["--env-file", ".env.example", "-p", stack.compose_env["COMPOSE_PROJECT_NAME"]]


def proxy_limits(stack) -> dict[str, str]:
    environment = dict(
        e.partition("=")[::2] for e in stack.container("proxy").attrs["Config"]["Env"]
    )
    return {name: environment[name] for name in LOAD_LIMITS}


@pytest.fixture(scope="module")
def load_limits(stack):
    """The proxy with the load test's limits for the module; .env's put back after."""
    LoadStack(compose_options(stack), env=stack.compose_env).set_proxy_limits()
    assert proxy_limits(stack) == LOAD_LIMITS
    yield
    result = stack.compose("up", "-d", "--no-deps", "--wait", "proxy", timeout=120)
    assert result.returncode == 0, result.stderr


def load(stack, reports: Path, *args: str) -> tuple[Path, dict, str]:
    """Run `python -m loadtest ARGS` on the test stack; its report folder, summary and
    output. Every run has the load test's limits at nginx."""
    command = [sys.executable, "-m", "loadtest", *args, "--reports", str(reports)]
    command += [f"--compose-option={option}" for option in compose_options(stack)]
    result = subprocess.run(
        command, cwd=ROOT, env=stack.compose_env, capture_output=True, text=True, timeout=400
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "requests" in result.stdout  # the progress lines
    (folder,) = reports.iterdir()
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["settings"]["proxy_limits"] == LOAD_LIMITS
    return folder, summary, result.stdout


def check_report(folder: Path, summary: dict, engines: list[str]) -> None:
    """The files are there, the counts agree round by round, the plots hold the series."""
    for name in ("summary.json", "report.md", "throughput.png", "latency.png"):
        assert (folder / name).is_file(), name
    for engine in summary["settings"]["engines"]:
        for one in summary["engines"][engine]["rounds"]:
            client, server = one["client"], one["server"]
            assert client["errors_total"] == 0, client["errors"]
            assert client["requests"] > 0
            assert abs(client["requests"] - server["requests"]) <= server["count_tolerance"], (
                engine,
                one["round"],
                client["requests"],
                server,
            )
            assert (Path(one["folder"]) / "run.sh").is_file()
    labels = {"wsgistack": WSGISTACK, "gunicorn": GUNICORN}
    series = {name: plot["series"] for name, plot in summary["plots"].items()}
    assert set(series["throughput.png"]) == {labels[e] for e in engines}
    assert set(series["latency.png"]) == {
        f"{labels[e]} {p}" for e in engines for p in ("p50", "p99")
    }
    assert all(points > 0 for points in series["throughput.png"].values())
    for name in ("throughput.png", "latency.png"):
        with Image.open(folder / name) as image:
            image.verify()
            assert (image.format, image.size) == ("PNG", (1000, 450))
    assert "| requests counted by the server (Prometheus) |" in (folder / "report.md").read_text()


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
