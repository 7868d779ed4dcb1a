"""Scenarios: what traffic a load test sends, one TOML file each.

A scenario file (``loadtest/scenarios/<name>.toml``, or any path) holds:

    description = "one line: what this traffic stands for"
    rate = 100           # requests per second offered, open loop (RATE= overrides)
    duration = "30s"     # measured time per engine: 500ms, 30s, 2m, 1h (DURATION= overrides)
    connections = 8      # TLS connections to nginx (CONNECTIONS= overrides)
    protocol = "h2"      # "h2" or "http/1.1" (open loop; the closed loop, wrk, is HTTP/1.1)

    [[request]]          # one or more; each is an endpoint and its share of the traffic
    name = "hello"       # label in the report: letters, digits, "-" and "_"
    method = "GET"       # GET or POST
    path = "/"           # request target, origin-form (RFC 9112 §3.2.1)
    weight = 1           # share of the traffic, relative to the other requests
    headers = { "Content-Type" = "application/json" }   # optional
    body = '{"a": 1}'    # optional, POST only; or body_bytes = 1048576 (that many bytes)
    expect = { status = [200, 201] }   # optional: the statuses that pass (k6: 200-399)

    [thresholds]         # optional: pass/fail criteria in k6's form (loadtest.thresholds)
    http_req_failed = "rate<0.01"
    http_req_duration = ["p(95)<200", "p(99)<500"]       # milliseconds
    "http_req_duration{name:hello}" = "p(99)<50"         # one request of the scenario

    [bench]              # optional: settings of `make bench` (loadtest/bench/scenarios.py)

A ramp replaces ``rate`` and ``duration`` with ``[[stages]]`` tables, run in
order, each holding its rate for its duration (k6's ``ramping-arrival-rate``
ramps linearly between targets; h2load sends at a constant rate, so we step):

    [[stages]]           # at most MAX_STAGES; rate and duration as above
    rate = 50
    duration = "10s"

``mode = "soak"`` marks a long constant-rate run (``rate``, ``duration`` of at
least a minute, no stages) whose report has a per-minute series.

Every run is bounded: at most MAX_DURATION seconds per engine and at most
MAX_REQUESTS requests offered per engine in the open loop (for a ramp: the
stages' durations and requests, summed).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

from loadtest import thresholds
from loadtest.thresholds import Threshold, ThresholdError

SCENARIOS_DIR = Path(__file__).resolve().parent / "scenarios"
MAX_DURATION = 3600.0  # seconds of measured load per engine
MAX_REQUESTS = 2_000_000  # requests offered per engine (open loop)
MAX_STAGES = 50  # [[stages]] tables per scenario
SOAK_MIN_DURATION = 60.0  # seconds: a soak's series is per minute
MODES = ("load", "soak")  # "soak": one long constant-rate run, reported per minute
MAX_BODY_BYTES = 16 * 1024 * 1024  # the stack's LIMIT_REQUEST_BODY default
PROTOCOLS = ("h2", "http/1.1")
METHODS = ("GET", "POST")
EXPECT_STATUS = tuple(range(200, 400))  # k6's expected statuses by default: 200-399
_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)?")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_NAME = re.compile(r"[A-Za-z0-9_-]+")


class ScenarioError(ValueError):
    """A scenario file, or an override, is missing, malformed or out of bounds."""


@dataclass(frozen=True)
class Request:
    """One kind of request in a scenario.

    ``weight`` is its share of the traffic relative to the scenario's other
    requests; ``body`` is sent as the request content (POST only);
    ``expect_status``: the statuses that pass its check (k6's expected statuses).
    """

    name: str
    method: str
    path: str
    weight: float
    headers: tuple[tuple[str, str], ...]
    body: bytes
    expect_status: tuple[int, ...]


@dataclass(frozen=True)
class Stage:
    """One step of a ramp: ``rate`` requests/s offered (open loop) for ``duration`` seconds."""

    rate: float
    duration: float


@dataclass(frozen=True)
class Scenario:
    """A validated scenario: rate in requests/s (open loop), duration in seconds,
    ``thresholds`` parsed from its [thresholds] table (loadtest.thresholds).

    With ``stages``, ``duration`` is the stages' sum and ``rate`` their mean offered
    rate (requests offered / duration), so ``rate * duration`` is always the number
    of requests offered per engine.
    """

    name: str
    description: str
    rate: float
    duration: float
    connections: int
    protocol: str
    requests: tuple[Request, ...]
    source: Path
    thresholds: tuple[Threshold, ...]
    bench: dict = field(default_factory=dict)  # the [bench] table, read by loadtest.bench
    stages: tuple[Stage, ...] = ()
    mode: str = "load"

    def share(self, request: Request) -> float:
        """The fraction (0..1] of the traffic that ``request`` gets."""
        return request.weight / sum(r.weight for r in self.requests)

    def with_overrides(
        self,
        rate: float | None = None,
        duration: float | None = None,
        connections: int | None = None,
    ) -> Scenario:
        """This scenario with the given settings replaced, validated again; a scenario
        with stages takes no rate or duration (its stages set both)."""
        if self.stages and (rate is not None or duration is not None):
            raise ScenarioError(
                f"RATE= and DURATION= do not apply to scenario {self.name}: its [[stages]] "
                "set each stage's rate and duration (edit them, or copy the file)"
            )
        changed = replace(
            self,
            rate=self.rate if rate is None else rate,
            duration=self.duration if duration is None else duration,
            connections=self.connections if connections is None else connections,
        )
        _check_bounds(changed, "override")
        return changed


def parse_duration(value: str | int | float, setting: str = "duration") -> float:
    """Seconds from ``30``, ``"30s"``, ``"500ms"``, ``"2m"`` or ``"1h"``; raises ScenarioError."""
    if isinstance(value, bool):
        raise ScenarioError(f"{setting}: expected a duration like 30s, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.fullmatch(value.strip())
        if not match:
            raise ScenarioError(f"{setting}: expected a duration like 30s or 2m, got {value!r}")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds <= 0:
        raise ScenarioError(f"{setting}: must be more than 0 seconds, got {value!r}")
    return seconds


def available() -> list[str]:
    """Names of the scenarios shipped in loadtest/scenarios/, sorted."""
    return sorted(path.stem for path in SCENARIOS_DIR.glob("*.toml"))


def find(name_or_path: str) -> Path:
    """The file of a shipped scenario's name, or the given path to a .toml file."""
    path = Path(name_or_path)
    if path.suffix == ".toml":
        if not path.is_file():
            raise ScenarioError(f"scenario file {path} does not exist")
        return path
    shipped = SCENARIOS_DIR / f"{name_or_path}.toml"
    if not shipped.is_file():
        raise ScenarioError(
            f"no scenario {name_or_path!r}; choose one of {', '.join(available())} "
            "or give a path to a .toml file"
        )
    return shipped


def load(name_or_path: str) -> Scenario:
    """Read and validate a scenario by name or path; raises ScenarioError naming the problem."""
    path = find(name_or_path)
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: not valid TOML: {exc}") from None
    return parse(data, path)


def parse(data: dict, path: Path) -> Scenario:
    """Validate a scenario's TOML table (see the module docstring for the fields)."""
    where = str(path)
    known = {"description", "rate", "duration", "connections", "protocol", "request"}
    known |= {"thresholds", "bench", "stages", "mode"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ScenarioError(f"{where}: unknown setting(s) {', '.join(unknown)}")
    requests = data.get("request")
    if not isinstance(requests, list) or not requests:
        raise ScenarioError(f"{where}: needs at least one [[request]] table")
    if not isinstance(data.get("bench", {}), dict):
        raise ScenarioError(f"{where}: bench must be a table ([bench])")
    protocol = data.get("protocol", "h2")
    if protocol not in PROTOCOLS:
        raise ScenarioError(f"{where}: protocol must be one of {PROTOCOLS}, got {protocol!r}")
    parsed = tuple(_request(table, f"{where}: request {i + 1}") for i, table in enumerate(requests))
    try:
        limits = thresholds.parse(data.get("thresholds", {}), [r.name for r in parsed])
    except ThresholdError as exc:
        raise ScenarioError(f"{where}: {exc}") from None
    mode = data.get("mode", MODES[0])
    if mode not in MODES:
        raise ScenarioError(f"{where}: mode must be one of {MODES}, got {mode!r}")
    stages = _stages(data, mode, where)
    if stages:
        duration = sum(stage.duration for stage in stages)
        rate = sum(stage.rate * stage.duration for stage in stages) / duration
    else:
        rate = _number(data, "rate", where)
        duration = parse_duration(data.get("duration", "30s"), f"{where}: duration")
    scenario = Scenario(
        name=path.stem,
        description=str(data.get("description", "")),
        rate=rate,
        duration=duration,
        connections=int(_number(data, "connections", where, default=8)),
        protocol=protocol,
        requests=parsed,
        source=path,
        thresholds=limits,
        bench=data.get("bench", {}),
        stages=stages,
        mode=mode,
    )
    names = [r.name for r in scenario.requests]
    if len(set(names)) != len(names):
        raise ScenarioError(f"{where}: request names must be unique, got {names}")
    _check_bounds(scenario, where)
    return scenario


def _stages(data: dict, mode: str, where: str) -> tuple[Stage, ...]:
    """The [[stages]] tables, in order; none when the scenario has no ``stages`` key."""
    if "stages" not in data:
        return ()
    tables = data["stages"]
    if (
        not isinstance(tables, list)
        or not 1 <= len(tables) <= MAX_STAGES
        or not all(isinstance(table, dict) for table in tables)
    ):
        raise ScenarioError(f"{where}: stages must be 1..{MAX_STAGES} [[stages]] tables")
    beside = sorted({"rate", "duration"} & set(data))
    if beside:
        raise ScenarioError(
            f"{where}: {' and '.join(beside)} must not be set beside [[stages]]: "
            "each stage has its own rate and duration"
        )
    if mode == "soak":
        raise ScenarioError(f'{where}: mode = "soak" is one constant rate: no [[stages]]')
    stages = []
    for i, table in enumerate(tables):
        at = f"{where}: stage {i + 1}"
        unknown = sorted(set(table) - {"rate", "duration"})
        if unknown:
            raise ScenarioError(f"{at}: unknown setting(s) {', '.join(unknown)}")
        if "duration" not in table:
            raise ScenarioError(f"{at}: duration is required")
        stages.append(
            Stage(_number(table, "rate", at), parse_duration(table["duration"], f"{at}: duration"))
        )
    return tuple(stages)


def _number(table: dict, key: str, where: str, default: float | None = None) -> float:
    value = table.get(key, default)
    if value is None:
        raise ScenarioError(f"{where}: {key} is required")
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ScenarioError(f"{where}: {key} must be a number above 0, got {value!r}")
    return float(value)


def _request(table: dict, where: str) -> Request:
    known = {"name", "method", "path", "weight", "headers", "body", "body_bytes", "expect"}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ScenarioError(f"{where}: unknown setting(s) {', '.join(unknown)}")
    name = table.get("name", "")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ScenarioError(f"{where}: name must be letters, digits, - or _, got {name!r}")
    method = table.get("method", "GET")
    if method not in METHODS:
        raise ScenarioError(f"{where}: method must be one of {METHODS}, got {method!r}")
    path = table.get("path", "")
    if not isinstance(path, str) or not path.startswith("/") or any(c.isspace() for c in path):
        raise ScenarioError(f"{where}: path must start with / and hold no spaces, got {path!r}")
    headers = table.get("headers", {})
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and "\n" not in k + v for k, v in headers.items()
    ):
        raise ScenarioError(f"{where}: headers must be a table of strings")
    if "body" in table and "body_bytes" in table:
        raise ScenarioError(f"{where}: give body or body_bytes, not both")
    if "body" in table:
        body = str(table["body"]).encode()
    elif "body_bytes" in table:
        size = table["body_bytes"]
        if isinstance(size, bool) or not isinstance(size, int) or not 0 < size <= MAX_BODY_BYTES:
            raise ScenarioError(f"{where}: body_bytes must be 1..{MAX_BODY_BYTES}, got {size!r}")
        body = bytes(i % 251 for i in range(251)) * (size // 251) + bytes(range(size % 251))
    else:
        body = b""
    if body and method != "POST":
        raise ScenarioError(f"{where}: a body needs method POST, got {method}")
    return Request(
        name=name,
        method=method,
        path=path,
        weight=_number(table, "weight", where, default=1),
        headers=tuple(headers.items()),
        body=body,
        expect_status=_expect_status(table.get("expect", {}), where),
    )


def _expect_status(expect: object, where: str) -> tuple[int, ...]:
    """``expect = { status = [200, 201] }``: the statuses that pass; EXPECT_STATUS if absent."""
    if not isinstance(expect, dict) or set(expect) - {"status"}:
        raise ScenarioError(f"{where}: expect must be a table like {{ status = [200, 201] }}")
    if "status" not in expect:
        return EXPECT_STATUS
    status = expect["status"]
    if (
        not isinstance(status, list)
        or not status
        or not all(type(code) is int and 100 <= code <= 599 for code in status)
    ):
        raise ScenarioError(
            f"{where}: expect.status must be a list of HTTP statuses 100..599, got {status!r}"
        )
    return tuple(status)


def _check_bounds(scenario: Scenario, where: str) -> None:
    if scenario.duration > MAX_DURATION:
        raise ScenarioError(
            f"{where}: duration must be at most {MAX_DURATION:.0f} s, got {scenario.duration:g} s"
        )
    if scenario.rate * scenario.duration > MAX_REQUESTS:
        got = (
            f"{scenario.rate * scenario.duration:.0f} over the stages"
            if scenario.stages
            else f"{scenario.rate:g}/s x {scenario.duration:g} s"
        )
        raise ScenarioError(
            f"{where}: rate x duration must be at most {MAX_REQUESTS} requests, got {got}"
        )
    if scenario.mode == "soak" and scenario.duration < SOAK_MIN_DURATION:
        raise ScenarioError(
            f"{where}: a soak's duration must be at least {SOAK_MIN_DURATION:.0f} s "
            f"(its series is per minute), got {scenario.duration:g} s"
        )
    if not 1 <= scenario.connections <= 1000:
        raise ScenarioError(f"{where}: connections must be 1..1000, got {scenario.connections}")
