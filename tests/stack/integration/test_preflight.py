"""`make up`'s checks against the built images: a bad `.env` is refused before
anything starts, one line naming the variable (scripts/preflight.py); a
service that still ends unhealthy has its last log lines printed
(scripts/compose-up.sh); the app container's own defaults and start."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from tests.stack.integration.compose import PROJECT, read_env_example
from tests.support import ROOT


def env_file(stack, tmp_path, **overrides: str):
    """.env.example for the test project (its images, ports and certificate),
    with ``overrides``; and an environment that does not override it."""
    values = read_env_example() | {
        "COMPOSE_PROJECT_NAME": PROJECT,
        "TLS_CERT_DIR": stack.compose_env["TLS_CERT_DIR"],
        **{
            name: stack.compose_env[name] for name in ("HTTP_PORT", "HTTPS_PORT", "PROMETHEUS_PORT")
        },
        **overrides,
    }
    path = tmp_path / ".env"
    path.write_text("".join(f"{name}={value}\n" for name, value in values.items()))
    environ = {name: value for name, value in os.environ.items() if name not in values}
    return path, environ


def preflight(stack, tmp_path, *flags: str, **overrides: str) -> subprocess.CompletedProcess:
    path, environ = env_file(stack, tmp_path, **overrides)
    return subprocess.run(
        [sys.executable, "scripts/preflight.py", "--env-file", path, "-p", PROJECT, *flags],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_good_settings_pass_with_the_stack_running_on_its_ports(stack, tmp_path):
    result = preflight(stack, tmp_path)
    assert (result.returncode, result.stderr) == (0, "")


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("WEB_CONCURRENCY", "abc", "app: --workers (env WEB_CONCURRENCY): must be an integer"),
        ("APP_MODULE", "nosuch.module:app", "No module named 'nosuch'"),
        ("LIMIT_REQUEST_BODY", "-1", "LIMIT_REQUEST_BODY must be a whole number, got '-1'"),
        ("TLS_CERT_DIR", "/nonexistent", "/nonexistent is not a folder"),
    ],
)
def test_a_bad_value_is_one_line_naming_it(stack, tmp_path, name, value, says):
    result = preflight(stack, tmp_path, **{name: value})
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"{tmp_path / '.env'}: {name}: ") and says in line, line


def test_make_devs_files_are_checked_alike(stack, tmp_path):
    """compose.dev.yaml merged in (`make dev`): compose lists the environment."""
    dev = ("-f", "docker-compose.yml", "-f", "compose.dev.yaml")
    assert preflight(stack, tmp_path, *dev).returncode == 0
    result = preflight(stack, tmp_path, *dev, WEB_CONCURRENCY="abc")
    assert result.returncode == 2
    assert result.stderr.startswith(f"{tmp_path / '.env'}: WEB_CONCURRENCY: app: --workers")


def test_a_port_taken_by_another_program_is_named(stack, tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = preflight(stack, tmp_path, HTTP_PORT=str(port))
    assert result.returncode == 2
    assert result.stderr == (
        f"{tmp_path / '.env'}: HTTP_PORT: proxy: 127.0.0.1:{port}: Address already in use\n"
    )


def test_an_unhealthy_service_prints_its_last_log_lines(stack, tmp_path):
    """The app cannot import: compose alone says only that a dependency failed."""
    ports = {name: str(int(stack.compose_env[name]) + 1) for name in ("HTTP_PORT", "HTTPS_PORT")}
    path, environ = env_file(stack, tmp_path, APP_MODULE="nosuch.module:app", **ports)
    flags = ["--env-file", str(path), "-p", f"{PROJECT}-unhealthy"]
    try:
        result = subprocess.run(
            ["bash", "scripts/compose-up.sh", *flags],
            cwd=ROOT,
            env=environ,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        subprocess.run(
            # and the images compose named after that project (same layers)
            ["docker", "compose", *flags, "down", "-v", "--remove-orphans", "--rmi", "all"],
            cwd=ROOT,
            env=environ,
            capture_output=True,
            timeout=120,
        )
    assert result.returncode != 0
    assert "compose-up: app is " in result.stderr
    assert "ModuleNotFoundError: No module named 'nosuch'" in result.stderr
    # the fatal listener stopped the exporter through supervisord's socket
    assert "for good; stopping the container" in result.stderr
    assert "fatal_listener: stopping exporter" not in result.stderr


@pytest.mark.parametrize(
    ("limits", "workers"),
    [(["--cpus", "1", "--memory", "1g"], 3), (["--cpus", "2", "--memory", "256m"], 2)],
)
def test_workers_default_from_the_containers_limits(stack, limits, workers):
    """WEB_CONCURRENCY empty: 2 x CPUs + 1, capped at 128 MiB a worker."""
    result = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", *limits, f"{PROJECT}/app:latest"]
        + ["/etc/supervisor/start.sh", "--check-config"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert f"workers: WEB_CONCURRENCY={workers}: " in result.stderr
    assert f"workers={workers}(env WEB_CONCURRENCY)" in result.stderr


def test_supervisord_starts_without_a_critical_line(stack):
    log = stack.container("app").logs().decode()
    assert " CRIT " not in log, [line for line in log.splitlines() if " CRIT " in line]
    assert "RUNNING" in stack.app_exec(
        "supervisorctl", "-c", "/etc/supervisor/supervisord.conf", "status", "server"
    )
