"""docs/ci/: the release gate users copy. The scenario loads with its thresholds, the
recipe is valid shell, and the workflow runs the recipe and uploads what it writes.
tests/stack/integration/test_load_gate.py runs the recipe against the stack."""

from __future__ import annotations

import os
import subprocess

import yaml

from loadtest import scenario, thresholds
from tests.support import ROOT

CI = ROOT / "docs" / "ci"


def test_the_gate_scenario_loads_with_the_service_levels_it_documents():
    gate = scenario.load(str(CI / "gate.toml"))
    assert {t.key: t.expression for t in gate.thresholds if t.key != "http_req_duration"} == {
        "http_req_failed": "rate<0.01",
        "checks": "rate>0.99",
    }
    assert thresholds.p99_limit_seconds(gate.thresholds) == 0.5
    assert dict((r.name, r.expect_status) for r in gate.requests)["missing"] == (404,)


def test_the_recipe_is_valid_executable_shell():
    recipe = CI / "load-gate.sh"
    assert os.access(recipe, os.X_OK)
    assert subprocess.run(["sh", "-n", str(recipe)], capture_output=True).returncode == 0


def test_the_workflow_runs_the_recipe_and_uploads_its_reports_whatever_happened():
    workflow = yaml.safe_load((CI / "github-actions.yml").read_text())
    steps = workflow["jobs"]["load-gate"]["steps"]
    runs = [step.get("run", "") for step in steps]
    assert "make venv up" in runs and "docs/ci/load-gate.sh" in runs
    (upload,) = [step for step in steps if step.get("uses", "").startswith("actions/upload")]
    assert upload["if"] == "always()" and upload["with"]["path"] == "reports/gate/"
