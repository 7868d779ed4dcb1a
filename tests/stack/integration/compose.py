"""The compose stack the integration tests run against: its project and
``docker compose`` command line, ``Stack`` (what the tests need to reach it),
and nginx's certificate (scripts/gen-cert.sh's). The conftest's ``stack`` fixture brings it up.
"""

from __future__ import annotations

import os
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

import docker
import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support import ROOT
from tests.support.rawhttp import IDLE_TIMEOUT, exchange_tls

PROJECT = os.environ.get("IT_PROJECT", "wsgistack-test")  # compose project (and image prefix)
COMPOSE = ["docker", "compose", "--env-file", ".env.example", "-p", PROJECT]
# The names the stack answers (nginx's SERVER_NAME) and its certificate covers.
SERVER_NAME = "localhost wsgistack.test"


def read_env_example() -> dict[str, str]:
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


@dataclass
class Stack:
    """What the tests need to reach the running stack."""

    https: str
    http: str
    prometheus: str
    ca_file: Path
    env: dict[str, str]
    compose_env: dict[str, str]

    def compose(self, *args: str, timeout: float = 300, **overrides: str):
        """Run `docker compose` on the test project, with env overrides."""
        return run_compose({**self.compose_env, **overrides}, *args, timeout=timeout)

    @property
    def https_port(self) -> int:
        return int(self.https.rsplit(":", 1)[1])

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def exchange(self, payload: bytes, idle_timeout: float = IDLE_TIMEOUT) -> tuple[bytes, bool]:
        """``payload`` byte for byte to nginx on a new TLS connection: (what came
        back, whether nginx closed it) (tests.support.rawhttp.exchange)."""
        return exchange_tls(self.https_port, self.ssl_context(), payload, idle_timeout)

    def client(self, **kwargs) -> httpx.Client:
        """An HTTPS client that verifies nginx's certificate against our CA."""
        return httpx.Client(base_url=self.https, verify=self.ssl_context(), timeout=30, **kwargs)

    def container(self, service: str):
        found = self.containers(service, all=True)
        assert found, f"no container for service {service}"
        return found[0]

    def containers(self, service: str | None = None, all: bool = False) -> list:
        """The project's containers (of one service), oldest first; running ones
        unless ``all``."""
        labels = [f"com.docker.compose.project={PROJECT}"]
        if service is not None:
            labels.append(f"com.docker.compose.service={service}")
        found = docker.from_env().containers.list(all=all, filters={"label": labels})
        return sorted(found, key=lambda c: c.attrs["Created"])

    def app_exec(self, *command: str) -> str:
        """Run a command in the app container; returns its stdout (fails on non-zero)."""
        result = self.container("app").exec_run(list(command), demux=True)
        stdout, stderr = result.output
        assert result.exit_code == 0, (stderr or b"").decode()
        return (stdout or b"").decode()

    def exporter_samples(self) -> list:
        """Every sample the app's exporter serves now (read inside the app network)."""
        text = self.app_exec(
            "python",
            "-c",
            "import sys, urllib.request; "
            "sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:9100/metrics').read().decode())",
        )
        return [s for family in text_string_to_metric_families(text) for s in family.samples]

    def request_count(self, method: str, status: int) -> float:
        """http_server_request_duration_seconds_count for one method and status."""
        return sum(
            s.value
            for s in self.exporter_samples()
            if s.name == "http_server_request_duration_seconds_count"
            and s.labels.get("http_request_method") == method
            and s.labels.get("http_response_status_code") == str(status)
        )


def write_test_certificate(folder: Path, server_name: str) -> Path:
    """Write nginx's certificate to ``folder`` with scripts/gen-cert.sh, the
    script `make up` runs (a local CA, and a leaf it signs for localhost, the
    loopback addresses and ``server_name``'s names), and return the CA's path.
    The folder becomes readable by the proxy's unprivileged user."""
    subprocess.run(
        ["bash", "scripts/gen-cert.sh", str(folder)],
        cwd=ROOT,
        env={**os.environ, "SERVER_NAME": server_name},
        check=True,
        capture_output=True,
        timeout=60,
    )
    folder.chmod(0o755)
    return folder / "ca.pem"


def run_compose(
    env: dict[str, str], *args: str, timeout: float = 300
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*COMPOSE, *args], cwd=ROOT, env=env, timeout=timeout, capture_output=True, text=True
    )
