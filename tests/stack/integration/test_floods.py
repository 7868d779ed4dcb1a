"""Slow clients and floods against nginx: a slowloris run does not starve
other clients, and a burst over the per-client rate or connection limit gets
429s with Retry-After and nothing else fails. The burst tests restart the
proxy with small limits and restore it, so they run last (marker
`disruptive`)."""

from __future__ import annotations

import resource
import shutil
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ATTACK_SECONDS = 30
PROBE_INTERVAL = 0.1  # seconds: one probe request per 100 ms


def _stub_status(stack) -> dict[str, int]:
    """nginx's stub_status counters (read inside the proxy: port 8081 is not published)."""
    result = stack.container("proxy").exec_run(
        ["curl", "-fsS", "http://127.0.0.1:8081/stub_status"]
    )
    words = result.output.decode().split()
    return {
        "active": int(words[2]),
        "reading": int(words[words.index("Reading:") + 1]),
    }


def _raise_open_files_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def test_slowloris_does_not_starve_other_clients(stack, report):
    slowhttptest = shutil.which("slowhttptest")
    assert slowhttptest, "slowhttptest is missing: run `make bootstrap` (host-packages.txt)"
    # Slow headers: 3000 connections opened at 150/s, each sending another
    # header line every 5 s and never finishing its request head.
    attack = subprocess.Popen(
        [
            slowhttptest,
            "-H",
            "-c",
            "3000",
            "-r",
            "150",
            "-i",
            "5",
            "-x",
            "24",
            "-p",
            "3",
            "-l",
            str(ATTACK_SECONDS),
            "-u",
            f"https://localhost:{stack.https_port}/",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=_raise_open_files_limit,
    )
    peak = {"reading": 0}

    def watch():
        while attack.poll() is None:
            peak["reading"] = max(peak["reading"], _stub_status(stack)["reading"])
            time.sleep(1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    outcomes = []
    started = time.monotonic()
    limits = httpx.Limits(max_keepalive_connections=0)
    with httpx.Client(
        base_url=stack.https, verify=stack.ssl_context(), timeout=5, limits=limits
    ) as client:
        for index in range(int(ATTACK_SECONDS / PROBE_INTERVAL)):
            due = started + 1.0 + index * PROBE_INTERVAL  # from 1 s into the attack
            time.sleep(max(0.0, due - time.monotonic()))
            try:
                response = client.get("/api/echo", params={"probe": index})
                ok = response.status_code == 200 and response.json()["args"] == {
                    "probe": [str(index)]
                }
                outcomes.append("ok" if ok else f"status {response.status_code}")
            except httpx.HTTPError as exc:
                outcomes.append(type(exc).__name__)
    output, _ = attack.communicate(timeout=ATTACK_SECONDS + 30)
    watcher.join(timeout=5)
    succeeded = outcomes.count("ok")
    failed = {kind: outcomes.count(kind) for kind in set(outcomes) - {"ok"}}
    report(
        f"slowloris ({ATTACK_SECONDS} s, up to 3000 slow connections, peak {peak['reading']} "
        f"held by nginx): probe sent {len(outcomes)}, succeeded {succeeded}, failed {failed}"
    )
    assert attack.returncode == 0, output[-2000:]
    assert peak["reading"] >= 500, "the attack never held many connections open"
    assert succeeded >= 0.99 * len(outcomes)


@pytest.fixture
def small_limits(stack):
    """The proxy restarted with small flood limits; the .env values restored after."""

    def proxy_with(**env: str) -> None:
        result = stack.compose("up", "-d", "--no-deps", "--wait", "proxy", timeout=120, **env)
        assert result.returncode == 0, result.stderr

    limits = {"RATE_LIMIT": "10r/s", "RATE_LIMIT_BURST": "20", "CONN_LIMIT": "4"}
    proxy_with(**limits)
    yield {key: value.removesuffix("r/s") for key, value in limits.items()}
    proxy_with()


def _send_all(stack, requests: list[tuple[str, dict]]) -> list[httpx.Response | Exception]:
    """Send every (path, params) at once, each on its own connection."""

    def one(item):
        path, params = item
        try:
            with stack.client() as client:
                return client.get(path, params=params)
        except httpx.HTTPError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=len(requests)) as pool:
        return list(pool.map(one, requests))


@pytest.mark.disruptive
def test_burst_over_the_rate_limit_gets_429_and_nothing_else_fails(stack, small_limits, report):
    rate, burst = int(small_limits["RATE_LIMIT"]), int(small_limits["RATE_LIMIT_BURST"])
    sent = 4 * burst
    answers = []
    # Back to back on one connection: one request in progress at a time, so
    # only the rate limit can refuse.
    with stack.client() as client:
        started = time.monotonic()
        for index in range(sent):
            try:
                answers.append(client.get("/api/echo", params={"i": index}))
            except httpx.HTTPError as exc:
                answers.append(exc)
        elapsed = time.monotonic() - started
    statuses = [
        a.status_code if isinstance(a, httpx.Response) else type(a).__name__ for a in answers
    ]
    passed, limited = statuses.count(200), statuses.count(429)
    report(
        f"burst of {sent} requests in {elapsed:.2f} s at {rate} r/s, burst {burst}: "
        f"{passed} served, {limited} got 429, other {sent - passed - limited}"
    )
    assert passed + limited == sent, statuses
    assert burst <= passed <= burst + 1 + rate * elapsed, statuses
    for index, answer in enumerate(answers):
        if answer.status_code == 429:
            assert answer.headers["retry-after"] == "1"
            assert answer.headers["strict-transport-security"]  # still every header
        else:
            assert answer.json()["args"] == {"i": [str(index)]}  # its own answer
    # The limit lifts: a second later the client is served again.
    time.sleep(1.5)
    with stack.client() as client:
        assert client.get("/").status_code == 200


@pytest.mark.disruptive
def test_requests_over_the_connection_limit_get_429(stack, small_limits, report):
    conns = int(small_limits["CONN_LIMIT"])
    time.sleep(2.5)  # let the rate limiter forget earlier requests
    # conns + 3 slow requests at once: `conns` are in progress, the rest refused.
    answers = _send_all(stack, [("/api/sleep", {"ms": 2000})] * (conns + 3))
    statuses = sorted(
        a.status_code if isinstance(a, httpx.Response) else type(a).__name__ for a in answers
    )
    report(f"{conns + 3} concurrent requests at CONN_LIMIT={conns}: {statuses}")
    assert statuses == [200] * conns + [429] * 3
