"""The stack on a single-node Docker Swarm, deployed once per test session.

`deploy/swarm/swarm.py deploy` (what `make deploy-swarm` runs) deploys it as the
stack `wsgistack-swarm-test` (or IT_SWARM_STACK) with the settings of
.env.example, the proxy on ports 28080/28443 and Prometheus on 29090 (or
IT_SWARM_HTTP_PORT / IT_SWARM_HTTPS_PORT / IT_SWARM_PROMETHEUS_PORT), and
nginx's per-client rate limits raised: every request here comes from one
address, so the tests measure the stack, not the limiter. When this engine is
not in a swarm, the fixture makes a single-node one and leaves it at the end;
a swarm that was already there stays. Tests reach the stack through the
proxy's published ports and change it with `docker service`.

These tests run in a pytest session of their own, after the compose tests
(`make test` runs two sessions): `docker swarm init` or `leave` while compose
stacks run has broken Docker's embedded DNS for those stacks on Debian's
docker.io, so the fixture refuses to make a swarm in a session that also runs
the compose stack.

`Load` is the steady, bounded GET traffic the scale and update tests run under.

Without Docker these tests skip, except with CI=true, where they fail.
"""

from __future__ import annotations

import collections
import contextlib
import datetime
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.support import ROOT, load_script, wait_until
from tests.support.dockerhost import docker, docker_problem, skip_without_docker

STACK = os.environ.get("IT_SWARM_STACK", "wsgistack-swarm-test")
DEPLOY_TIMEOUT = 600  # seconds: builds the images when the compose tests haven't
# nginx's per-client limits for the test stack: the load comes from one address.
APP_SETTING = ("SHOP_CURRENCY", "EUR")  # in APP_ENV_FILE
APP_SECRET = ("api_token", "s3cret-t0ken")  # a file of APP_SECRETS_DIR
UNLIMITED = {"RATE_LIMIT": "100000r/s", "RATE_LIMIT_BURST": "100000", "CONN_LIMIT": "10000"}
# What upstreams.sh logs when it writes nginx's upstream: `upstreams: NAME -> A:P B:P ...`.
UPSTREAM_LINE = re.compile(r"^(\S+) upstreams: \S+ -> (.*)$")

swarm = load_script("deploy/swarm/swarm.py", "wsgistack_swarm")


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


def _epoch(timestamp: str) -> float:
    """Seconds since the epoch of an RFC 3339 timestamp with nanoseconds (Docker's)."""
    whole, _, fraction = timestamp.rstrip("Z").partition(".")
    moment = datetime.datetime.fromisoformat(whole).replace(tzinfo=datetime.UTC)
    return moment.timestamp() + float(f"0.{fraction or 0}")


@dataclass
class SwarmStack:
    """What the tests need to reach and change the deployed stack."""

    name: str
    https: str
    prometheus: str
    ca_file: Path
    limits: dict[str, str]  # nginx's per-client limits the stack runs with

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

    def addresses(self, service: str) -> dict[str, str]:
        """{container id: its address on the backend network} of the running tasks."""
        network = f"{self.name}_backend"
        return {
            task["Status"]["ContainerStatus"]["ContainerID"]: attachment["Addresses"][0].split("/")[
                0
            ]
            for task in self.running_tasks(service)
            for attachment in task["NetworksAttachments"]
            if attachment["Network"]["Spec"]["Name"] == network
        }

    def task_exec(self, service: str, *command: str) -> str:
        """Run ``command`` in the container of a running task of ``service``; its stdout."""
        task = self.running_tasks(service)[0]
        return docker("exec", task["Status"]["ContainerStatus"]["ContainerID"], *command)

    def proxy_exec(self, *command: str) -> str:
        """Run ``command`` in the proxy's container; its stdout."""
        (task,) = self.running_tasks("proxy")
        return docker("exec", task["Status"]["ContainerStatus"]["ContainerID"], *command)

    def upstream_changes(self, since: float) -> list[tuple[float, set[str]]]:
        """Each upstream nginx was given since ``since`` (seconds since the epoch):
        (when, {address}), from upstreams.sh's lines in the proxy's log."""
        (task,) = self.running_tasks("proxy")
        result = subprocess.run(
            ["docker", "logs", "--timestamps", "--since", f"{since:.3f}",
             task["Status"]["ContainerStatus"]["ContainerID"]],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        changes = []
        for line in (result.stdout + result.stderr).splitlines():
            match = UPSTREAM_LINE.match(line)
            if match:
                replicas = {word.rsplit(":", 1)[0] for word in match[2].split() if ":" in word}
                changes.append((_epoch(match[1]), replicas))
        return sorted(changes, key=lambda change: change[0])

    @contextlib.contextmanager
    def stop_signals(self, service: str) -> Iterator[dict[str, float]]:
        """``with stack.stop_signals("app") as signals:`` fills ``signals`` with
        {container id: when (seconds since the epoch) Docker sent it its stop
        signal} for the containers of ``service`` stopped inside the block.
        Read live (`docker events`): the engine keeps only its last 256
        events, which healthchecks fill within a minute."""
        signals: dict[str, float] = {}
        events = subprocess.Popen(
            ["docker", "events", "--format", "{{json .}}",
             "--filter", "type=container", "--filter", "event=kill",
             "--filter", f"label=com.docker.swarm.service.name={self.service(service)}"],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            time.sleep(1)  # subscribed before the block acts
            yield signals
        finally:
            time.sleep(1)
            events.terminate()
            output, _ = events.communicate(timeout=30)
            for line in output.splitlines():
                event = json.loads(line)
                signals.setdefault(event["Actor"]["ID"], event["timeNano"] / 1e9)

    def drain_margins(
        self, addresses: dict[str, str], signals: dict[str, float], since: float
    ) -> dict[str, float | None]:
        """For each container of ``addresses`` ({container id: address}) with a
        stop signal in ``signals`` (stop_signals()), sent after ``since``: how
        many seconds before it nginx's upstream stopped listing its address
        (negative: after it; None: never)."""
        changes = self.upstream_changes(since)
        margins = {}
        for container, signalled in signals.items():
            address = addresses.get(container)
            if address is None:
                continue
            before = [(at, replicas) for at, replicas in changes if at <= signalled]
            after = [(at, replicas) for at, replicas in changes if at > signalled]
            if before and address not in before[-1][1]:
                # Dropped before the signal: at the first change after it was last listed.
                listed = [i for i, (_, replicas) in enumerate(before) if address in replicas]
                dropped = before[listed[-1] + 1][0] if listed else before[0][0]
                margins[address] = signalled - dropped
            else:
                dropped = next((at for at, replicas in after if address not in replicas), None)
                margins[address] = None if dropped is None else signalled - dropped
        return margins

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
        if not wait_until(until, timeout, interval=1):
            pytest.fail(f"{what}: not within {timeout:.0f} s")


@dataclass
class Load:
    """Steady GET /api/echo traffic through the proxy from ``clients`` keep-alive
    clients, each pausing ``pause`` seconds between requests; bounded by
    ``max_seconds`` and ``max_requests`` whatever happens. Counts every request
    sent and every one that failed (an exception or a status other than 200),
    and which replica (hostname) answered when.

    A GET whose keep-alive connection closed before any byte of a response is
    sent once more on a new connection, as curl and browsers do (RFC 9112
    §9.3.1: idempotent requests may be retried), and counted in ``retried``:
    nginx closes its idle client connections when it reloads, which
    upstreams.sh makes it do whenever the replicas change, and a request may
    cross that close on the wire."""

    stack: SwarmStack
    clients: int = 4
    pause: float = 0.02
    max_seconds: float = 240
    max_requests: int = 40_000
    sent: int = 0
    failed: int = 0
    retried: int = 0
    failures: list[str] = field(default_factory=list)
    statuses: collections.Counter = field(default_factory=collections.Counter)
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
                status: int | str = ""
                for attempt in (1, 2):
                    try:
                        response = client.get("/api/echo")
                        status = response.status_code
                        ok = status == 200
                        problem = f"{status} {response.text[:100]}"
                        hostname = response.json()["hostname"] if ok else ""
                    except (httpx.HTTPError, ValueError) as exc:
                        closed = "without sending a response" in str(exc)
                        if attempt == 1 and isinstance(exc, httpx.RemoteProtocolError) and closed:
                            with self._lock:
                                self.retried += 1
                            continue
                        ok, problem, hostname, status = False, repr(exc), "", type(exc).__name__
                    break
                with self._lock:
                    self.statuses[status] += 1
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

    def __repr__(self) -> str:
        return self.report("Load")

    def report(self, what: str) -> str:
        statuses = ", ".join(f"{s}: {n}" for s, n in sorted(self.statuses.items(), key=str))
        failures = self.failures or ""
        return (
            f"{what}: {self.sent} GETs sent, {self.failed} failed ({statuses}; "
            f"{self.retried} sent again after nginx closed an idle connection) {failures}"
        ).strip()


def _runs_compose_tests(session: pytest.Session) -> bool:
    """Whether this session also runs the compose stack's tests (tests/stack/integration)."""
    compose_tests = ROOT / "tests" / "stack" / "integration"
    return any(compose_tests in Path(item.path).parents for item in session.items)


@pytest.fixture(scope="session")
def swarm_stack(request) -> SwarmStack:
    state = _swarm_state()
    if state is None:
        skip_without_docker(docker_problem() or "`docker info` gave no swarm state", "swarm")
    initialised = False
    had_gwbridge = bool(docker("network", "ls", "--quiet", "--filter", "name=^docker_gwbridge$"))
    if state != "active" and _runs_compose_tests(request.session):
        pytest.fail(
            "run tests/stack/swarm in a pytest session of its own, after the compose tests "
            "(`make test` does): `docker swarm init` while compose stacks run breaks "
            "Docker's DNS for them"
        )
    if state != "active":
        # A single node: its own address is all it advertises.
        docker("swarm", "init", "--advertise-addr", "127.0.0.1", "--listen-addr", "127.0.0.1:2377")
        initialised = True
    # The app's own settings and a secret file, as a user's project passes them.
    app_files = Path(tempfile.mkdtemp(prefix=f"{STACK}-app-"))
    (app_files / "app.env").write_text(f"{APP_SETTING[0]}={APP_SETTING[1]}\n")
    (app_files / "secrets").mkdir()
    (app_files / "secrets" / APP_SECRET[0]).write_text(APP_SECRET[1])
    env = {
        **os.environ,
        "APP_ENV_FILE": str(app_files / "app.env"),
        "APP_SECRETS_DIR": str(app_files / "secrets"),
        "HTTP_PORT": os.environ.get("IT_SWARM_HTTP_PORT", "28080"),
        "HTTPS_PORT": os.environ.get("IT_SWARM_HTTPS_PORT", "28443"),
        "PROMETHEUS_PORT": os.environ.get("IT_SWARM_PROMETHEUS_PORT", "29090"),
        "SWARM_APP_REPLICAS": "3",
        # 2 workers a replica, as before .env.example left the count to the CPUs:
        # three replicas of the CPU-sized default are more than one test machine needs
        "WEB_CONCURRENCY": "2",
        "TLS_CERT_DIR": "./nginx/certs",
        **UNLIMITED,
    }
    subprocess.run(["bash", "scripts/wheels.sh"], cwd=ROOT, check=True, timeout=600)
    subprocess.run(["bash", "scripts/gen-cert.sh"], cwd=ROOT, check=True, timeout=60)
    command = [sys.executable, "deploy/swarm/swarm.py"]
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
            prometheus=f"http://127.0.0.1:{env['PROMETHEUS_PORT']}",
            ca_file=ROOT / "nginx" / "certs" / "ca.pem",
            limits=UNLIMITED,
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
            shutil.rmtree(app_files, ignore_errors=True)
            if initialised:
                docker("swarm", "leave", "--force")
                if not had_gwbridge:  # the bridge `swarm init` made for the tasks
                    subprocess.run(["docker", "network", "rm", "docker_gwbridge"], check=False)
