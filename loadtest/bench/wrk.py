"""wrk: its ``--latency`` report parsed into numbers, and the Lua script for a request
with a method other than GET, headers or a body."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from loadtest.scenario import Request

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


def parse(output: str) -> WrkResult:
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


def needs_script(request: Request) -> bool:
    """Whether wrk needs a Lua script for ``request`` (a plain GET needs none)."""
    return request.method != "GET" or bool(request.headers) or bool(request.body)


def script(request: Request, body_file: Path) -> str:
    """A wrk Lua script that sends ``request``, its body read from ``body_file`` once
    (wrk adds Content-Length). JSON's string escapes are valid Lua for these strings."""
    lines = [f"-- wrk: {request.method} {request.path} ({len(request.body)}-byte body)"]
    lines.append(f"wrk.method = {json.dumps(request.method)}")
    if request.body:
        lines += [
            f'local file = assert(io.open({json.dumps(str(body_file))}, "rb"))',
            'wrk.body = file:read("*a")',
            "file:close()",
        ]
    lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in request.headers]
    return "\n".join(lines) + "\n"
