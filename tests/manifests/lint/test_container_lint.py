"""The container definitions pass their linters, and the build context holds
only what the images need. No Docker needed: hadolint and compose-lint read the
files, the docker SDK applies .dockerignore the way the engine does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from docker.utils.build import exclude_paths

from tests.support import ROOT

BIN = Path(sys.executable).parent
DOCKERFILES = sorted(
    str(path.relative_to(ROOT))
    for path in [
        ROOT / "Dockerfile",
        *ROOT.glob("*/Dockerfile"),
        *ROOT.glob("*/*/Dockerfile"),
        *ROOT.glob("*/*.Dockerfile"),
    ]
    if path.is_file()
)


def test_every_dockerfile_is_linted():
    assert set(DOCKERFILES) >= {
        "Dockerfile",
        "nginx/Dockerfile",
        "monitoring/mtail/Dockerfile",
        "monitoring/nginx-exporter/Dockerfile",
        "monitoring/prometheus/Dockerfile",
    }


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_hadolint_finds_nothing_with_the_healthcheck_rule_on(dockerfile):
    # DL3057 (HEALTHCHECK missing) is off by default; --warning DL3057 turns it
    # on. Remaining exceptions are `# hadolint ignore=` lines, each explained
    # in the Dockerfile. The failure threshold is hadolint's default: info.
    result = subprocess.run(
        [BIN / "hadolint", "--no-color", "--warning", "DL3057", dockerfile],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_hadolint_would_report_a_missing_healthcheck(tmp_path):
    """The rule is really on: a Dockerfile without HEALTHCHECK fails."""
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM debian:bookworm-slim\nUSER 10001:10001\n")
    result = subprocess.run(
        [BIN / "hadolint", "--no-color", "--warning", "DL3057", str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "DL3057" in result.stdout


def test_compose_lint_finds_nothing_at_medium_or_above():
    # Rules switched off in .compose-lint.yml carry their reason there.
    result = subprocess.run(
        [
            BIN / "compose-lint",
            "check",
            "--no-env",
            "--quiet",
            "--fail-on",
            "medium",
            "docker-compose.yml",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 issues" in result.stdout


def test_build_context_is_small_and_holds_no_secret():
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    # The engine always sends .dockerignore and the Dockerfile.
    files = [
        path
        for path in exclude_paths(str(ROOT), patterns, dockerfile="Dockerfile")
        if (ROOT / path).is_file() and path != ".dockerignore"
    ]
    tops = {path.split("/", 1)[0] for path in files}
    assert tops <= {
        "Dockerfile",
        "requirements",
        "server",
        "app",
        "deploy",
        "nginx",
        "monitoring",
        "certbot",
    }
    secrets = [
        path
        for path in files
        if path.endswith((".pem", ".key", ".env")) and not path.endswith("ffdhe2048.pem")
    ]
    assert not secrets, f"certificates, keys or .env in the build context: {secrets}"
    assert not [path for path in files if "__pycache__" in path or path.endswith(".pyc")]
    wheels = sum((ROOT / p).stat().st_size for p in files if p.startswith("requirements/wheels/"))
    own = sum((ROOT / p).stat().st_size for p in files) - wheels
    assert own < 2 * 1024 * 1024, f"{own} bytes of context besides the wheelhouse"
