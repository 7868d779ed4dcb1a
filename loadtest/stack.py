"""The compose stack under test, and the generator container beside it.

Everything goes through ``docker compose`` with the stack's file plus
loadtest/compose.yaml (the ``loadgen`` service, and the load test's per-client
limits for the proxy), so project name, ports and settings come from the same
place as for ``make up`` (.env, or --env-file and --project-name); the docker
SDK reads container state and resource usage.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import docker
import requests

ROOT = Path(__file__).resolve().parent.parent
FILES = ["-f", "docker-compose.yml", "-f", "loadtest/compose.yaml"]
SERVICES = ("app", "proxy", "nginx-exporter", "prometheus")
ENGINES = {"wsgistack": "wsgistack", "gunicorn": "gunicorn"}  # ENGINE= name -> WSGI_SERVER value
UP_TIMEOUT = 900  # seconds: a cold build of every image on a 2-core machine
SWITCH_TIMEOUT = 120  # seconds for the app to come back healthy on the other engine
READY_TIMEOUT = 30  # seconds for nginx to answer through to the app after a switch
# nginx's per-client flood limits (.env; nginx/templates/limits.conf.template), which
# loadtest/compose.yaml sets from LOAD_RATE_LIMIT, LOAD_RATE_LIMIT_BURST, LOAD_CONN_LIMIT.
LIMITS = ("RATE_LIMIT", "RATE_LIMIT_BURST", "CONN_LIMIT")


class StackError(RuntimeError):
    """A compose or Docker step failed; the message says which and why."""


class Stack:
    """The running stack of one compose project.

    ``compose_options`` are extra global options for ``docker compose`` (e.g.
    ``["--env-file", ".env.example", "-p", "myproject"]``); ``env`` is the
    environment compose runs in (defaults to this process's).
    """

    def __init__(self, compose_options: list[str] | None = None, env: dict | None = None) -> None:
        self.options = list(compose_options or [])
        self.env = dict(os.environ if env is None else env)
        self.docker = docker.from_env()
        config = json.loads(self.compose("--profile", "load", "config", "--format", "json").stdout)
        self.project: str = config["name"]

    def compose(
        self, *args: str, timeout: float = 300, check: bool = True, **env: str
    ) -> subprocess.CompletedProcess:
        """Run ``docker compose`` on this project; raises StackError when it fails."""
        command = ["docker", "compose", *FILES, *self.options, *args]
        result = subprocess.run(
            command,
            cwd=ROOT,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise StackError(f"`docker compose {' '.join(args)}` failed: {result.stderr[-2000:]}")
        return result

    def container(self, service: str):
        """The container of ``service`` in this project (None if there is none)."""
        found = self.docker.containers.list(
            all=True,
            filters={
                "label": [
                    f"com.docker.compose.project={self.project}",
                    f"com.docker.compose.service={service}",
                    "com.docker.compose.oneoff=False",
                ]
            },
        )
        return found[0] if found else None

    def is_healthy(self) -> bool:
        """True when every service of the stack runs and reports healthy."""
        for service in SERVICES:
            container = self.container(service)
            if container is None or container.status != "running":
                return False
            if container.attrs["State"].get("Health", {}).get("Status") != "healthy":
                return False
        return True

    def ensure_up(self) -> bool:
        """Use the running stack, or build and start it; True if it was started here."""
        if self.is_healthy():
            return False
        self.compose("up", "-d", "--build", "--wait", timeout=UP_TIMEOUT)
        return True

    def build_generator(self) -> None:
        """Build the loadgen image (Debian's wrk and nghttp2-client; cached after the first)."""
        self.compose("--profile", "load", "build", "loadgen", timeout=UP_TIMEOUT)

    def environment(self, service: str) -> dict[str, str]:
        """The environment of ``service``'s container; raises StackError if it has none."""
        container = self.container(service)
        if container is None:
            raise StackError(f"the stack has no {service} container")
        return dict(item.partition("=")[::2] for item in container.attrs["Config"]["Env"])

    def wsgi_server(self) -> str:
        """WSGI_SERVER of the running app container (wsgistack or gunicorn)."""
        return self.environment("app").get("WSGI_SERVER", "wsgistack")

    def proxy_limits(self) -> dict[str, str]:
        """The running proxy's per-client limits, e.g. {"RATE_LIMIT": "200r/s",
        "RATE_LIMIT_BURST": "400", "CONN_LIMIT": "128"} (missing ones left out)."""
        environment = self.environment("proxy")
        return {name: environment[name] for name in LIMITS if name in environment}

    def set_proxy_limits(self, limits: dict[str, str] | None = None) -> bool:
        """Give the proxy ``limits`` (None: the load test's, LOAD_* in loadtest/compose.yaml).

        Compose recreates the proxy only when they differ from its own; then this waits
        until it is healthy and nginx answers through to the app. True if it was
        recreated. Raises StackError when the proxy does not come back healthy, naming
        its limits and the error it logged (nginx's, or its entrypoint's one line).
        """
        running = self.container("proxy")
        overrides = {f"LOAD_{name}": value for name, value in (limits or {}).items()}
        try:
            self.compose(
                "up", "-d", "--wait", "--no-deps", "proxy", timeout=SWITCH_TIMEOUT, **overrides
            )
        except StackError:
            settings = " ".join(f"{name}={value}" for name, value in self.proxy_limits().items())
            raise StackError(
                f"the proxy did not start with {settings}: {self._last_error('proxy')}"
            ) from None
        recreated = running is None or self.container("proxy").id != running.id
        if recreated:
            self._wait_for_nginx("the proxy restarted")
        return recreated

    def switch(self, wsgi_server: str) -> None:
        """Recreate the app container with WSGI_SERVER=``wsgi_server``, healthy, reachable
        through nginx (a GET /readyz from inside the proxy container answers 200)."""
        self.compose(
            "up",
            "-d",
            "--wait",
            "--no-deps",
            "app",
            timeout=SWITCH_TIMEOUT,
            WSGI_SERVER=wsgi_server,
        )
        if self.wsgi_server() != wsgi_server:
            raise StackError(f"the app did not restart with WSGI_SERVER={wsgi_server}")
        self._wait_for_nginx("the switch")

    def _last_error(self, service: str) -> str:
        """The last error line (nginx's ``[emerg]``, an entrypoint's one line) in the logs of
        ``service``'s container, or its last line."""
        container = self.container(service)
        lines = container.logs(tail=50).decode(errors="replace").splitlines() if container else []
        lines = [line.strip() for line in lines if line.strip()]
        errors = [line for line in lines if "[emerg]" in line or line.startswith("entrypoint:")]
        return (errors or lines or ["no log"])[-1]

    def _wait_for_nginx(self, after: str) -> None:
        """Wait until a GET /readyz from inside the proxy container, through nginx to the
        app, answers 200; StackError after READY_TIMEOUT s."""
        proxy = self.container("proxy")
        probe = ["curl", "-fsSk", "-o", "/dev/null", "https://127.0.0.1:8443/readyz"]
        deadline = time.monotonic() + READY_TIMEOUT
        while proxy.exec_run(probe).exit_code != 0:
            if time.monotonic() > deadline:
                raise StackError(f"nginx does not reach the app {READY_TIMEOUT} s after {after}")
            time.sleep(0.5)

    def prometheus_url(self) -> str:
        """Prometheus' HTTP API as published on the host."""
        address = self.compose("port", "prometheus", "9090").stdout.strip()
        host, _, port = address.rpartition(":")
        if host in ("0.0.0.0", "::", "[::]", ""):
            host = "127.0.0.1"
        return f"http://{host}:{port}"

    def generator(self, folder: Path, name: str, host_network: bool = False) -> subprocess.Popen:
        """Start ``/out/run.sh`` in a loadgen container named ``name`` with ``folder`` as /out.

        The container joins only the stack's frontend network (``host_network``: the
        host's network instead, for a TARGET outside the stack) and runs as the
        calling user, so the files it writes are the caller's.
        """
        command = [
            "docker", "compose", *FILES, *self.options, "--profile", "load",
            "run", "--rm", "--no-deps", "-T", "--name", name,
            "--volume", f"{folder.resolve()}:/out",
            "--user", f"{os.getuid()}:{os.getgid()}",
            "loadgen-host" if host_network else "loadgen", "sh", "/out/run.sh",
        ]  # fmt: skip
        log = (folder / "docker-run.log").open("w")
        return subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log, stderr=log)

    def remove(self, name: str) -> None:
        """Force-remove the container ``name`` if it still exists."""
        try:
            self.docker.containers.get(name).remove(force=True)
        except docker.errors.NotFound:
            pass


@dataclass(frozen=True)
class Sample:
    """One reading of Docker's stats of one container: when (epoch s), cumulative CPU
    time (ns, user + system) and resident anonymous memory (bytes: cgroup v1 ``rss``,
    v2 ``anon``; None when the engine does not say)."""

    time: float
    service: str
    container_id: str
    cpu_ns: int
    rss_bytes: int | None


class Sampler:
    """Docker's stats of the stack's containers (and of the current generator), about once
    a second each, for the whole test.

    Each container's stats come from its own stream (what ``docker stats`` reads) in a
    thread; a watcher thread starts a stream for every new container (the app after an
    engine switch, the proxy after a change of limits, each round's generator).
    """

    def __init__(
        self, stack: Stack, interval: float = 1.0, services: tuple[str, ...] = SERVICES
    ) -> None:
        self.stack = stack
        self.interval = interval
        self.services = services  # the stack's services sampled (none for a TARGET run)
        self.generator_name: str | None = None
        self.samples: list[Sample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._streams: set[str] = set()
        self._watcher = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> Sampler:
        self._watcher.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._watcher.join(timeout=30)

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                self.look()
            except (docker.errors.DockerException, requests.RequestException):
                pass  # a container came or went mid-call: look again next time
            self._stop.wait(self.interval)

    def look(self) -> None:
        """Start a stats stream for each running container not yet streamed."""
        targets = {service: self.stack.container(service) for service in self.services}
        if self.generator_name:
            try:
                targets["loadgen"] = self.stack.docker.containers.get(self.generator_name)
            except docker.errors.NotFound:
                pass
        for service, container in targets.items():
            if container is None or container.status != "running":
                continue
            with self._lock:
                if container.id in self._streams:
                    continue
                self._streams.add(container.id)
            threading.Thread(target=self._stream, args=(service, container), daemon=True).start()

    def wait_for_samples(self, timeout: float = 15) -> None:
        """Wait (at most ``timeout`` s) until every container of the stack has a sample, so
        that a round starting now has one before its start."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.look()
            wanted = {c.id for c in map(self.stack.container, self.services) if c is not None}
            with self._lock:
                seen = {sample.container_id for sample in self.samples}
            if wanted <= seen:
                return
            time.sleep(0.2)

    def _stream(self, service: str, container) -> None:
        try:
            for stats in container.stats(stream=True, decode=True):
                cpu = stats.get("cpu_stats", {}).get("cpu_usage", {}).get("total_usage")
                if self._stop.is_set() or not cpu:  # stopped, or the container is not running
                    return
                memory = stats.get("memory_stats", {}).get("stats", {})
                rss = memory.get("rss", memory.get("anon"))
                with self._lock:
                    self.samples.append(Sample(time.time(), service, container.id, cpu, rss))
        except (docker.errors.DockerException, requests.RequestException, ValueError):
            return  # the container went away
        finally:
            with self._lock:  # look() starts a new stream if the container still runs
                self._streams.discard(container.id)

    def usage(self, start: float, end: float) -> dict[str, dict]:
        """Per service, over [start, end] (epoch s), for the container it had at ``end``:
        ``cpu_seconds`` used (the CPU counter interpolated at both ends between the
        samples around them; a generator, new each round, counts from 0 at its start;
        None without samples on both sides) and ``peak_rss_bytes``, the largest reading
        in the window (0 if none)."""
        with self._lock:
            samples = sorted(self.samples, key=lambda sample: sample.time)
        usage = {}
        for service in sorted({sample.service for sample in samples}):
            mine = [x for x in samples if x.service == service and x.time <= end + self.interval]
            if not mine:
                continue
            current = [x for x in mine if x.container_id == mine[-1].container_id]
            inside = [x for x in current if start <= x.time <= end + self.interval]
            if not inside:
                continue
            cpu_end = _interpolate(current, end)
            cpu_start = 0.0 if service == "loadgen" else _interpolate(current, start)
            usage[service] = {
                "cpu_seconds": None
                if cpu_end is None or cpu_start is None
                else (cpu_end - cpu_start) / 1e9,
                "peak_rss_bytes": max((x.rss_bytes or 0) for x in inside),
            }
        return usage


def _interpolate(samples: list[Sample], at: float) -> float | None:
    """The cumulative CPU ns at time ``at``, linear between the samples around it; the
    last sample's value after the last one (a stopped container uses no more); None
    before the first."""
    if not samples or at < samples[0].time:
        return None
    for before, after in zip(samples, samples[1:], strict=False):
        if before.time <= at <= after.time:
            span = after.time - before.time
            share = (at - before.time) / span if span else 0.0
            return before.cpu_ns + share * (after.cpu_ns - before.cpu_ns)
    return float(samples[-1].cpu_ns)
