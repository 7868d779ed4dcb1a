"""The bench's scenarios: loadtest/scenarios/bench/<name>.toml, read with loadtest.scenario.

Each file is a load-test scenario (``python -m loadtest`` runs it too) with exactly one
``[[request]]``, the one wrk sends, and an optional ``[bench]`` table:

    [bench]
    sleep_threads = true   # run with BENCH_SLEEP_THREADS threads per worker, not BENCH_THREADS
    direct = true          # wrk hits the engine's own port, no nginx in between
    pinned = true          # also measured with one worker pinned to one CPU (BENCH_PINNED)

The bench reads its duration and connections from BENCH_*, not from the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from loadtest import scenario as loadtest_scenario

BENCH_DIR = loadtest_scenario.SCENARIOS_DIR / "bench"
ORDER = ("hello", "64k", "upload", "sleep", "hello-direct")  # the table's order
GREETING = b"Hello from the WSGI stack!\n"  # the demo app's answer to GET /
_BENCH_KEYS = {"sleep_threads", "direct", "pinned"}


@dataclass(frozen=True)
class Scenario:
    """One bench scenario: a title (the file's description) and the request wrk sends."""

    name: str
    title: str
    request: loadtest_scenario.Request
    threaded: bool = False  # runs with BENCH_SLEEP_THREADS instead of BENCH_THREADS
    direct: bool = False  # wrk hits the engine itself, not nginx
    pinned: bool = False  # also measured in the pinned phase

    @property
    def method(self) -> str:
        return self.request.method

    @property
    def path(self) -> str:
        return self.request.path


def load(name: str) -> Scenario:
    """The bench scenario ``name`` from BENCH_DIR; raises ScenarioError naming the problem."""
    parsed = loadtest_scenario.load(str(BENCH_DIR / f"{name}.toml"))
    where = str(parsed.source)
    if len(parsed.requests) != 1:
        raise loadtest_scenario.ScenarioError(f"{where}: the bench needs exactly one [[request]]")
    unknown = sorted(set(parsed.bench) - _BENCH_KEYS)
    if unknown:
        raise loadtest_scenario.ScenarioError(f"{where}: unknown [bench] key(s) {unknown}")
    flags = {key: parsed.bench.get(key, False) for key in _BENCH_KEYS}
    for key, value in flags.items():
        if not isinstance(value, bool):
            raise loadtest_scenario.ScenarioError(f"{where}: [bench] {key} must be true or false")
    return Scenario(
        name=parsed.name,
        title=parsed.description,
        request=parsed.requests[0],
        threaded=flags["sleep_threads"],
        direct=flags["direct"],
        pinned=flags["pinned"],
    )


SCENARIOS: dict[str, Scenario] = {name: load(name) for name in ORDER}


def answer_ok(scenario: Scenario, status: int, body: bytes) -> bool:
    """Whether ``body`` is what the demo app answers to ``scenario``'s request: the
    greeting for /, the bytes /api/stream was asked for, the size /api/upload was sent,
    the milliseconds /api/sleep slept."""
    if status != 200:
        return False
    url = urlsplit(scenario.path)
    query = {key: int(values[0]) for key, values in parse_qs(url.query).items()}
    if url.path == "/":
        return body == GREETING
    if url.path == "/api/stream":
        return len(body) == query["chunks"] * query["size"]
    if url.path == "/api/upload":
        return json.loads(body).get("bytes") == len(scenario.request.body)
    if url.path == "/api/sleep":
        return json.loads(body).get("ms") == query["ms"]
    return True
