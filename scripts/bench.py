#!/usr/bin/env python3
"""``make bench``: our WSGI server against gunicorn, waitress and granian, side by side.

Every engine serves the demo app (``wsgistack_demo.wsgi:application``) on loopback behind
the same host nginx (Debian ``nginx-light``, a minimal config written to a temp
folder: upstream keep-alive, ``proxy_http_version 1.1``, empty ``Connection`` —
the proxy settings of ``nginx/templates/https.conf.template`` in plain HTTP, so
TLS costs nothing here), with the same worker and thread counts, and ``wrk``
drives nginx. Engines:

    wsgistack         python -m wsgistack -w W --threads T
    gunicorn-sync     gunicorn -k sync -w W             (no threads)
    gunicorn-gthread  gunicorn -k gthread -w W --threads T
    waitress          W waitress processes, --threads T each (waitress has no
                      pre-fork mode; nginx balances over their W ports)
    granian           granian --interface wsgi --workers W --blocking-threads T
    nginx-static      not a WSGI engine: a second nginx (W worker processes)
                      that answers the greeting itself. The ceiling: what
                      this machine reaches for ``hello`` when the upstream
                      costs (almost) nothing.

Scenarios: ``hello`` (GET /), ``64k`` (GET /api/stream?chunks=1&size=65536),
``upload`` (POST /api/upload of 1 MiB, from a wrk Lua script) with T threads,
``sleep`` (GET /api/sleep?ms=20) with BENCH_SLEEP_THREADS threads, and
``hello-direct``: hello world with wrk hitting the engine's port itself, no
nginx (not waitress: its W processes listen on W ports, which one wrk cannot
balance).

The engines of a thread count are started side by side (each with its own
nginx) and stay up for every round; wrk loads one at a time. A round measures
each scenario on every engine back to back, in an order rotated each round, so
the engines of one scenario are measured seconds apart and the drifts of a
shared machine hit them alike. Reported per engine and scenario: median
requests/s, median p50 and p99 latency (wrk --latency), peak RSS of one worker
process (sampled from /proc), errors, and the ratio to gunicorn sync (and to
gunicorn gthread): the median over the rounds of the round's requests/s ratio.
Only the ratios mean something beyond this machine and run.

Writes ``reports/bench-<timestamp>/results.json`` and ``results.md`` and prints
the table. Environment (defaults in brackets):

    BENCH_DURATION       seconds of each measured wrk run [3]
    BENCH_WARMUP         seconds of wrk warm-up before each run [1]
    BENCH_ROUNDS         interleaved rounds [3]
    BENCH_WORKERS        worker processes of every engine [2]
    BENCH_THREADS        threads per worker, hello/64k/upload [1]
    BENCH_SLEEP_THREADS  threads per worker, sleep [8]
    BENCH_CONNECTIONS    wrk connections to nginx [32]
    BENCH_ENGINES        comma-separated engines [all]
    BENCH_SCENARIOS      comma-separated scenarios [all]

Needs ``nginx`` and ``wrk`` (Debian: ``apt-get install nginx-light wrk``;
``--install-missing`` does that when run as root) and a Python with
requirements/bench.txt (``make bench`` creates .venv-bench and does both).
Every process it starts runs in its own session and is stopped (its whole
process group) when its run ends, on Ctrl-C, SIGTERM or SIGHUP, and at exit.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import http.client
import importlib.metadata
import importlib.util
import json
import os
import pwd
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
APP = "wsgistack_demo.wsgi:application"
HOST = "127.0.0.1"
UPLOAD_BYTES = 1024 * 1024
STREAM_BYTES = 64 * 1024
SLEEP_MS = 20
GREETING = b"Hello from the WSGI stack!\n"

START_TIMEOUT = 30.0  # seconds for an engine (or nginx) to answer after it is started
STOP_TIMEOUT = 10.0  # seconds after SIGTERM before SIGKILL
RSS_SAMPLE_INTERVAL = 0.2  # seconds between /proc samples
SESSION_OVERHEAD = 2.5  # rough seconds to start and stop one engine, for the estimate

BASELINE = "gunicorn-sync"
THREADED_BASELINE = "gunicorn-gthread"


class BenchError(Exception):
    """Something the benchmark cannot go on without; the message says what."""


# -- configuration ----------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    duration: int = 3
    warmup: int = 1
    rounds: int = 3
    workers: int = 2
    threads: int = 1
    sleep_threads: int = 8
    connections: int = 32

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """Settings from BENCH_* variables; raises BenchError for a bad value."""
        values = {}
        for name, default in asdict(cls()).items():
            key = f"BENCH_{name.upper()}"
            raw = environ.get(key, "").strip()
            if not raw:
                values[name] = default
                continue
            try:
                value = int(raw)
            except ValueError:
                raise BenchError(f"{key} must be an integer, got {raw!r}") from None
            low = 0 if name == "warmup" else 1
            if not low <= value <= 3600:
                raise BenchError(f"{key} must be between {low} and 3600, got {value}")
            values[name] = value
        return cls(**values)


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    method: str
    path: str
    threaded: bool = False  # runs with BENCH_SLEEP_THREADS instead of BENCH_THREADS
    direct: bool = False  # wrk hits the engine itself, not nginx


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("hello", "hello world (GET /)", "GET", "/"),
        Scenario("64k", "64 KiB response", "GET", f"/api/stream?chunks=1&size={STREAM_BYTES}"),
        Scenario("upload", "1 MiB upload (POST)", "POST", "/api/upload"),
        Scenario("sleep", f"{SLEEP_MS} ms sleep", "GET", f"/api/sleep?ms={SLEEP_MS}", True),
        Scenario("hello-direct", "hello world, no nginx (wrk → engine)", "GET", "/", direct=True),
    )
}


@dataclass(frozen=True)
class Engine:
    name: str
    label: str
    module: str | None  # the importable package, also the distribution whose version is shown
    threaded: bool  # honours a thread count
    process_per_port: bool = False  # one process per worker, each on its own port (waitress)
    only: tuple[str, ...] | None = None  # the scenarios it can run (None: every one)

    @property
    def wsgi(self) -> bool:
        """False for the nginx-static reference, which runs no Python at all."""
        return self.module is not None

    def runs(self, scenario: Scenario) -> bool:
        """True if this engine takes part in ``scenario``."""
        if self.only is not None and scenario.name not in self.only:
            return False
        return not (scenario.direct and self.process_per_port)


ENGINES: dict[str, Engine] = {
    e.name: e
    for e in (
        Engine("wsgistack", "wsgistack", "wsgistack", True),
        Engine("gunicorn-sync", "gunicorn sync", "gunicorn", False),
        Engine("gunicorn-gthread", "gunicorn gthread", "gunicorn", True),
        Engine("waitress", "waitress", "waitress", True, process_per_port=True),
        Engine("granian", "granian (wsgi)", "granian", True),
        Engine(
            "nginx-static", "nginx static (ceiling)", None, False, only=("hello", "hello-direct")
        ),
    )
}


def engine_commands(
    engine: Engine,
    python: str,
    ports: Sequence[int],
    workers: int,
    threads: int,
    nginx: str = "nginx",
    directory: Path = Path("."),
) -> list[list[str]]:
    """The argv of every process that makes up ``engine`` (one, or one per port).
    ``nginx`` and ``directory`` (where static_nginx_config() is written) serve
    nginx-static."""
    bind = f"{HOST}:{ports[0]}"
    if engine.name == "wsgistack":
        return [
            [python, "-m", "wsgistack", "-b", bind, "-w", str(workers), "--threads", str(threads),
             "--keep-alive", "75", "--graceful-timeout", "5", "--log-level", "warning", APP]
        ]  # fmt: skip
    if engine.name in ("gunicorn-sync", "gunicorn-gthread"):
        kind = ["-k", "sync"] if engine.name == "gunicorn-sync" else ["-k", "gthread"]
        if engine.name == "gunicorn-gthread":
            kind += ["--threads", str(threads)]
        return [
            [python, "-m", "gunicorn", "-b", bind, "-w", str(workers), *kind,
             "--keep-alive", "75", "--graceful-timeout", "5", "--log-level", "warning",
             "--no-control-socket", APP]
        ]  # fmt: skip
    if engine.name == "waitress":
        return [
            [python, "-m", "waitress", f"--listen={HOST}:{port}", f"--threads={threads}",
             "--channel-timeout=120", APP]
            for port in ports
        ]  # fmt: skip
    if engine.name == "granian":
        return [
            [python, "-m", "granian", "--interface", "wsgi", "--host", HOST,
             "--port", str(ports[0]), "--workers", str(workers),
             "--blocking-threads", str(threads), "--runtime-threads", "1",
             "--workers-kill-timeout", "5", "--log-level", "warning", APP]
        ]  # fmt: skip
    if engine.name == "nginx-static":
        return [[nginx, "-p", str(directory), "-c", str(directory / "static.conf"),
                 "-e", str(directory / "static-error.log")]]  # fmt: skip
    raise ValueError(f"unknown engine {engine.name!r}")


def _nginx_main(directory: Path, name: str, workers: int) -> str:
    """The part of an nginx.conf every instance here shares: foreground, files in
    ``directory``, no access log."""
    user = ""
    if os.geteuid() == 0:  # workers would run as nobody and could not use the temp dirs
        user = f"user {pwd.getpwuid(0).pw_name};\n"
    temp = "\n".join(
        f"    {kind}_temp_path {directory}/{name}-{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""\
{user}daemon off;
worker_processes {workers};
pid {directory}/{name}.pid;
error_log {directory}/{name}-error.log warn;

events {{
    worker_connections 4096;
}}

http {{
    access_log off;
    server_tokens off;
{temp}
"""


def static_nginx_config(directory: Path, port: int, workers: int) -> str:
    """nginx-static: ``workers`` nginx processes that answer the greeting themselves."""
    greeting = GREETING.decode().replace("\n", "\\n")
    return f"""\
# wsgistack bench: the ceiling, an upstream that costs (almost) nothing.
{_nginx_main(directory, "static", workers)}
    server {{
        listen {HOST}:{port};
        default_type "text/plain; charset=utf-8";
        location = / {{
            return 200 "{greeting}";
        }}
        location = /healthz {{
            return 200 "ok\\n";
        }}
    }}
}}
"""


def nginx_config(directory: Path, listen_port: int, upstream_ports: Sequence[int]) -> str:
    """A minimal nginx.conf: plain HTTP on loopback, the stack's upstream settings."""
    servers = "\n".join(f"        server {HOST}:{port};" for port in upstream_ports)
    return f"""\
# wsgistack bench: nginx in front of one engine; upstream and proxy settings are
# those of nginx/templates/upstream.conf.template and https.conf.template.
{_nginx_main(directory, "nginx", 1)}
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;

    upstream app {{
{servers}
        keepalive 32;
        keepalive_timeout 60s;
        keepalive_requests 10000;
    }}

    server {{
        listen {HOST}:{listen_port};
        client_max_body_size 16m;

        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
    }}
}}
"""


UPLOAD_LUA = f"""\
-- wrk: POST a {UPLOAD_BYTES}-byte body (wrk adds Content-Length)
wrk.method = "POST"
wrk.body = string.rep("x", {UPLOAD_BYTES})
wrk.headers["Content-Type"] = "application/octet-stream"
"""


# -- wrk output -------------------------------------------------------------------

_TIME_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}  # -> milliseconds
_SIZE = r"([0-9.]+)(us|ms|s|m|h)"


@dataclass
class WrkResult:
    requests: int
    duration_s: float
    rps: float
    latency_ms: dict[str, float]  # "50", "75", "90", "99" -> milliseconds
    socket_errors: dict[str, int] = field(default_factory=dict)  # connect, read, write, timeout
    non_2xx_3xx: int = 0

    @property
    def errors(self) -> int:
        return self.non_2xx_3xx + sum(self.socket_errors.values())


def parse_time_ms(text: str) -> float:
    """A wrk duration such as "812.00us", "4.98ms", "1.02s" or "1.50m", in milliseconds."""
    match = re.fullmatch(_SIZE, text.strip())
    if not match:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match.group(1)) * _TIME_UNITS[match.group(2)]


def parse_wrk(output: str) -> WrkResult:
    """The numbers of a ``wrk --latency`` report; raises ValueError if it is not one."""
    rps = re.search(r"^Requests/sec:\s+([0-9.]+)\s*$", output, re.M)
    total = re.search(r"^\s*(\d+) requests in ([0-9.]+(?:us|ms|s|m|h)),", output, re.M)
    if not rps or not total:
        raise ValueError("no 'Requests/sec' or 'N requests in' line in wrk's output")
    latency: dict[str, float] = {}
    distribution = output.partition("Latency Distribution")[2]
    if int(total.group(1)) == 0:
        distribution = ""  # wrk prints 0.00us percentiles when nothing completed
    for percent, value in re.findall(r"^\s*(50|75|90|99)%\s+(\S+)\s*$", distribution, re.M):
        latency[percent] = parse_time_ms(value)
    errors: dict[str, int] = {}
    line = re.search(r"Socket errors:(.*)$", output, re.M)
    if line:
        errors = {kind: int(n) for kind, n in re.findall(r"(\w+) (\d+)", line.group(1))}
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    return WrkResult(
        requests=int(total.group(1)),
        duration_s=parse_time_ms(total.group(2)) / 1000,
        rps=float(rps.group(1)),
        latency_ms=latency,
        socket_errors=errors,
        non_2xx_3xx=int(non_2xx.group(1)) if non_2xx else 0,
    )


# -- results ----------------------------------------------------------------------


@dataclass
class Run:
    """One measured wrk run of one engine in one scenario."""

    round: int
    engine: str
    scenario: str
    workers: int
    threads: int
    rps: float
    p50_ms: float | None
    p99_ms: float | None
    errors: int
    requests: int
    peak_rss_worker_kib: int | None
    peak_rss_total_kib: int | None
    # CPU seconds (user + system) used during the measured run by the engine's
    # processes, by nginx's and by wrk; None when not measured
    engine_cpu_s: float | None = None
    nginx_cpu_s: float | None = None
    client_cpu_s: float | None = None

    def cpu_us_per_request(self, seconds: float | None) -> float | None:
        """``seconds`` of CPU spread over this run's requests, in microseconds each."""
        if seconds is None or not self.requests:
            return None
        return seconds / self.requests * 1e6


@dataclass
class Row:
    """The summary of every round of one engine in one scenario."""

    scenario: str
    engine: str
    workers: int
    threads: int | None  # None: the engine has no threads
    rounds: int
    rps: float
    p50_ms: float | None
    p99_ms: float | None
    peak_rss_worker_mib: float | None
    errors: int
    # medians over the rounds of CPU microseconds per request: engine, nginx, wrk
    engine_cpu_us: float | None = None
    nginx_cpu_us: float | None = None
    client_cpu_us: float | None = None
    vs_sync: float | None = None
    vs_gthread: float | None = None


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def paired_ratio(runs: Sequence[Run], scenario: str, engine: str, base: str) -> float | None:
    """The median over the rounds of ``engine``'s req/s over ``base``'s in the same round
    of ``scenario`` (rounds where both ran and ``base`` served something), or None."""
    by_round = {(r.round, r.engine): r.rps for r in runs if r.scenario == scenario}
    ratios = [
        rps / by_round[number, base]
        for (number, name), rps in by_round.items()
        if name == engine and by_round.get((number, base))
    ]
    return statistics.median(ratios) if ratios else None


def summarize(runs: Sequence[Run]) -> list[Row]:
    """One row per (scenario, engine) in SCENARIOS/ENGINES order, with paired ratios."""
    rows: list[Row] = []
    for scenario in SCENARIOS:
        by_engine: dict[str, Row] = {}
        for engine in ENGINES:
            mine = [r for r in runs if r.scenario == scenario and r.engine == engine]
            if not mine:
                continue
            rss = [r.peak_rss_worker_kib for r in mine if r.peak_rss_worker_kib is not None]
            by_engine[engine] = Row(
                scenario=scenario,
                engine=engine,
                workers=mine[0].workers,
                threads=mine[0].threads if ENGINES[engine].threaded else None,
                rounds=len(mine),
                rps=statistics.median(r.rps for r in mine),
                p50_ms=_median([r.p50_ms for r in mine]),
                p99_ms=_median([r.p99_ms for r in mine]),
                peak_rss_worker_mib=max(rss) / 1024 if rss else None,
                errors=sum(r.errors for r in mine),
                engine_cpu_us=_median([r.cpu_us_per_request(r.engine_cpu_s) for r in mine]),
                nginx_cpu_us=_median([r.cpu_us_per_request(r.nginx_cpu_s) for r in mine]),
                client_cpu_us=_median([r.cpu_us_per_request(r.client_cpu_s) for r in mine]),
            )
        for row in by_engine.values():
            row.vs_sync = paired_ratio(runs, scenario, row.engine, BASELINE)
            row.vs_gthread = paired_ratio(runs, scenario, row.engine, THREADED_BASELINE)
        rows.extend(by_engine.values())
    return rows


def _num(value: float | None, digits: int) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}×"


def _cpu(row: Row) -> str:
    """CPU µs per request as "engine + nginx + wrk", e.g. "44 + 30 + 18"."""
    parts = (row.engine_cpu_us, row.nginx_cpu_us, row.client_cpu_us)
    if all(part is None for part in parts):
        return "—"
    return " + ".join(_num(part, 0) for part in parts)


def render_table(rows: Sequence[Row]) -> str:
    """The summary as a Markdown table."""
    lines = [
        "| scenario | engine | workers×threads | req/s (median) | p50 ms | p99 ms "
        "| peak RSS/worker MiB | CPU µs/request: engine + nginx + wrk | errors "
        "| vs gunicorn sync | vs gunicorn gthread |",
        "|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for row in rows:
        shape = f"{row.workers}×{row.threads}" if row.threads is not None else f"{row.workers}×—"
        lines.append(
            f"| {row.scenario} | {ENGINES[row.engine].label} | {shape} | {_num(row.rps, 0)} "
            f"| {_num(row.p50_ms, 2)} | {_num(row.p99_ms, 2)} "
            f"| {_num(row.peak_rss_worker_mib, 1)} | {_cpu(row)} | {row.errors} "
            f"| {_ratio(row.vs_sync)} | {_ratio(row.vs_gthread)} |"
        )
    return "\n".join(lines) + "\n"


def check_targets(
    runs: Sequence[Run], cpus: int | None = None
) -> list[tuple[str, bool | None, str]]:
    """Issue 3's targets as (target, met — None when not measured —, the numbers).

    With ``cpus`` (the machine's CPU count) the hello target's numbers also give
    the CPU budget per request that 8× gunicorn sync leaves to wrk, nginx and the
    engine together, and what wrk and nginx take of it in front of nginx-static.
    """
    by = {(row.scenario, row.engine): row for row in summarize(runs)}

    def ratio(scenario: str, engine: str, base: str) -> float | None:
        return paired_ratio(runs, scenario, engine, base)

    found: list[tuple[str, bool | None, str]] = []
    vs_sync = ratio("hello", "wsgistack", BASELINE)
    detail = _ratio(vs_sync)
    ceiling = ratio("hello", "nginx-static", BASELINE)
    if ceiling is not None:
        detail += f"; with an upstream that costs nothing (nginx-static) {_ratio(ceiling)}"
    detail += _cpu_budget(by, cpus)
    found.append(("hello ≥ 8× gunicorn sync", None if vs_sync is None else vs_sync >= 8, detail))
    vs_granian = ratio("hello", "wsgistack", "granian")
    found.append(
        (
            "hello ≥ granian",
            None if vs_granian is None else vs_granian >= 1,
            _ratio(vs_granian),
        )
    )
    ours, gthread = by.get(("sleep", "wsgistack")), by.get(("sleep", THREADED_BASELINE))
    met, detail = None, "—"
    if ours and gthread and ours.p99_ms is not None and gthread.p99_ms is not None:
        vs = ours.vs_gthread
        met = vs is not None and vs >= 1 and ours.p99_ms <= gthread.p99_ms
        detail = f"{_ratio(vs)} the req/s, p99 {ours.p99_ms:,.1f} ms vs {gthread.p99_ms:,.1f} ms"
    found.append(("sleep ≥ gunicorn gthread at equal or lower p99", met, detail))
    checked = []  # (ours, gunicorn) peak RSS per worker in each scenario, MiB
    for (scenario, engine), row in by.items():
        base = by.get((scenario, THREADED_BASELINE if SCENARIOS[scenario].threaded else BASELINE))
        if engine == "wsgistack" and base and row.peak_rss_worker_mib and base.peak_rss_worker_mib:
            checked.append((scenario, row.peak_rss_worker_mib, base.peak_rss_worker_mib))
    met = all(a <= b for _, a, b in checked) if checked else None
    detail = ", ".join(f"{n} {a:.1f} vs {b:.1f} MiB" for n, a, b in checked) or "—"
    found.append(("peak RSS per worker ≤ gunicorn's", met, detail))
    return found


def _cpu_budget(by: Mapping[tuple[str, str], Row], cpus: int | None) -> str:
    """What 8× gunicorn sync asks of the CPUs per hello request, from the rows."""
    sync, static, ours = (
        by.get(("hello", name)) for name in (BASELINE, "nginx-static", "wsgistack")
    )
    if not (cpus and sync and sync.rps and static and ours):
        return ""
    front = (static.nginx_cpu_us, static.client_cpu_us)
    if ours.engine_cpu_us is None or None in front:
        return ""
    budget = cpus * 1e6 / (8 * sync.rps)
    return (
        f"; at 8× gunicorn sync ({8 * sync.rps:,.0f} req/s) the {cpus} CPUs give each request "
        f"{budget:.0f} µs of CPU for wrk, nginx and the engine together; wrk and nginx take "
        f"{sum(front):.0f} µs of it in front of nginx-static, and our engine takes "
        f"{ours.engine_cpu_us:.0f} µs"
    )


def render_markdown(meta: dict, runs: Sequence[Run]) -> str:
    """results.md: what ran, the table, how to read it."""
    rows = summarize(runs)
    s = meta["settings"]
    versions = ", ".join(f"{k} {v}" for k, v in meta["versions"].items())
    scenarios = "; ".join(
        f"`{n}` = {SCENARIOS[n].title}, `{SCENARIOS[n].method} {SCENARIOS[n].path}`"
        for n in meta["scenarios"]
    )
    status = " **(interrupted: partial results)**" if meta.get("interrupted") else ""
    failures = "".join(f"- failed: {f}\n" for f in meta.get("failures", []))
    mark = {True: "met", False: "NOT met", None: "not measured"}
    targets = "".join(
        f"- {target}: **{mark[met]}** ({detail})\n"
        for target, met, detail in check_targets(runs, meta.get("cpus"))
    )
    return (
        f"# WSGI engines side by side behind nginx — {meta['started']}{status}\n\n"
        f"{meta['cpus']} CPUs ({meta.get('cpu_model', '?')}), {meta['platform']}; "
        f"{versions}.\n\n"
        f"{s['rounds']} interleaved rounds × {s['duration']} s per run (after {s['warmup']} s "
        f"of warm-up), wrk 1 thread / {s['connections']} connections → nginx (1 worker, "
        f"upstream keep-alive) → engine with {s['workers']} workers; {s['threads']} thread(s) "
        f"per worker, {s['sleep_threads']} for `sleep`. Scenarios: {scenarios}.\n\n"
        f"{render_table(rows)}\n"
        f"Targets (issue 3):\n\n{targets}\n"
        "req/s, p50 and p99 are medians over the rounds; peak RSS/worker is the largest "
        "resident set any one worker process reached (sampled every "
        f"{RSS_SAMPLE_INTERVAL} s); errors are non-2xx/3xx answers plus socket errors, "
        "summed. A ratio is the median over the rounds of the engine's req/s over "
        "gunicorn's in the same round (measured seconds apart) — compare those, not the "
        "absolute numbers, which depend on this machine and its neighbours. `wsgistack` "
        "records its Prometheus metrics (multiprocess mode, as shipped); the other engines "
        "record none. CPU µs/request is the CPU time (user + system, from /proc) the "
        "engine's processes, nginx's processes and wrk used during the run, divided by "
        "the requests served (median over the rounds). No engine writes "
        "an access log. waitress runs one process per worker, each on its own port. "
        "`nginx static (ceiling)` is no WSGI engine: a second nginx answering the greeting "
        "itself, so its row is the most this machine gives the `hello` setup (wrk, nginx "
        "and the upstream share the CPUs).\n"
        f"{failures}"
    )


# -- processes ----------------------------------------------------------------------

_PROCESSES: list[subprocess.Popen] = []


def spawn(argv: Sequence[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start ``argv`` in its own session (so a whole tree can be stopped), output to ``log``."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            list(argv),
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _PROCESSES.append(proc)
    return proc


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    """``sig`` to the process, up to STOP_TIMEOUT to exit, then SIGKILL to its whole group."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(STOP_TIMEOUT)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # leftovers: workers, helper processes
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(STOP_TIMEOUT)
    if proc in _PROCESSES:
        _PROCESSES.remove(proc)


def stop_all() -> None:
    for proc in reversed(list(_PROCESSES)):
        stop(proc)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def children(pids: Sequence[int]) -> list[int]:
    """Processes whose parent is one of ``pids`` (from /proc)."""
    parents = set(pids)
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])  # field 4, after "pid (comm) state"
        if ppid in parents:
            found.append(int(entry))
    return found


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU time (seconds) ``pids`` have used so far (Linux /proc;
    a process gone meanwhile counts 0)."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15
    return ticks / os.sysconf("SC_CLK_TCK")


def _children_cpu_seconds() -> float:
    """User + system CPU seconds of this process's reaped children so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def rss_kib(pid: int) -> int | None:
    """The resident set size of ``pid`` in KiB, or None if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


class RssSampler:
    """Samples the RSS of the worker processes (children of ``mains``, or ``mains``
    themselves when they have none) in a thread; ``peak`` is the largest per pid."""

    def __init__(self, mains: Sequence[int]) -> None:
        self.mains = list(mains)
        self.peak: dict[int, int] = {}
        self.peak_total = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def workers(self) -> list[int]:
        return children(self.mains) or self.mains

    def _sample(self) -> None:
        pids = self.workers()
        total = sum(filter(None, (rss_kib(p) for p in self.mains if p not in pids)))
        for pid in pids:
            value = rss_kib(pid)
            if value is not None:
                self.peak[pid] = max(self.peak.get(pid, 0), value)
                total += value
        self.peak_total = max(self.peak_total, total)

    def _loop(self) -> None:
        while not self._stop.wait(RSS_SAMPLE_INTERVAL):
            self._sample()

    def __enter__(self) -> RssSampler:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(RSS_SAMPLE_INTERVAL * 10)
        self._sample()


def request(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=5)
    try:
        conn.request(method, path, body=body)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def wait_until_answers(port: int, procs: Sequence[subprocess.Popen], log: Path) -> None:
    """GET /healthz on ``port`` until 200; BenchError if a process exits or time runs out."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        for proc in procs:
            if proc.poll() is not None:
                raise BenchError(f"{proc.args[:4]} exited with {proc.returncode}:\n{tail(log)}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            if request(port, "GET", "/healthz")[0] == 200:
                return
        time.sleep(0.1)
    raise BenchError(f"nothing answered on port {port} within {START_TIMEOUT:.0f} s:\n{tail(log)}")


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def check_scenario(port: int, scenario: Scenario) -> None:
    """One request of ``scenario`` on ``port``, checked; BenchError if it is wrong."""
    body = b"x" * UPLOAD_BYTES if scenario.name == "upload" else None
    status, data = request(port, scenario.method, scenario.path, body)
    ok = status == 200
    if scenario.path == "/":
        ok = ok and data == GREETING
    elif scenario.name == "64k":
        ok = ok and len(data) == STREAM_BYTES
    elif scenario.name == "upload":
        ok = ok and json.loads(data).get("bytes") == UPLOAD_BYTES
    elif scenario.name == "sleep":
        ok = ok and json.loads(data).get("ms") == SLEEP_MS
    if not ok:
        raise BenchError(f"{scenario.name}: unexpected answer {status} {data[:120]!r}")


# -- the run ------------------------------------------------------------------------


@dataclass
class Tools:
    nginx: str
    wrk: str


def find_tool(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin:/sbin")


def install_missing() -> None:
    """apt-get install what is missing of nginx-light and wrk (root on Debian only)."""
    wanted = (("nginx", "nginx-light"), ("wrk", "wrk"))
    missing = [package for tool, package in wanted if not find_tool(tool)]
    if not missing:
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return  # check_setup() then says what is missing
    print(f"bench: installing {' '.join(missing)} (apt-get)", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    apt = ["apt-get", "-o", "DPkg::Lock::Timeout=300", "-qq"]  # others may hold the lock
    install = [*apt, "install", "-y", "--no-install-recommends", *missing]
    if subprocess.run(install, env=env, stdout=subprocess.DEVNULL).returncode != 0:
        subprocess.run([*apt, "update"], env=env, check=False)
        subprocess.run(install, env=env, stdout=subprocess.DEVNULL, check=False)


def check_setup(engines: Sequence[Engine]) -> Tools:
    """The tools and Python packages this run needs; BenchError listing what is missing."""
    problems = []
    nginx, wrk = find_tool("nginx"), find_tool("wrk")
    if not nginx or not wrk:
        what = " and ".join(t for t, p in (("nginx", nginx), ("wrk", wrk)) if not p)
        problems.append(
            f"{what} not found: apt-get install nginx-light wrk "
            "(or run `scripts/bench.py --install-missing` as root)"
        )
    modules = sorted({e.module for e in engines if e.module} | {"httptools", "prometheus_client"})
    absent = [m for m in modules if importlib.util.find_spec(m) is None]
    if absent:
        problems.append(
            f"Python packages missing in {sys.executable}: {', '.join(absent)} — run "
            "`make bench` (it creates .venv-bench), or: python3 -m venv .venv-bench && "
            ".venv-bench/bin/pip install -r requirements/bench.txt && "
            ".venv-bench/bin/python scripts/bench.py"
        )
    if not Path("/proc/self/status").exists():
        problems.append("no /proc: this benchmark runs on Linux only")
    if problems:
        raise BenchError("setup incomplete:\n  - " + "\n  - ".join(problems))
    return Tools(nginx=nginx, wrk=wrk)  # type: ignore[arg-type]


def versions(tools: Tools, engines: Sequence[Engine]) -> dict[str, str]:
    found = {"python": sys.version.split()[0]}
    for engine in engines:
        if engine.module:
            with contextlib.suppress(importlib.metadata.PackageNotFoundError):
                found[engine.module] = importlib.metadata.version(engine.module)
    out = subprocess.run([tools.nginx, "-v"], capture_output=True, text=True, timeout=10)
    found["nginx"] = (out.stderr or out.stdout).strip().rpartition("/")[2]
    out = subprocess.run([tools.wrk, "-v"], capture_output=True, text=True, timeout=10)
    match = re.search(r"wrk (\S+)", out.stdout + out.stderr)
    found["wrk"] = match.group(1).rpartition("/")[2] if match else "?"
    return found


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), or "?"."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return "?"


class Session:
    """One engine with the given thread count, and an nginx in front of it."""

    def __init__(
        self, engine: Engine, settings: Settings, threads: int, tools: Tools, tmp: Path
    ) -> None:
        self.engine, self.settings, self.threads, self.tools = engine, settings, threads, tools
        self.dir = Path(tempfile.mkdtemp(prefix=f"{engine.name}-", dir=tmp))
        self.dir.chmod(0o755)
        self.log = self.dir / "engine.log"
        self.procs: list[subprocess.Popen] = []
        self.nginx: subprocess.Popen | None = None
        self.port = 0  # nginx's
        self.engine_port = 0  # the (first) engine process's

    def __enter__(self) -> Session:
        try:
            self._start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _start(self) -> None:
        count = self.settings.workers if self.engine.process_per_port else 1
        ports = [free_port() for _ in range(count)]
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "PYTHONUNBUFFERED": "1",
            "PROMETHEUS_MULTIPROC_DIR": str(self.dir / "metrics"),  # ours, as in the image
        }
        if self.engine.name == "nginx-static":
            conf = static_nginx_config(self.dir, ports[0], self.settings.workers)
            (self.dir / "static.conf").write_text(conf)
        argvs = engine_commands(
            self.engine,
            sys.executable,
            ports,
            self.settings.workers,
            self.threads,
            self.tools.nginx,
            self.dir,
        )
        for argv in argvs:
            self.procs.append(spawn(argv, self.log, env))
        self.engine_port = ports[0]
        for port in ports:
            wait_until_answers(port, self.procs, self.log)
        self._wait_for_workers()
        self.port = free_port()
        conf = self.dir / "nginx.conf"
        conf.write_text(nginx_config(self.dir, self.port, ports))
        nginx_log = self.dir / "nginx.log"
        self.nginx = spawn(
            [self.tools.nginx, "-p", str(self.dir), "-c", str(conf), "-e", str(nginx_log)],
            nginx_log,
        )
        wait_until_answers(self.port, [self.nginx, *self.procs], nginx_log)

    def _wait_for_workers(self) -> None:
        """Until every worker process is up (bounded): RSS is sampled per worker."""
        if self.engine.process_per_port:
            return
        deadline = time.monotonic() + START_TIMEOUT
        while len(children([p.pid for p in self.procs])) < self.settings.workers:
            if time.monotonic() > deadline:
                raise BenchError(f"{self.engine.name}: workers did not start:\n{tail(self.log)}")
            time.sleep(0.1)

    def __exit__(self, *exc: object) -> None:
        if self.nginx is not None:
            stop(self.nginx, signal.SIGQUIT)  # graceful: closes the upstream connections
        for proc in self.procs:
            stop(proc)

    def measure(self, scenario: Scenario, lua: Path, round_no: int) -> Run:
        port = self.engine_port if scenario.direct else self.port
        check_scenario(port, scenario)
        url = f"http://{HOST}:{port}{scenario.path}"
        script = ["-s", str(lua)] if scenario.name == "upload" else []
        if self.settings.warmup:
            self._wrk(url, script, self.settings.warmup)
        mains = [p.pid for p in self.procs]
        engine_pids = mains + children(mains)
        nginx_pids = [self.nginx.pid, *children([self.nginx.pid])] if self.nginx else []
        with RssSampler(mains) as sampler:
            engine_cpu, nginx_cpu = cpu_seconds(engine_pids), cpu_seconds(nginx_pids)
            client_cpu = _children_cpu_seconds()
            result = parse_wrk(self._wrk(url, script, self.settings.duration))
            client_cpu = _children_cpu_seconds() - client_cpu  # wrk: the only child reaped
            engine_cpu = cpu_seconds(engine_pids) - engine_cpu
            nginx_cpu = cpu_seconds(nginx_pids) - nginx_cpu
        rss = self.engine.wsgi
        return Run(
            round=round_no,
            engine=self.engine.name,
            scenario=scenario.name,
            workers=self.settings.workers,
            threads=self.threads,
            rps=result.rps,
            p50_ms=result.latency_ms.get("50"),
            p99_ms=result.latency_ms.get("99"),
            errors=result.errors,
            requests=result.requests,
            # nginx-static's memory is nginx's: not comparable, not shown
            peak_rss_worker_kib=max(sampler.peak.values()) if rss and sampler.peak else None,
            peak_rss_total_kib=(sampler.peak_total or None) if rss else None,
            engine_cpu_s=engine_cpu,
            nginx_cpu_s=nginx_cpu,
            client_cpu_s=client_cpu,
        )

    def _wrk(self, url: str, script: list[str], seconds: int) -> str:
        argv = [self.tools.wrk, "-t1", f"-c{self.settings.connections}", f"-d{seconds}s",
                "--latency", "--timeout", "10s", *script, url]  # fmt: skip
        out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
        if out.returncode != 0:
            raise BenchError(f"wrk failed ({out.returncode}): {out.stderr.strip()[:300]}")
        return out.stdout


def phases(
    settings: Settings, engines: Sequence[Engine], scenarios: Sequence[Scenario]
) -> list[tuple[int, list[Engine], list[Scenario]]]:
    """(threads, engines, scenarios) of each phase: BENCH_THREADS for the scenarios
    without threads, BENCH_SLEEP_THREADS for the others; a phase's engines run side by
    side. Phases with no scenario or no engine are left out."""
    found = []
    for threads, threaded in ((settings.threads, False), (settings.sleep_threads, True)):
        group = [s for s in scenarios if s.threaded == threaded]
        runners = [e for e in engines if any(e.runs(s) for s in group)]
        if group and runners:
            found.append((threads, runners, group))
    return found


def schedule(
    rounds: int, engines: Sequence[Engine], scenarios: Sequence[Scenario]
) -> Iterator[tuple[int, Scenario, Engine]]:
    """(round, scenario, engine) in measuring order: each round runs each scenario on
    every engine that takes part, back to back, starting one engine further along
    than the round before."""
    for round_no in range(1, rounds + 1):
        for scenario in scenarios:
            runners = [e for e in engines if e.runs(scenario)]
            shift = (round_no - 1) % len(runners) if runners else 0
            for engine in [*runners[shift:], *runners[:shift]]:
                yield round_no, scenario, engine


def estimate_seconds(
    settings: Settings, engines: Sequence[Engine], scenarios: Sequence[Scenario]
) -> float:
    """Rough duration of a run with these settings, seconds (for the progress line)."""
    total = 0.0
    for _, runners, group in phases(settings, engines, scenarios):
        measured = sum(1 for _ in schedule(settings.rounds, runners, group))
        total += len(runners) * SESSION_OVERHEAD
        total += measured * (settings.duration + settings.warmup + 0.3)
    return total


def run(
    settings: Settings,
    engines: Sequence[Engine],
    scenarios: Sequence[Scenario],
    tools: Tools,
    out_dir: Path,
) -> bool:
    """Every planned run; writes the report and prints the table. True if interrupted."""
    started = datetime.now(UTC)
    meta = {
        "started": started.strftime("%Y-%m-%d %H:%M:%S UTC"),
        "settings": asdict(settings),
        "engines": [e.name for e in engines],
        "scenarios": [s.name for s in scenarios],
        "versions": versions(tools, engines),
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model(),
        "platform": f"{os.uname().sysname} {os.uname().release}",
        "failures": [],
    }
    runs: list[Run] = []
    report = out_dir / f"bench-{started.strftime('%Y%m%d-%H%M%S')}"
    estimate = estimate_seconds(settings, engines, scenarios)
    print(
        f"bench: {len(engines)} engines × {len(scenarios)} scenarios × {settings.rounds} "
        f"rounds, about {estimate / 60:.1f} min; results in {report}/",
        file=sys.stderr,
    )
    tmp = Path(tempfile.mkdtemp(prefix="wsgistack-bench-"))
    tmp.chmod(0o755)
    lua = tmp / "upload.lua"
    lua.write_text(UPLOAD_LUA)
    begin = time.monotonic()

    def failed(what: str, exc: BaseException) -> None:
        meta["failures"].append(f"{what}: {exc}".splitlines()[0])
        print(f"  FAILED {what}: {exc}", file=sys.stderr)

    try:
        for threads, runners, group in phases(settings, engines, scenarios):
            with contextlib.ExitStack() as stack:
                sessions: dict[str, Session] = {}
                for engine in runners:
                    try:
                        session = Session(engine, settings, threads, tools, tmp)
                        sessions[engine.name] = stack.enter_context(session)
                    except (BenchError, OSError, subprocess.TimeoutExpired) as exc:
                        failed(f"starting {engine.name} ({threads} threads)", exc)
                for round_no, scenario, engine in schedule(settings.rounds, runners, group):
                    if engine.name not in sessions:
                        continue
                    try:
                        result = sessions[engine.name].measure(scenario, lua, round_no)
                    except (BenchError, OSError, ValueError, subprocess.TimeoutExpired) as exc:
                        failed(f"round {round_no} {scenario.name} {engine.name}", exc)
                        continue
                    runs.append(result)
                    print(
                        f"  round {round_no} {scenario.name:<12} {engine.name:<17} "
                        f"{result.rps:>9.1f} req/s  p99 {result.p99_ms or 0:8.2f} ms  "
                        f"errors {result.errors}",
                        file=sys.stderr,
                    )
    except KeyboardInterrupt:
        meta["interrupted"] = True
        print("bench: interrupted, writing what was measured", file=sys.stderr)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        stop_all()
        shutil.rmtree(tmp, ignore_errors=True)
    meta["seconds"] = round(time.monotonic() - begin, 1)
    rows = summarize(runs)
    report.mkdir(parents=True, exist_ok=True)
    (report / "results.json").write_text(
        json.dumps(
            {"meta": meta, "summary": [asdict(r) for r in rows], "runs": [asdict(r) for r in runs]},
            indent=2,
        )
        + "\n"
    )
    markdown = render_markdown(meta, runs)
    (report / "results.md").write_text(markdown)
    print(markdown)
    return bool(meta.get("interrupted"))


_RENAMED = {"ours": "wsgistack"}  # names of wsgistack 0.1, refused


def names_from_env(environ: Mapping[str, str], key: str, known: Mapping[str, object]) -> list:
    """The comma-separated names in ``environ[key]`` (all of ``known`` when unset), in
    ``known``'s order; raises BenchError naming an unknown one."""
    raw = environ.get(key, "").strip()
    if not raw:
        return list(known.values())
    names = {n.strip() for n in raw.split(",") if n.strip()}
    renamed = sorted(names & _RENAMED.keys())
    if renamed:
        old = renamed[0]
        raise BenchError(f"{key}: {old!r} is now called {_RENAMED[old]!r}")
    unknown = sorted(names - set(known))
    if unknown or not names:
        raise BenchError(
            f"{key}: unknown {', '.join(unknown) or '(none)'}; choose from {', '.join(known)}"
        )
    return [value for name, value in known.items() if name in names]


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # like Ctrl-C: stop the engines, write what was measured


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Our WSGI server vs gunicorn, waitress and granian behind the same "
        "nginx. BENCH_* variables change the defaults (see the module docstring)."
    )
    parser.add_argument(
        "--install-missing", action="store_true",
        help="apt-get install nginx-light and wrk if they are missing (root, Debian)",
    )  # fmt: skip
    parser.add_argument("--check", action="store_true", help="check the setup and exit")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        engines = names_from_env(os.environ, "BENCH_ENGINES", ENGINES)
        scenarios = names_from_env(os.environ, "BENCH_SCENARIOS", SCENARIOS)
        if args.install_missing:
            install_missing()
        tools = check_setup(engines)
        if args.check:
            print(f"bench: ready (nginx {tools.nginx}, wrk {tools.wrk}, {sys.executable})")
            return 0
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, _interrupt)
        atexit.register(stop_all)
        interrupted = run(settings, engines, scenarios, tools, REPO / "reports")
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
