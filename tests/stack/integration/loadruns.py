"""`python -m loadtest` runs against the session stack, shared by the load tests
(test_load.py, test_load_gate.py, test_load_stages.py): the compose options that name
the stack, nginx's limits for a run, a run and the checks every report must pass. The
fixture `load_limits` (conftest.py) gives the proxy the load test's limits for a module."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from PIL import Image

from tests.support import ROOT

WSGISTACK, GUNICORN = "wsgistack", "gunicorn"
LOAD_LIMITS = {"RATE_LIMIT": "100000r/s", "RATE_LIMIT_BURST": "100000", "CONN_LIMIT": "65535"}


def compose_options(stack) -> list[str]:
    return ["--env-file", ".env.example", "-p", stack.compose_env["COMPOSE_PROJECT_NAME"]]


def proxy_limits(stack) -> dict[str, str]:
    environment = dict(
        e.partition("=")[::2] for e in stack.container("proxy").attrs["Config"]["Env"]
    )
    return {name: environment[name] for name in LOAD_LIMITS}


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
