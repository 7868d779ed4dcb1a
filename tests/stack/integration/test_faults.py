"""Faults under a steady, bounded load (load.py in this package: 100 requests/s
for 20 s, GET and POST alternating, each answer checked), with the counts
printed: reloads, a killed worker, a rolling restart over two replicas, a
restart of the only replica, a graceful stop, and a replica whose dependency
fails. These stop or break containers, so they run last (marker `disruptive`).
"""

from __future__ import annotations

import json
import subprocess
import threading
import time

import httpx
import pytest

from tests.stack.integration.compose import COMPOSE
from tests.stack.integration.load import OK, run_load
from tests.support import ROOT, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.disruptive, pytest.mark.slow]

RATE, DURATION = 100.0, 20.0
CHILDREN = (  # PIDs whose parent is $1, from /proc (no procps in the images)
    'for p in /proc/[0-9]*; do read -r stat < "$p/stat" 2>/dev/null || continue; '
    'set -- "$1" $stat; [ "$5" != "$1" ] || echo "$2"; done'
)


def _children(container, pid: int) -> set[int]:
    result = container.exec_run(["sh", "-c", CHILDREN, "children", str(pid)])
    assert result.exit_code == 0, result.output
    return {int(line) for line in result.output.decode().split()}


def _server_master(container) -> int:
    result = container.exec_run(
        ["supervisorctl", "-c", "/etc/supervisor/supervisord.conf", "pid", "server"]
    )
    return int(result.output.decode().strip())


def _server_workers(container) -> set[int]:
    return _children(container, _server_master(container))


def _make(stack, *targets: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "--no-print-directory", *targets, f"COMPOSE={' '.join(COMPOSE)}"],
        cwd=ROOT,
        env=stack.compose_env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _load(stack, **kwargs):
    return run_load(stack.https, stack.ssl_context(), rate=RATE, duration=DURATION, **kwargs)


def _upstream_servers(stack) -> str:
    result = stack.container("proxy").exec_run(["cat", "/tmp/nginx/conf.d/upstream.conf"])
    return result.output.decode()


def _hostnames(stack, requests: int) -> set[str]:
    """The app hostnames that answered ``requests`` GET /api/echo, each on a new connection."""
    names = set()
    for _ in range(requests):
        with stack.client() as client:
            names.add(client.get("/api/echo").json()["hostname"])
    return names


def _address(container) -> str:
    container.reload()
    (network,) = container.attrs["NetworkSettings"]["Networks"].values()
    return network["IPAddress"]


def _scale(stack, replicas: int) -> list:
    result = stack.compose(
        "up", "-d", "--no-deps", "--wait", "--scale", f"app={replicas}", "app", timeout=300
    )
    assert result.returncode == 0, result.stderr
    apps = stack.containers("app")
    assert len(apps) == replicas
    # nginx routes to exactly these replicas (upstreams.sh follows Docker's DNS)
    addresses = {_address(app) for app in apps}
    assert wait_until(
        lambda: (
            {a for a in addresses if f"server {a}:" in _upstream_servers(stack)} == addresses
            and _upstream_servers(stack).count("    server ") == replicas
        ),
        timeout=30,
        interval=0.2,
    ), _upstream_servers(stack)
    return apps


def test_reload_of_server_and_nginx_fails_no_request(stack, report):
    app, proxy = stack.container("app"), stack.container("proxy")
    workers_before = _server_workers(app)
    nginx_before = _nginx_workers(proxy)
    assert nginx_before
    done = {}

    def reload(result):
        done["make"] = _make(stack, "reload")

    result = _load(stack, during=reload)
    report(result.report("make reload (SIGHUP to the server, nginx -s reload)"))
    assert done["make"].returncode == 0, done["make"].stderr
    assert result.failures() == []
    # Both really reloaded: new server workers and new nginx workers.
    assert wait_until(lambda: not (_server_workers(app) & workers_before), timeout=30, interval=0.2)
    assert wait_until(lambda: not (_nginx_workers(proxy) & nginx_before), timeout=30, interval=0.2)


def _nginx_workers(proxy) -> set[int]:
    result = proxy.exec_run(["sh", "-c", 'grep -l "^nginx: worker" /proc/[0-9]*/cmdline || true'])
    return {int(path.split("/")[2]) for path in result.output.decode().split()}


# Inside the app container: kill -9 worker $1, then wait (a bounded loop) until the
# master has as many workers as before, none of them $1; print the milliseconds it took.
KILL_AND_WAIT = (
    f"workers() {{ {CHILDREN}; }}; "
    "master=$(supervisorctl -c /etc/supervisor/supervisord.conf pid server); victim=$1; "
    'before=$(workers "$master" | wc -l); start=$(date +%s%N); kill -9 "$victim"; '
    'for i in $(seq 1 1000); do now=$(workers "$master"); '
    '[ "$(echo "$now" | grep -c .)" -eq "$before" ] && ! echo "$now" | grep -qx "$victim" '
    "&& break; done; "
    "echo $(( ($(date +%s%N) - start) / 1000000 ))"
)


def test_killed_worker_is_replaced_and_only_its_requests_may_fail(stack, report):
    app = stack.container("app")
    victim = min(_server_workers(app))
    timing = {}

    def kill(result):
        timing["start"] = time.monotonic() - result.marks["t0"]
        done = app.exec_run(["sh", "-c", KILL_AND_WAIT, "kill", str(victim)])
        timing["end"] = time.monotonic() - result.marks["t0"]
        assert done.exit_code == 0, done.output
        timing["replaced_ms"] = int(done.output.decode().split()[-1])

    result = _load(stack, during=kill)
    replaced_in = timing["replaced_ms"] / 1000
    report(result.report("kill -9 of one server worker") + f"; replaced within {replaced_in:.2f} s")
    assert victim not in _server_workers(app)
    assert replaced_in <= 2.0
    # A request could only fail if it was in flight on the worker when it died:
    # started before the kill (and the wait for its replacement) returned, and
    # not finished before it began.
    window_start, window_end = timing["start"], timing["end"]
    in_flight = [
        o
        for o in result.outcomes
        if o.started <= window_end and o.started + o.duration >= window_start
    ]
    late = [o for o in result.failures() if o.started > window_end]
    assert late == [], late
    assert len(result.failures()) <= len(in_flight)


@pytest.fixture(scope="class")
def two_replicas(stack):
    """The app scaled to two replicas for a class of tests, then back to one."""
    _scale(stack, 2)
    yield
    _scale(stack, 1)


@pytest.mark.usefixtures("two_replicas")
class TestTwoReplicas:
    """Rolling restart and a failed dependency, with the app scaled to two replicas."""

    def test_rolling_restart_fails_no_request(self, stack, report):
        before = {c.id for c in stack.containers("app")}
        done = {}

        def roll(result):
            done["make"] = _make(stack, "rolling-restart")

        result = _load(stack, during=roll)
        report(result.report("rolling restart of 2 app replicas (make rolling-restart)"))
        assert done["make"].returncode == 0, done["make"].stderr
        after = stack.containers("app")
        assert len(after) == 2 and not before & {c.id for c in after}
        # Not one GET (nginx retries those elsewhere), nor even a POST: each
        # old replica leaves nginx's upstream before it stops accepting.
        assert result.failures("GET") == []
        assert result.failures() == []
        # Both new replicas serve once the old ones are gone. Asked after the
        # load: the restart can take most of its 20 s on a busy machine, leaving
        # too short a tail to be sure nginx sent some of it to each.
        new_hosts = {c.attrs["Config"]["Hostname"] for c in after}
        assert wait_until(lambda: _hostnames(stack, 10) == new_hosts, 15, interval=0.2), (
            new_hosts,
            _hostnames(stack, 10),
        )

    def test_unready_replica_leaves_nginx_and_docker_reports_it(self, stack, report):
        unready, ready = stack.containers("app")
        address = _address(unready)
        down_file = "/tmp/dependency-down"
        assert unready.exec_run(["touch", down_file]).exit_code == 0
        try:
            # nginx stops routing to it within a few checks (upstreams.sh
            # rewrites the upstream block, then nginx's reload takes it in)...
            assert wait_until(
                lambda: f"server {address}:" not in _upstream_servers(stack), 15, interval=0.2
            )
            ready_host = ready.attrs["Config"]["Hostname"]
            assert wait_until(lambda: _hostnames(stack, 5) == {ready_host}, 15, interval=0.2)
            # ... and serves everything from the other replica meanwhile,
            result = run_load(stack.https, stack.ssl_context(), rate=RATE, duration=10.0)
            # while Docker's healthcheck (/readyz) marks it unhealthy.
            unready.reload()
            health = wait_until(
                lambda: (
                    unready.reload() or unready.attrs["State"]["Health"]["Status"] == "unhealthy"
                ),
                timeout=30,
                interval=0.2,
            )
            report(
                result.report("one of 2 replicas unready (dependency down)")
                + f"; served by {sorted({o.hostname for o in result.outcomes if o.hostname})}"
            )
            assert health, unready.attrs["State"]["Health"]
            assert result.failures() == []
            assert {o.hostname for o in result.outcomes if o.hostname} == {
                ready.attrs["Config"]["Hostname"]
            }
        finally:
            unready.exec_run(["rm", "-f", down_file])
        # Ready again: back in nginx and healthy.
        assert wait_until(
            lambda: f"server {address}:" in _upstream_servers(stack), 15, interval=0.2
        )
        assert wait_until(
            lambda: unready.reload() or unready.attrs["State"]["Health"]["Status"] == "healthy",
            timeout=30,
            interval=0.2,
        )


def _nginx_access_log(stack, since: float) -> list[dict]:
    """nginx's JSON access log lines written since the Unix time ``since``."""
    lines = stack.container("proxy").logs(stdout=True, stderr=False, since=int(since))
    entries = []
    for line in lines.decode().splitlines():
        if line.startswith("{"):
            try:
                entries.append(json.loads(line))
            except ValueError:
                continue
    return entries


def test_restart_of_the_only_replica_fails_fast_and_recovers(stack, report):
    assert len(stack.containers("app")) == 1
    done = {}
    started_at = time.time()

    def restart(result):
        done["compose"] = stack.compose("restart", "app", timeout=120)

    result = _load(stack, during=restart)
    failures = result.failures()
    outage = max(o.started for o in failures) - result.fault_started if failures else 0.0
    # How long nginx took to answer each failure (its request_time: from the
    # request's first byte, so the client's own TLS handshake and this busy
    # machine's scheduling of the load threads are not counted).
    nginx_failures = [
        float(e["request_time"])
        for e in _nginx_access_log(stack, started_at)
        if int(e["status"]) >= 500
    ]
    report(
        result.report("docker compose restart app (1 replica)")
        + f"; service back {outage:.1f} s after the restart began; nginx answered each "
        f"of its {len(nginx_failures)} failures within {max(nginx_failures, default=0):.2f} s"
    )
    assert done["compose"].returncode == 0, done["compose"].stderr
    # nginx's own answers, all 502/503: the replica refused, was known down
    # (upstreams.sh's placeholder), or its stopped container's address no
    # longer answered a connect (proxy_connect_timeout, 0.3 s: nginx's 504
    # turned 502 by @gateway_timeout, since the app never got the request).
    assert {o.kind for o in failures} <= {"status 502", "status 503"}, result.counts()
    assert len(nginx_failures) == len(failures)
    assert max(nginx_failures, default=0) < 1.0  # refused at once, never hanging
    assert outage <= 10.0
    assert all(o.kind == OK for o in result.outcomes if o.started > result.fault_started + outage)


def test_compose_stop_lets_in_flight_requests_finish(stack, report):
    answer = {}

    def slow_request():
        with stack.client() as client:
            try:
                answer["response"] = client.get("/api/sleep", params={"ms": 2000})
            except httpx.HTTPError as exc:
                answer["error"] = exc

    thread = threading.Thread(target=slow_request)
    thread.start()
    # It has reached the app (the server counts it in progress)...
    assert wait_until(
        lambda: any(
            s.name == "http_server_active_requests" and s.value >= 1
            for s in stack.exporter_samples()
        ),
        timeout=5,
        interval=0.05,
    )
    # ... when the whole stack is told to stop.
    started = time.monotonic()
    stopped = stack.compose("stop", timeout=120)
    took = time.monotonic() - started
    thread.join(timeout=30)
    try:
        assert stopped.returncode == 0, stopped.stderr
        assert "error" not in answer, answer.get("error")
        assert answer["response"].status_code == 200
        assert answer["response"].json() == {"ms": 2000}
        report(f"docker compose stop during a 2 s request: 200 after it, stop took {took:.1f} s")
    finally:
        restarted = stack.compose("up", "-d", "--wait", timeout=300)
        assert restarted.returncode == 0, restarted.stderr
