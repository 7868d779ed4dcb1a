"""docs/ci/load-gate.sh — the release gate of the docs' CI example — run as a CI job
runs it, against the session stack already up: it passes on the stack as it is, and
exits 99 naming the threshold once the app is made slower at run time (the demo app's
SLOWDOWN_FILE: no rebuild, no restart). report.html lands where the job uploads it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.stack.integration.loadruns import compose_options
from tests.support import ROOT
from tests.support.browser import Browser, find_chromium

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(420)]

SLOWDOWN_MS = 300  # every request of the app waits this long: p(95)<200 cannot hold


def gate(stack, reports: Path) -> subprocess.CompletedProcess:
    """The recipe, shortened to 5 s at 10 requests/s, on the session stack's project."""
    command = ["sh", "docs/ci/load-gate.sh", "--rate", "10", "--duration", "5s"]
    command += [f"--compose-option={option}" for option in compose_options(stack)]
    return subprocess.run(
        command,
        cwd=ROOT,
        env={**stack.compose_env, "REPORTS": str(reports)},
        capture_output=True,
        text=True,
        timeout=300,
    )


def summary_of(reports: Path) -> dict:
    (folder,) = [p for p in reports.iterdir() if p.is_dir()]
    return json.loads((folder / "summary.json").read_text())


def test_the_gate_passes_on_the_stack_as_it_is(stack, load_limits, tmp_path):
    result = gate(stack, tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    outcome = summary_of(tmp_path)["thresholds"]
    assert (outcome["enforced"], outcome["passed"]) == (True, True)
    assert {c["metric"] for c in outcome["checks"]} >= {"http_req_failed", "checks"}
    assert f"report in {tmp_path}/report.html" in result.stdout
    # the real run's report, opened where the workflow uploads it from, offline
    chromium = find_chromium()
    assert chromium, "chromium is missing (requirements/host-packages.txt)"
    page_file = tmp_path / "report.html"
    with Browser.launch(tmp_path / "browser", chromium) as page:
        page.block_network()
        page.navigate(page_file.as_uri())
        assert page.problems() == [] and page.requests() == [page_file.as_uri()]
        boxes = page.evaluate(
            "Array.from(document.querySelectorAll('figure svg')).map(e => {"
            " const r = e.getBoundingClientRect(); return [r.width, r.height]; })"
        )
        assert len(boxes) >= 2 and all(w > 300 and h > 100 for w, h in boxes), boxes
        assert "PASSED" in page.evaluate("document.body.innerText")


def test_a_slower_app_fails_the_gate_with_99_naming_the_threshold(
    stack,
    load_limits,
    tmp_path,
):
    app = stack.container("app")
    slow = app.exec_run(["sh", "-c", f"echo {SLOWDOWN_MS} > /tmp/slowdown-ms"])
    assert slow.exit_code == 0, slow.output
    try:
        result = gate(stack, tmp_path)
    finally:
        app.exec_run(["rm", "-f", "/tmp/slowdown-ms"])
    assert result.returncode == 99, result.stdout[-3000:] + result.stderr[-3000:]
    assert "load: threshold failed: wsgistack http_req_duration p(95)<200:" in result.stderr
    outcome = summary_of(tmp_path)["thresholds"]
    assert outcome["passed"] is False
    failed = [c for c in outcome["checks"] if not c["passed"]]
    assert all(c["observed"] >= SLOWDOWN_MS for c in failed if c["unit"] == "ms")
    assert (tmp_path / "report.html").is_file()  # the report is kept when the gate fails
