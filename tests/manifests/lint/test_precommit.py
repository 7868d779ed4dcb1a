"""The git hooks (.pre-commit-config.yaml) work on a machine without GitHub.

Every hook is ``repo: local`` and calls a tool pinned in requirements/dev.txt
from .venv, so neither ``pre-commit run`` nor ``pre-commit install`` clones
anything; the whole tree passes them (the same checks as ``make lint``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
CONFIG = ROOT / ".pre-commit-config.yaml"
PRE_COMMIT = Path(sys.executable).parent / "pre-commit"


def _config() -> dict:
    return yaml.safe_load(CONFIG.read_text())


def _pre_commit(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PRE_COMMIT_HOME": str(home)}
    env.pop("SKIP", None)  # pre-commit's list of hooks to skip: run them all
    return subprocess.run(
        [str(PRE_COMMIT), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=100,
    )


def test_every_repo_is_local():
    repos = _config()["repos"]
    assert repos
    assert [repo["repo"] for repo in repos] == ["local"] * len(repos)


def test_every_hook_runs_a_tool_of_the_venv():
    hooks = [hook for repo in _config()["repos"] for hook in repo["hooks"]]
    assert {hook["id"] for hook in hooks} >= {"ruff-check", "ruff-format", "mypy", "hadolint"}
    for hook in hooks:
        assert hook["language"] in ("unsupported", "system"), hook["id"]
        program = hook["entry"].split()[0]
        assert program.startswith(".venv/bin/"), hook["id"]
        assert (ROOT / program).is_file(), f"{hook['id']}: {program} missing (make venv)"


def test_config_is_valid(tmp_path):
    result = _pre_commit("validate-config", str(CONFIG), home=tmp_path / "home")
    assert result.returncode == 0, result.stdout + result.stderr


def test_all_files_pass_offline(tmp_path):
    # --all-files checks the tracked files as they are in the working tree (no
    # stash of unstaged changes); PRE_COMMIT_HOME keeps pre-commit's cache out of ~.
    result = _pre_commit(
        "run",
        "--all-files",
        "--color",
        "never",
        "--config",
        str(CONFIG),
        home=tmp_path / "home",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Passed" in result.stdout
