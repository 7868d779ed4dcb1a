"""The bench's scenarios: loadtest/scenarios/bench/<name>.toml, read with loadtest.scenario.

Each file is a load-test scenario (``python -m loadtest`` runs it too) with exactly one
``[[request]]``, the one wrk sends, and an optional ``[bench]`` table:

    [bench]
    sleep_threads = true   # run with BENCH_SLEEP_THREADS threads per worker, not BENCH_THREADS
    direct = true          # wrk hits the engine's own port, no nginx in between
    pinned = true          # also measured with one worker pinned to one CPU (BENCH_PINNED)
    app = "loadtest.bench.apps.flask_hello:app"  # the WSGI app every engine serves
                                                 # (MODULE:NAME; default: the demo app)

A scenario with its own ``app`` runs on engines started for that app (a phase of its
own); its module's ``GREETING`` is the answer to GET / that the bench checks.
The bench reads its duration and connections from BENCH_*, not from the file.
"""

from __future__ import annotations

import importlib
import json
import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from loadtest import scenario as loadtest_scenario

BENCH_DIR = loadtest_scenario.SCENARIOS_DIR / "bench"
# the table's order
ORDER = ("hello", "64k", "upload", "sleep", "hello-direct", "flask-hello", "django-hello")
DEMO_APP = "wsgistack_demo.wsgi:application"  # what the engines serve unless [bench] app
GREETING = b"Hello from the WSGI stack!\n"  # the demo app's answer to GET /
_FLAGS = {"sleep_threads", "direct", "pinned"}
_APP_SPEC = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")  # MODULE:NAME, as gunicorn takes it


def app_label(app: str) -> str:
    """The last name of an app's module, MODULE:NAME → "flask_hello" (for
    ``loadtest.bench.apps.flask_hello:app``): what names a phase's app."""
    return app.partition(":")[0].rpartition(".")[2]


@dataclass(frozen=True)
class Scenario:
    """One bench scenario: a title (the file's description) and the request wrk sends."""

    name: str
    title: str
    request: loadtest_scenario.Request
    threaded: bool = False  # runs with BENCH_SLEEP_THREADS instead of BENCH_THREADS
    direct: bool = False  # wrk hits the engine itself, not nginx
    pinned: bool = False  # also measured in the pinned phase
    app: str = DEMO_APP  # the WSGI app the engines serve, MODULE:NAME

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
    unknown = sorted(set(parsed.bench) - _FLAGS - {"app"})
    if unknown:
        raise loadtest_scenario.ScenarioError(f"{where}: unknown [bench] key(s) {unknown}")
    flags = {key: parsed.bench.get(key, False) for key in _FLAGS}
    for key, value in flags.items():
        if not isinstance(value, bool):
            raise loadtest_scenario.ScenarioError(f"{where}: [bench] {key} must be true or false")
    app = parsed.bench.get("app", DEMO_APP)
    if not isinstance(app, str) or not _APP_SPEC.fullmatch(app):
        raise loadtest_scenario.ScenarioError(
            f"{where}: [bench] app must be MODULE:NAME (a WSGI app), got {app!r}"
        )
    return Scenario(
        name=parsed.name,
        title=parsed.description,
        request=parsed.requests[0],
        threaded=flags["sleep_threads"],
        direct=flags["direct"],
        pinned=flags["pinned"],
        app=app,
    )


SCENARIOS: dict[str, Scenario] = {name: load(name) for name in ORDER}


def greeting(app: str) -> bytes:
    """What ``app`` (MODULE:NAME) answers to GET /: the demo app's GREETING, or the
    ``GREETING`` of the app's module (loadtest/bench/apps/), imported here."""
    if app == DEMO_APP:
        return GREETING
    return importlib.import_module(app.partition(":")[0]).GREETING


def answer_ok(scenario: Scenario, status: int, body: bytes) -> bool:
    """Whether ``body`` is what the scenario's app answers to its request: the
    greeting for / (greeting()); from the demo app, the bytes /api/stream was asked
    for, the size /api/upload was sent, the milliseconds /api/sleep slept."""
    if status != 200:
        return False
    url = urlsplit(scenario.path)
    query = {key: int(values[0]) for key, values in parse_qs(url.query).items()}
    if url.path == "/":
        return body == greeting(scenario.app)
    if url.path == "/api/stream":
        return len(body) == query["chunks"] * query["size"]
    if url.path == "/api/upload":
        return json.loads(body).get("bytes") == len(scenario.request.body)
    if url.path == "/api/sleep":
        return json.loads(body).get("ms") == query["ms"]
    return True
