"""The load generators' command lines, and reading what they write.

Two well-kept tools from Debian, in the ``loadgen`` image (loadtest/Dockerfile):

* **open loop** — ``h2load --rps`` (nghttp2): requests leave at a constant rate
  whether or not earlier ones have been answered, so a slow response delays no
  later request and the latency percentiles are free of coordinated omission.
  One h2load process per scenario request, at that request's share of the rate,
  all in parallel. ``--log-file`` writes one line per request: start time (µs
  since the epoch), status (-1: stream or connection failed), latency (µs).
  A scenario with ``[[stages]]`` runs its stages one after another, on schedule
  (``open_loop``), each stage's files named ``stage-<k>.<request>``.
* **closed loop** — ``wrk``: each connection sends its next request as soon as
  the previous answer arrives: the maximum throughput the stack sustains. A
  generated Lua script picks each request by weight, writes one line per
  response (completion time, status, latency, request) and, at the end, wrk's
  totals (requests, socket errors by kind) as JSON.

Everything a run needs lands in its folder, mounted at /out in the generator
container: ``run.sh`` (the exact commands), request bodies, the Lua script;
then the tools' logs and outputs next to them.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

from loadtest.scenario import Request, Scenario, ScenarioError
from loadtest.target import STACK, Target

PROXY = "proxy"  # nginx's compose service name, its host name on the frontend network
OUT = "/out"  # the run folder inside the generator container
H2_STREAMS = 100  # concurrent streams per HTTP/2 connection (nginx allows 128)
INACTIVITY_TIMEOUT = 30  # seconds without any byte before a connection counts as failed
WRK_TIMEOUT = 30  # seconds before wrk counts a request as timed out
# A busy Docker engine can answer a new container's first name lookups late.
WAIT_FOR_PROXY = (
    f"for i in $(seq 1 50); do getent hosts {PROXY} >/dev/null && break; sleep 0.2; done"
)
WRK_MAX_CONNECTIONS = 128  # the closed loop runs one wrk thread per connection


@dataclass(frozen=True)
class StagePlan:
    """One stage of an open-loop plan: ``rate`` requests/s for ``duration`` s, ``offered``
    requests in all."""

    rate: float
    duration: float
    offered: int


@dataclass(frozen=True)
class Plan:
    """One generator run: the files to write into its folder and what to expect.

    ``offered`` is the number of requests the open loop sends (None for the
    closed loop, whose count is whatever the stack answers in ``duration`` s);
    ``stages`` are a ramp's stages in order (none for a constant rate).
    """

    mode: str  # "open" (h2load, constant rate) or "closed" (wrk, maximum throughput)
    files: dict[str, bytes]
    offered: int | None
    duration: float
    connections: int
    stages: tuple[StagePlan, ...] = ()


def open_loop(scenario: Scenario, duration: float, target: Target = STACK) -> Plan:
    """h2load processes, one per request of ``scenario``, for ``duration`` seconds, against
    ``target`` (HTTP/1.1 for an http:// target: HTTP/2 without TLS is rarely served).

    Request i gets rate x share_i requests/s over max(1, round(connections x share_i))
    connections and sends exactly round(rate x share_i x duration) requests (at least 1),
    evenly spaced: each connection sends every connections / rate_i s, and the
    connections start 1 / rate_i s apart.

    A scenario with stages runs in one round (``duration`` is the scenario's): per
    stage such h2load processes at the stage's rate, each stage started on its planned
    schedule — run.sh sleeps a stage's duration, then starts the next — whatever the
    earlier stages do: a stage that cannot keep up neither delays nor thins the
    arrivals of the next; it runs on beside it, and its actual end is recorded.
    """
    if scenario.stages:
        return _staged(scenario, duration, target)
    files = _bodies(scenario)
    lines = [
        "#!/bin/sh",
        f"# Open loop, scenario {scenario.name}: one h2load per request, in parallel,",
        "# each at its share of the rate; <name>.log has one line per request.",
        "set -u",
        *_wait_for(target),
    ]
    offered = connections = 0
    for request in scenario.requests:
        line, count, clients = _h2load(scenario, request, scenario.rate, duration, "", target)
        offered += count
        connections += clients
        lines.append(line)
    lines.append("wait")
    files["run.sh"] = ("\n".join(lines) + "\n").encode()
    return Plan("open", files, offered, duration, connections)


def _staged(scenario: Scenario, duration: float, target: Target) -> Plan:
    """The open loop of a scenario with stages (see ``open_loop``)."""
    if duration != scenario.duration:
        raise ScenarioError(
            f"scenario {scenario.name} has [[stages]]: it runs in one round per engine"
        )
    files = _bodies(scenario)
    lines = [
        "#!/bin/sh",
        f"# Open loop, scenario {scenario.name}: {len(scenario.stages)} stages one after another,",
        "# each started on schedule (when the one before has had its planned duration),",
        "# whatever the earlier ones do. Per stage one h2load per request, in parallel, at",
        "# its share of the stage's rate; stage-<k>.<name>.log: one line per request;",
        "# stage-<k>.started, stage-<k>.finished: when the stage started and when its last",
        "# h2load exited (epoch s).",
        "set -u",
        *_wait_for(target),
    ]
    stages = []
    connections = 0
    for number, stage in enumerate(scenario.stages, 1):
        prefix = stage_prefix(number)
        lines += [
            f"# stage {number}: {stage.rate:g} requests/s for {stage.duration:g} s",
            "(",
            f"date +%s.%N >{OUT}/{prefix}started",
        ]
        offered = clients = 0
        for request in scenario.requests:
            line, count, used = _h2load(
                scenario, request, stage.rate, stage.duration, prefix, target
            )
            offered += count
            clients += used
            lines.append(line)
        lines += ["wait", f"date +%s.%N >{OUT}/{prefix}finished", ") &"]
        if number < len(scenario.stages):
            lines.append(f"sleep {stage.duration:g}")
        stages.append(StagePlan(stage.rate, stage.duration, offered))
        connections = max(connections, clients)
    lines.append("wait")
    files["run.sh"] = ("\n".join(lines) + "\n").encode()
    offered = sum(stage.offered for stage in stages)
    return Plan("open", files, offered, duration, connections, tuple(stages))


def stage_prefix(number: int) -> str:
    """How the files of stage ``number`` (1-based) begin: ``stage-<number>.``."""
    return f"stage-{number}."


def _bodies(scenario: Scenario) -> dict[str, bytes]:
    """The POST requests' bodies, <name>.body, for h2load --data (one copy for every stage)."""
    return {f"{r.name}.body": r.body for r in scenario.requests if r.method == "POST"}


def _h2load(
    scenario: Scenario,
    request: Request,
    rate: float,
    duration: float,
    prefix: str,
    target: Target,
) -> tuple[str, int, int]:
    """run.sh's line for ``request`` at its share of ``rate`` (requests/s) for ``duration``
    s against ``target``, its output files named ``<prefix><name>``; and the requests and
    connections it uses."""
    share = scenario.share(request)
    rate = rate * share
    count = max(1, round(rate * duration))
    clients = min(count, max(1, round(scenario.connections * share)))
    # Connections open one per 1/rate s (per ms in batches above 1000/s), so the
    # clients' request timers are out of phase: arrivals evenly spaced, not bursts.
    period_ms = max(1, round(1000 / rate))
    args = [
        "h2load",
        f"--requests={count}",
        f"--clients={clients}",
        f"--rps={rate / clients:.6g}",
        f"--rate={max(1, round(rate * period_ms / 1000))}",
        f"--rate-period={period_ms}ms",
        f"--connection-inactivity-timeout={INACTIVITY_TIMEOUT}",
        f"--log-file={OUT}/{prefix}{request.name}.log",
    ]
    if protocol(scenario, target) == "http/1.1":
        args += ["--h1", "--max-concurrent-streams=1"]
    else:
        args += [f"--max-concurrent-streams={H2_STREAMS}"]
    for name, value in request.headers:
        args.append(f"--header={name.lower()}: {value}")
    if request.method == "POST":
        args.append(f"--data={OUT}/{request.name}.body")
    args.append(target.url(request.path))
    command = " ".join(shlex.quote(arg) for arg in args)
    out = f"{OUT}/{prefix}{request.name}"
    return f"( {command} >{out}.out 2>&1; echo $? >{out}.rc ) &", count, clients


def closed_loop(scenario: Scenario, duration: float, target: Target = STACK) -> Plan:
    """One wrk run over ``scenario.connections`` connections for ``duration`` s (whole
    seconds) against ``target``.

    One wrk thread per connection, so that each thread's request() and response()
    calls alternate and the script can time every request.
    """
    if scenario.connections > WRK_MAX_CONNECTIONS:
        raise ScenarioError(
            f"the closed loop (RATE=max) runs one wrk thread per connection: at most "
            f"{WRK_MAX_CONNECTIONS} connections, got {scenario.connections}"
        )
    seconds = max(1, round(duration))
    files = {"wrk.lua": _lua(scenario, urlsplit(target.base).path).encode()}
    for request in scenario.requests:
        if request.method == "POST":
            files[f"{request.name}.body"] = request.body
    args = [
        "wrk",
        f"--threads={scenario.connections}",
        f"--connections={scenario.connections}",
        f"--duration={seconds}s",
        f"--timeout={WRK_TIMEOUT}s",
        f"--script={OUT}/wrk.lua",
        target.base,
    ]
    command = " ".join(shlex.quote(arg) for arg in args)
    files["run.sh"] = (
        "#!/bin/sh\n"
        f"# Closed loop, scenario {scenario.name}: wrk with a generated script (wrk.lua)\n"
        "# that picks each request by weight; wrk-<thread>.tsv has one line per response.\n"
        + "".join(line + "\n" for line in _wait_for(target))
        + f"{command} >{OUT}/wrk.out 2>&1; echo $? >{OUT}/wrk.rc\n"
    ).encode()
    return Plan("closed", files, None, float(seconds), scenario.connections)


def protocol(scenario: Scenario, target: Target) -> str:
    """The protocol the open loop speaks: the scenario's, but HTTP/1.1 on an http:// target."""
    return "http/1.1" if target.scheme == "http" else scenario.protocol


def _wait_for(target: Target) -> list[str]:
    """run.sh's first lines: on the stack's network, wait until nginx's name resolves."""
    return [] if target.external else [WAIT_FOR_PROXY]


def _lua_string(value: str) -> str:
    """A Lua string literal (JSON's escapes are valid Lua for these ASCII strings)."""
    return json.dumps(value, ensure_ascii=True)


def _lua(scenario: Scenario, prefix: str = "") -> str:
    """wrk.lua for ``scenario``; ``prefix``: the target's path prefix, before every path."""
    entries = []
    for request in scenario.requests:
        headers = ", ".join(f"[{_lua_string(k)}] = {_lua_string(v)}" for k, v in request.headers)
        body = _lua_string(f"{OUT}/{request.name}.body") if request.method == "POST" else "nil"
        entries.append(
            f"  {{weight = {request.weight!r}, method = {_lua_string(request.method)}, "
            f"path = {_lua_string(prefix + request.path)}, headers = {{{headers}}}, "
            f"body_file = {body}}},"
        )
    return _LUA_TEMPLATE.replace("@REQUESTS@", "\n".join(entries)).replace("@OUT@", OUT)


_LUA_TEMPLATE = """\
-- Generated by `python -m loadtest` for wrk: the scenario's requests, picked by weight.
-- One connection per thread, so request() and response() alternate in each thread:
-- every response is logged with its completion time, status, latency and request.
local requests = {
@REQUESTS@
}

local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } loadtest_timespec;
int clock_gettime(int clock_id, loadtest_timespec *tp);
]]
local timespec = ffi.new("loadtest_timespec")
local function now()  -- CLOCK_REALTIME, seconds since the epoch
  ffi.C.clock_gettime(0, timespec)
  return tonumber(timespec.tv_sec) + tonumber(timespec.tv_nsec) * 1e-9
end

local counter = 0
function setup(thread)  -- main state: number the threads
  counter = counter + 1
  thread:set("id", counter)
end

local formatted, cumulative, total, log, flushed = {}, {}, 0, nil, 0
local sent_at, kind, pending = 0, 1, nil
function init(args)  -- each thread: pre-format every request, open its log
  for i, r in ipairs(requests) do
    local body = nil
    if r.body_file then
      local f = assert(io.open(r.body_file, "rb"))
      body = f:read("*a")
      f:close()
    end
    formatted[i] = wrk.format(r.method, r.path, r.headers, body)
    total = total + r.weight
    cumulative[i] = total
  end
  math.randomseed(id * 7919)
  log = assert(io.open(string.format("@OUT@/wrk-%d.tsv", id), "w"))
end

function request()
  -- wrk calls request() again while nothing of the current request is written yet
  -- (a TLS write that must be retried): hand it the same request, since OpenSSL
  -- needs the same buffer on a retry, and keep its send time.
  if pending == nil then
    local x = math.random() * total
    kind = #cumulative
    for i = 1, #cumulative do
      if x < cumulative[i] then kind = i; break end
    end
    pending = formatted[kind]
    sent_at = now()
  end
  return pending
end

function response(status, headers, body)
  local t = now()
  pending = nil
  log:write(string.format("%.6f\\t%d\\t%.6f\\t%d\\n", t, status, t - sent_at, kind - 1))
  if t - flushed >= 1 then log:flush(); flushed = t end
end

function done(summary, latency, requests)
  local e = summary.errors
  local f = assert(io.open("@OUT@/wrk-summary.json", "w"))
  f:write(string.format(
    '{"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}}\\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout))
  f:close()
end
"""


# -- reading the results -----------------------------------------------------------

PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p99.9": 99.9}
_H2LOAD_REQUESTS = re.compile(
    r"requests: (?P<total>\d+) total, (?P<started>\d+) started, (?P<done>\d+) done, "
    r"(?P<succeeded>\d+) succeeded, (?P<failed>\d+) failed, (?P<errored>\d+) errored, "
    r"(?P<timeout>\d+) timeout"
)


@dataclass
class Responses:
    """Every response of one run: completion time (epoch s), status (-1: failed), latency (s)
    and ``kind``, the index of the request in the scenario."""

    end: np.ndarray
    status: np.ndarray
    latency: np.ndarray
    kind: np.ndarray

    @classmethod
    def empty(cls) -> Responses:
        return cls(np.zeros(0), np.zeros(0, dtype=int), np.zeros(0), np.zeros(0, dtype=int))

    @classmethod
    def concat(cls, parts: list[Responses]) -> Responses:
        if not parts:
            return cls.empty()
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in _FIELDS))

    def __len__(self) -> int:
        return len(self.end)


_FIELDS = ("end", "status", "latency", "kind")


@dataclass
class StageRun:
    """One stage of a finished run: ``number`` (1-based), its plan, when it started and when
    its last h2load exited (epoch s, written by run.sh; None if it never got there, e.g.
    the run was cut at its time limit), its responses, and how many of the requests it
    offered got no answer."""

    number: int
    plan: StagePlan
    started: float | None
    finished: float | None
    responses: Responses
    not_completed: int


def parse_h2load_log(text: str, kind: int) -> Responses:
    """h2load --log-file lines: start µs since the epoch, status, latency µs (tab-separated).

    A trailing line without its newline (still being written) is ignored.
    """
    complete = text[: text.rfind("\n") + 1]
    if not complete:
        return Responses.empty()
    rows = np.loadtxt(complete.splitlines(), dtype=np.int64, ndmin=2, usecols=(0, 1, 2))
    start, status, latency = rows[:, 0] / 1e6, rows[:, 1], rows[:, 2] / 1e6
    return Responses(start + latency, status, latency, np.full(len(rows), kind))


def parse_wrk_log(text: str) -> Responses:
    """Our wrk.lua's lines: completion time (epoch s), status, latency (s), request index."""
    complete = text[: text.rfind("\n") + 1]
    if not complete:
        return Responses.empty()
    rows = np.loadtxt(complete.splitlines(), dtype=float, ndmin=2, usecols=(0, 1, 2, 3))
    return Responses(rows[:, 0], rows[:, 1].astype(int), rows[:, 2], rows[:, 3].astype(int))


def parse_h2load_output(text: str) -> dict[str, int]:
    """The counts of h2load's closing "requests:" line (total, started, done, succeeded,
    failed, errored, timeout); empty if h2load did not get that far."""
    match = _H2LOAD_REQUESTS.search(text)
    return {key: int(value) for key, value in match.groupdict().items()} if match else {}


class Tail:
    """Reads what was appended to a file since the last call, whole lines only."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def read(self) -> str:
        try:
            with self.path.open("rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
        except FileNotFoundError:
            return ""
        cut = data.rfind(b"\n") + 1
        self.offset += cut
        return data[:cut].decode()


def read_run(plan: Plan, scenario: Scenario, folder: Path) -> tuple[Responses, dict]:
    """The responses and the tool's own totals of a finished run in ``folder``.

    Totals: ``exit_codes`` {process: status, None if it never finished},
    ``messages`` {process: its last line, for those that failed}, ``not_completed`` (open loop:
    offered minus answered, e.g. connections refused or the run cut at its
    time limit), for the closed loop wrk's summary (requests, socket errors
    by kind, latency percentiles in µs), and for a plan with stages ``stages``, a
    StageRun per stage (processes are named ``stage-<k>.<request>`` there).
    """
    totals: dict = {"exit_codes": {}, "messages": {}}
    if plan.mode == "open" and plan.stages:
        stages = totals["stages"] = []
        for number, stage in enumerate(plan.stages, 1):
            prefix = stage_prefix(number)
            responses, missing = _read_open(totals, scenario, folder, prefix, stage.offered)
            times = _time(folder / f"{prefix}started"), _time(folder / f"{prefix}finished")
            stages.append(StageRun(number, stage, *times, responses, missing))
        totals["not_completed"] = sum(stage.not_completed for stage in stages)
        return Responses.concat([stage.responses for stage in stages]), totals
    if plan.mode == "open":
        responses, totals["not_completed"] = _read_open(
            totals, scenario, folder, "", plan.offered or 0
        )
        return responses, totals
    parts = [parse_wrk_log(_read(path)) for path in sorted(folder.glob("wrk-*.tsv"))]
    totals["exit_codes"]["wrk"] = _exit_code(folder / "wrk.rc")
    _message(totals, "wrk", folder / "wrk.out")
    summary = folder / "wrk-summary.json"
    totals["wrk"] = json.loads(summary.read_text()) if summary.is_file() else None
    return Responses.concat(parts), totals


def _read_open(
    totals: dict, scenario: Scenario, folder: Path, prefix: str, offered: int
) -> tuple[Responses, int]:
    """The responses of the h2load processes ``<prefix><request>`` and how many of the
    ``offered`` requests got no answer; their exit codes and messages go into ``totals``."""
    parts = []
    done = 0
    for index, request in enumerate(scenario.requests):
        name = prefix + request.name
        parts.append(parse_h2load_log(_read(folder / f"{name}.log"), index))
        done += parse_h2load_output(_read(folder / f"{name}.out")).get("done", 0)
        totals["exit_codes"][name] = _exit_code(folder / f"{name}.rc")
        _message(totals, name, folder / f"{name}.out")
    responses = Responses.concat(parts)
    return responses, max(0, offered - max(done, len(responses)))


def _message(totals: dict, name: str, output: Path) -> None:
    """Keep the last line a tool printed when it failed (e.g. "getaddrinfo() failed")."""
    if totals["exit_codes"][name] != 0:
        lines = [line for line in _read(output).splitlines() if line.strip()]
        totals["messages"][name] = lines[-1] if lines else "no output"


def _read(path: Path) -> str:
    return path.read_text() if path.is_file() else ""


def _time(path: Path) -> float | None:
    """Seconds since the epoch from ``date +%s.%N``; None if the file is not (fully) there."""
    try:
        return float(_read(path))
    except ValueError:
        return None


def _exit_code(path: Path) -> int | None:
    text = _read(path).strip()
    return int(text) if text.lstrip("-").isdigit() else None
