"""The stack on a single-node Docker Swarm, deployed once per test session.

`scripts/swarm.py deploy` (what `make deploy-swarm` runs) deploys it as the
stack `wsgistack-swarm-test` (or IT_SWARM_STACK) with the settings of
.env.example, the proxy on ports 28080/28443 and Prometheus on 29090 (or
IT_SWARM_HTTP_PORT / IT_SWARM_HTTPS_PORT / IT_SWARM_PROMETHEUS_PORT). When this
engine is not in a swarm, the fixture makes a single-node one and leaves it
at the end; a swarm that was already there stays. Tests reach the stack
through the proxy's published ports and change it with `docker service`.

`Load` is the steady, bounded GET traffic the scale and update tests run under.

Without Docker these tests skip, except with CI=true, where they fail.
"""

from __future__ import annotations

import collections
import importlib.util
import json
import os
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
STACK = os.environ.get("IT_SWARM_STACK", "wsgistack-swarm-test")
DEPLOY_TIMEOUT = 600  # seconds: builds the images when the compose tests haven't

_spec = importlib.util.spec_from_file_location("wsgistack_swarm", ROOT / "scripts" / "swarm.py")
swarm = importlib.util.module_from_spec(_spec)
sys.modules["wsgistack_swarm"] = swarm
_spec.loader.exec_module(swarm)


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def docker(*args: str, timeout: float = 120) -> str:
    """Run a docker CLI command; its stdout (fails the test on a non-zero exit)."""
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"docker {' '.join(args)}: {result.stderr.strip()}"
    return result.stdout


def _swarm_state() -> str | None:
    """The engine's swarm state ("active", "inactive", ...), None if Docker doesn't answer."""
    try:
        result = subprocess.run(
            ["docker", "info", "--format", "{{.Swarm.LocalNodeState}}"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


@dataclass
class SwarmStack:
    """What the tests need to reach and change the deployed stack."""

    name: str
    https: str
    ca_file: Path

    def service(self, service: str) -> str:
        return f"{self.name}_{service}"

    def inspect(self, service: str) -> dict:
        return json.loads(docker("service", "inspect", self.service(service)))[0]

    def running_tasks(self, service: str) -> list[dict]:
        """Tasks of ``service`` that should run and do (healthy, when it has a check)."""
        ids = docker(
            "service", "ps", "--quiet", "--filter", "desired-state=running", self.service(service)
        ).split()
        tasks = json.loads(docker("inspect", *ids)) if ids else []
        return [task for task in tasks if task["Status"]["State"] == "running"]

    def hostnames(self, service: str) -> set[str]:
        """The hostnames of the running tasks' containers (Docker's default:
        the container id's first 12 digits), which /api/echo reports."""
        return {
            task["Status"]["ContainerStatus"]["ContainerID"][:12]
            for task in self.running_tasks(service)
        }

    def containers(self, service: str) -> int:
        """Containers of ``service`` that exist, including ones still stopping."""
        return len(
            docker(
                "ps",
                "--quiet",
                "--filter",
                f"label=com.docker.swarm.service.name={self.service(service)}",
            ).split()
        )

    def docker(self, *args: str, timeout: float = 120) -> str:
        return docker(*args, timeout=timeout)

    def load(self) -> Load:
        """Steady, bounded GET load through the proxy: ``with stack.load() as load:``."""
        return Load(self)

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.https, verify=self.ssl_context(), timeout=10)

    def wait(self, timeout: float, until, what: str) -> None:
        """Poll ``until()`` every second for at most ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if until():
                return
            time.sleep(1)
        pytest.fail(f"{what}: not within {timeout:.0f} s")


@dataclass
class Load:
    """Steady GET /api/echo traffic through the proxy from ``clients`` keep-alive
    clients, each pausing ``pause`` seconds between requests; bounded by
    ``max_seconds`` and ``max_requests`` whatever happens. Counts every request
    sent and every one that failed (an exception or a status other than 200),
    and which replica (hostname) answered when."""

    stack: SwarmStack
    clients: int = 4
    pause: float = 0.02
    max_seconds: float = 240
    max_requests: int = 40_000
    sent: int = 0
    failed: int = 0
    failures: list[str] = field(default_factory=list)
    answers: list[tuple[float, str]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Load:
        deadline = time.monotonic() + self.max_seconds
        for _ in range(self.clients):
            thread = threading.Thread(target=self._run, args=(deadline,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _run(self, deadline: float) -> None:
        with self.stack.client() as client:
            while not self._stop.is_set() and time.monotonic() < deadline:
                with self._lock:
                    if self.sent >= self.max_requests:
                        return
                    self.sent += 1
                try:
                    response = client.get("/api/echo")
                    ok = response.status_code == 200
                    problem = f"{response.status_code} {response.text[:100]}"
                    hostname = response.json()["hostname"] if ok else ""
                except (httpx.HTTPError, ValueError) as exc:
                    ok, problem, hostname = False, repr(exc), ""
                with self._lock:
                    if ok:
                        self.answers.append((time.monotonic(), hostname))
                    else:
                        self.failed += 1
                        if len(self.failures) < 5:
                            self.failures.append(problem)
                time.sleep(self.pause)

    def hostnames_since(self, moment: float) -> collections.Counter:
        """How many answers each replica gave after ``moment`` (time.monotonic())."""
        with self._lock:
            return collections.Counter(host for at, host in self.answers if at >= moment)

    def report(self, what: str) -> str:
        return f"{what}: {self.sent} GETs sent, {self.failed} failed {self.failures or ''}".strip()


@pytest.fixture(scope="session")
def swarm_stack() -> SwarmStack:
    state = _swarm_state()
    if state is None:
        message = "Docker is not usable; run `make bootstrap`"
        if _in_ci():
            pytest.fail(f"CI=true: swarm tests must run, but {message}")
        pytest.skip(message)
    initialised = False
    had_gwbridge = bool(docker("network", "ls", "--quiet", "--filter", "name=^docker_gwbridge$"))
    if state != "active":
        # A single node: its own address is all it advertises.
        docker("swarm", "init", "--advertise-addr", "127.0.0.1", "--listen-addr", "127.0.0.1:2377")
        initialised = True
    env = {
        **os.environ,
        "HTTP_PORT": os.environ.get("IT_SWARM_HTTP_PORT", "28080"),
        "HTTPS_PORT": os.environ.get("IT_SWARM_HTTPS_PORT", "28443"),
        "PROMETHEUS_PORT": os.environ.get("IT_SWARM_PROMETHEUS_PORT", "29090"),
        "APP_REPLICAS": "3",
        "TLS_CERT_DIR": "./nginx/certs",
    }
    subprocess.run(["bash", "scripts/wheels.sh"], cwd=ROOT, check=True, timeout=600)
    subprocess.run(["bash", "scripts/gen-cert.sh"], cwd=ROOT, check=True, timeout=60)
    command = [sys.executable, "scripts/swarm.py"]
    started = time.monotonic()
    try:
        deployed = subprocess.run(
            [*command, "deploy", "--env-file", ".env.example", STACK],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=DEPLOY_TIMEOUT,
        )
        if deployed.returncode != 0:
            pytest.fail(f"swarm deploy failed:\n{deployed.stderr[-4000:]}")
        print(f"\nswarm stack deployed in {time.monotonic() - started:.0f} s")
        yield SwarmStack(
            name=STACK,
            https=f"https://localhost:{env['HTTPS_PORT']}",
            ca_file=ROOT / "nginx" / "certs" / "fullchain.pem",
        )
    finally:
        if os.environ.get("KEEP_STACK") != "1":
            subprocess.run(
                [*command, "undeploy", "--volumes", STACK], cwd=ROOT, timeout=300, check=False
            )
            # The image tags deploy and the tests made (by id, v2, broken); :latest stays.
            images = docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}").split()
            ours = [i for i in images if i.startswith(f"{STACK}/") and not i.endswith(":latest")]
            if ours:
                subprocess.run(["docker", "image", "rm", *ours], capture_output=True, check=False)
            if initialised:
                docker("swarm", "leave", "--force")
                if not had_gwbridge:  # the bridge `swarm init` made for the tasks
                    subprocess.run(["docker", "network", "rm", "docker_gwbridge"], check=False)
