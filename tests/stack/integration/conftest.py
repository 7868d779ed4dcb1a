"""The compose stack, brought up once per test session and torn down after.

It runs under its own compose project (`wsgistack-test`, or IT_PROJECT) and
ports (18080/18443/19090, or IT_HTTP_PORT / IT_HTTPS_PORT / IT_PROMETHEUS_PORT)
so it never touches a stack started with `make up`; images are tagged with the
project name, so two checkouts can test side by side. nginx's certificate is
the one `make up` makes: scripts/gen-cert.sh writes a local CA and a leaf it
signs for localhost and SERVER_NAME (here two names, so the second one is
tested too) to a temporary folder passed as TLS_CERT_DIR. Tests reach it only through
nginx's published ports and Prometheus' API; what they need from inside (the
app exporter's /metrics, container state) they read with the docker SDK.

Without Docker these tests skip, except with CI=true, where they fail.
KEEP_STACK=1 leaves the stack running after the session.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from loadtest.stack import Stack as LoadStack
from tests.stack.integration.compose import (
    PROJECT,
    SERVER_NAME,
    Stack,
    read_env_example,
    run_compose,
    write_test_certificate,
)
from tests.stack.integration.loadruns import LOAD_LIMITS, compose_options, proxy_limits
from tests.support import ROOT
from tests.support.dockerhost import docker_problem, skip_without_docker

UP_TIMEOUT = 900  # seconds: a cold build of every image on a 2-core machine


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that stop or break containers (marker `disruptive`) run last."""
    items.sort(key=lambda item: item.get_closest_marker("disruptive") is not None)


@pytest.fixture(scope="session")
def stack() -> Stack:
    skip_without_docker(
        docker_problem(["docker", "info"], ["docker", "compose", "version"]), "integration"
    )

    ports = {
        "HTTP_PORT": os.environ.get("IT_HTTP_PORT", "18080"),
        "HTTPS_PORT": os.environ.get("IT_HTTPS_PORT", "18443"),
        "PROMETHEUS_PORT": os.environ.get("IT_PROMETHEUS_PORT", "19090"),
    }
    # Our own folder, not pytest's tmp_path (other pytest runs on this machine
    # prune old ones): nginx reads it for the whole session.
    tls_dir = Path(tempfile.mkdtemp(prefix=f"{PROJECT}-tls-"))
    ca_file = write_test_certificate(tls_dir, SERVER_NAME)
    env = {
        **os.environ,
        **ports,
        "BIND_ADDRESS": "127.0.0.1",
        "COMPOSE_PROJECT_NAME": PROJECT,
        "TLS_CERT_DIR": str(tls_dir),
        "SERVER_NAME": SERVER_NAME,
        # The demo app has its own readiness route (its dependency can be down):
        # the healthchecks and nginx ask it instead of the server's health path.
        "HEALTHCHECK_PATH": "/readyz",
        # A known count for the tests that count workers (.env.example leaves
        # it to the container's CPUs: test_preflight.py tests that default).
        "WEB_CONCURRENCY": "2",
    }
    subprocess.run(["bash", "scripts/wheels.sh"], cwd=ROOT, check=True, timeout=600)
    started = time.monotonic()
    # A stack left by an earlier session (KEEP_STACK=1, a crash) is removed
    # first: the tests count from a fresh one.
    run_compose(env, "down", "-v", "--remove-orphans")
    up = run_compose(
        env, "up", "-d", "--build", "--wait", "--wait-timeout", "300", timeout=UP_TIMEOUT
    )
    if up.returncode != 0:
        logs = run_compose(env, "logs", "--no-color", "--tail", "100").stdout
        status = run_compose(env, "ps", "-a").stdout
        run_compose(env, "down", "-v", "--remove-orphans")
        shutil.rmtree(tls_dir, ignore_errors=True)
        pytest.fail(f"`docker compose up` failed:\n{up.stderr[-4000:]}\n{status}\n{logs[-8000:]}")
    print(f"\nstack up in {time.monotonic() - started:.0f} s")
    yield Stack(
        https=f"https://localhost:{ports['HTTPS_PORT']}",
        http=f"http://localhost:{ports['HTTP_PORT']}",
        prometheus=f"http://127.0.0.1:{ports['PROMETHEUS_PORT']}",
        ca_file=ca_file,
        env=read_env_example() | {"WEB_CONCURRENCY": env["WEB_CONCURRENCY"]},
        compose_env=env,
    )
    if os.environ.get("KEEP_STACK") != "1":
        run_compose(env, "down", "-v", "--remove-orphans")
        shutil.rmtree(tls_dir, ignore_errors=True)


@pytest.fixture
def report(capsys):
    """Print a line to the terminal even when pytest captures output (the
    measured counts the docs quote)."""

    def emit(line: str) -> None:
        with capsys.disabled():
            print(f"\n  {line}", flush=True)

    return emit


@pytest.fixture(scope="module")
def load_limits(stack):
    """The proxy with the load test's limits for the module; .env's put back after."""
    LoadStack(compose_options(stack), env=stack.compose_env).set_proxy_limits()
    assert proxy_limits(stack) == LOAD_LIMITS
    yield
    result = stack.compose("up", "-d", "--no-deps", "--wait", "proxy", timeout=120)
    assert result.returncode == 0, result.stderr
