"""Whether this machine's Docker answers, for the stack tests' session fixtures
(tests/stack): without it they skip, except in CI, where they fail; and the
docker CLI for the tests."""

from __future__ import annotations

import subprocess

import pytest

from tests.support import in_ci


def docker_problem(*commands: list[str]) -> str | None:
    """None if each command (``docker info`` by default) exits 0 within 30 s,
    else what failed."""
    for command in commands or (["docker", "info"],):
        try:
            result = subprocess.run(command, capture_output=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"`{' '.join(command)}` failed: {exc}"
        if result.returncode != 0:
            return f"`{' '.join(command)}` failed: {result.stderr.decode().strip()[:200]}"
    return None


def skip_without_docker(problem: str | None, suite: str) -> None:
    """Skip the test when Docker is not usable (``problem``, from docker_problem);
    with CI=true fail it instead: the ``suite`` tests must run there."""
    if problem is None:
        return
    message = f"Docker is not usable ({problem}); run `make bootstrap`"
    if in_ci():
        pytest.fail(f"CI=true: {suite} tests must run, but {message}")
    pytest.skip(message)


def docker(*args: str, timeout: float = 120) -> str:
    """Run ``docker ARGS`` (within ``timeout`` seconds); its stdout. Fails the
    test on a non-zero exit, with the end of its stderr."""
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"docker {' '.join(args)}:\n{result.stderr.strip()[-3000:]}"
    return result.stdout
