"""One load test: rounds of a scenario against one or both engines, then the report.

With two engines the rounds are interleaved (A B, B A, A B, ...): each round
runs every engine once, for duration / rounds seconds each, on the same stack,
so the slow drifts of a shared machine hit both alike and the per-round
ratios show how much a single comparison can be trusted.

Each round opens on a fresh scrape: once the round is ready to start (the
generator's files written, every container sampled), the runner waits for the
app's next successful scrape and only then starts the generator, so nothing
that finished before the round falls in its window; after the last answer it
waits for the next scrape again (loadtest.prometheus reads the counts between
the two). For the run, nginx gets the load test's per-client limits
(loadtest/compose.yaml), so the generator — one client address — measures the
app and its server, not the flood limits; the limits the proxy had are put back
at the end, like the app's engine.
"""

from __future__ import annotations

import math
import secrets
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import numpy as np

from loadtest import analysis, environment, generators, thresholds
from loadtest.generators import Plan, Responses
from loadtest.prometheus import Prometheus
from loadtest.scenario import Scenario
from loadtest.stack import ENGINES, Sampler, Stack
from loadtest.target import STACK, Target

SETTLE = 0.5  # seconds after the last answer before the closing scrape may count
PROGRESS_EVERY = 1.0  # seconds between progress updates on a terminal
PROGRESS_EVERY_LOG = 5.0  # ... and when the output is a file or a pipe


@dataclass
class Round:
    """One measured run of one engine: what the generator saw and what the server counted."""

    engine: str
    index: int
    folder: Path
    plan: Plan
    launched: float  # epoch s: the generator container was started
    finished: float  # epoch s: it exited
    timed_out: bool
    responses: Responses
    totals: dict
    client: dict = field(default_factory=dict)
    server: dict = field(default_factory=dict)
    containers: dict = field(default_factory=dict)
    series: dict = field(default_factory=dict)


def schedule(engines: list[str], rounds: int) -> list[tuple[str, int]]:
    """(engine, round number) in run order: every round runs each engine once, the order
    reversed every other round (A B, B A, ...), so neither engine always goes first and
    back-to-back runs of one engine need no switch."""
    order = []
    for number in range(1, rounds + 1):
        names = engines if number % 2 else list(reversed(engines))
        order += [(engine, number) for engine in names]
    return order


def time_limit(plan: Plan) -> float:
    """Seconds after which a generator still running is stopped (its results are kept)."""
    return 1.5 * plan.duration + 45


class Progress:
    """Live progress of a round: elapsed time, responses, current rate, errors."""

    def __init__(self, out: TextIO, label: str, plan: Plan) -> None:
        self.out, self.label, self.plan = out, label, plan
        self.tty = out.isatty()
        self.every = PROGRESS_EVERY if self.tty else PROGRESS_EVERY_LOG
        self.last_print = 0.0
        self.history: deque[tuple[float, int]] = deque(maxlen=64)
        self.answered = self.errors = 0

    def add(self, responses: Responses) -> None:
        """Count newly logged answers; a failed request or a 4xx/5xx is an error."""
        self.answered += len(responses)
        self.errors += int(((responses.status < 0) | (responses.status >= 400)).sum())

    def show(self, elapsed: float, final: bool = False) -> None:
        """Print the line if it is time (or ``final``); ``elapsed``: seconds since launch.
        The rate is that of the last two seconds. On a terminal the line is rewritten."""
        now = time.monotonic()
        self.history.append((now, self.answered))
        if not final and now - self.last_print < self.every:
            return
        self.last_print = now
        window = [(t, n) for t, n in self.history if now - t <= 2.0]
        rate = (
            (window[-1][1] - window[0][1]) / (window[-1][0] - window[0][0])
            if len(window) > 1 and window[-1][0] > window[0][0]
            else 0.0
        )
        offered = f" of {self.plan.offered}" if self.plan.offered is not None else ""
        line = (
            f"  {self.label}  {elapsed:5.1f}/{self.plan.duration:.0f} s  "
            f"requests {self.answered}{offered}  {rate:7.1f} req/s  errors {self.errors}"
        )
        if self.tty:
            self.out.write("\r" + line + "\x1b[K" + ("\n" if final else ""))  # K: erase to end
        else:
            self.out.write(line + "\n")
        self.out.flush()


def run_round(
    stack: Stack,
    prometheus: Prometheus | None,
    sampler: Sampler,
    scenario: Scenario,
    plan: Plan,
    engine: str,
    index: int,
    rounds: int,
    folder: Path,
    out: TextIO,
    target: Target = STACK,
) -> Round:
    """Run ``plan`` once against the stack's current engine (or ``target``) and collect
    both sides; without ``prometheus`` (a target outside the stack) the client's only."""
    folder.mkdir(parents=True)
    for name, content in plan.files.items():
        (folder / name).write_bytes(content)
    name = f"{stack.project}-loadgen-{secrets.token_hex(4)}"
    progress = Progress(out, f"{engine:>8} round {index}/{rounds}", plan)
    tails = _tails(plan, scenario, folder)
    timed_out = False
    sampler.generator_name = name
    sampler.wait_for_samples()
    # the window opens after the round is ready
    before = prometheus.wait_for_scrape(time.time()) if prometheus else None
    launched = time.time()
    process = stack.generator(folder, name, host_network=target.external)
    try:
        while process.poll() is None:
            elapsed = time.time() - launched
            if elapsed > time_limit(plan):
                timed_out = True
                break
            for tail, parse in tails:
                progress.add(parse(tail.read()))
            progress.show(elapsed)
            time.sleep(0.25)
    finally:
        if process.poll() is None:
            stack.remove(name)
            process.wait(timeout=30)
    finished = time.time()
    for tail, parse in tails:
        progress.add(parse(tail.read()))
    progress.show(finished - launched, final=True)
    responses, totals = generators.read_run(plan, scenario, folder)
    for process_name, message in totals["messages"].items():
        out.write(f"load: {process_name} failed ({message}); its output is in {folder}\n")
    result = Round(engine, index, folder, plan, launched, finished, timed_out, responses, totals)
    result.client = client_summary(result, scenario)
    if prometheus is not None and before is not None:
        after = prometheus.wait_for_scrape(finished + SETTLE)
        quantiles = thresholds.server_quantiles(scenario.thresholds)
        result.server = server_summary(result, prometheus.counts(before, after, quantiles))
    result.containers = sampler.usage(launched, finished)
    result.series = round_series(result)
    return result


def _tails(plan: Plan, scenario: Scenario, folder: Path) -> list:
    if plan.mode == "open":
        prefixes = [generators.stage_prefix(n) for n in range(1, len(plan.stages) + 1)] or [""]
        return [
            (
                generators.Tail(folder / f"{prefix}{request.name}.log"),
                lambda text, kind=index: generators.parse_h2load_log(text, kind),
            )
            for prefix in prefixes
            for index, request in enumerate(scenario.requests)
        ]
    return [
        (generators.Tail(folder / f"wrk-{thread}.tsv"), generators.parse_wrk_log)
        for thread in range(1, plan.connections + 1)
    ]


def _starts(responses: Responses) -> np.ndarray:
    return responses.end - responses.latency


def client_summary(result: Round, scenario: Scenario) -> dict:
    """The generator's side of one round (latency in seconds, throughput in requests/s).

    Latency percentiles are over every answered request, whatever its status;
    ``duration_seconds`` runs from the first request sent to the last answer.
    """
    responses, plan, totals = result.responses, result.plan, result.totals
    answered = responses.status > 0
    errors = analysis.status_errors(responses.status)
    starts = _starts(responses)
    span = float(responses.end.max() - starts.min()) if len(responses) else 0.0
    summary: dict = {"mode": plan.mode, "timed_out": result.timed_out}
    if plan.mode == "open":
        errors["not_completed"] = totals["not_completed"]
        summary |= {
            "offered": plan.offered,
            "requests": int(answered.sum()),
            "duration_seconds": span,
            "send_seconds": float(starts.max() - starts.min()) if len(responses) else 0.0,
        }
    else:
        wrk = totals.get("wrk") or {}
        errors.pop("failed")  # wrk logs answers only; its socket errors come from its totals
        for kind in ("connect", "read", "write", "timeout"):
            errors[kind] = wrk.get("errors", {}).get(kind, 0)
        summary |= {
            "offered": None,
            "requests": int(answered.sum()),
            "duration_seconds": wrk.get("duration_us", span * 1e6) / 1e6,
        }
    summary["latency_seconds"] = analysis.latency_summary(responses.latency[answered])
    summary["by_request"] = {
        request.name: {
            "requests": int((answered & (responses.kind == i)).sum()),
            "errors": int(
                (((responses.status < 0) | (responses.status >= 400)) & (responses.kind == i)).sum()
            ),
            "latency_seconds": analysis.latency_summary(
                responses.latency[answered & (responses.kind == i)]
            ),
        }
        for i, request in enumerate(scenario.requests)
    }
    summary["errors"] = errors
    summary["errors_total"] = sum(errors.values())
    summary["throughput_rps"] = (
        summary["requests"] / summary["duration_seconds"] if summary["duration_seconds"] else None
    )
    summary["exit_codes"] = totals["exit_codes"]
    summary["generator_messages"] = totals["messages"]
    return summary


def server_summary(result: Round, counts) -> dict:
    """The server's side of one round, from Prometheus (``counts``: a ServerCounts of the
    round's window, the probe routes left out), beside what the client saw.

    ``client_requests`` are the answers that reached the app: the client's answers
    less the 429s, which nginx gives itself (its flood limits). ``count_tolerance``:
    how far that and the server's count may differ — the requests whose fate the
    client does not know: in the closed loop, one per connection in flight when
    wrk stops plus those its socket errors broke; in the open loop, those that
    failed or were not completed (the server may have finished them or not).
    ``latency_quantiles_seconds``: the histogram's quantiles the thresholds cross-check,
    keyed by q as ``f"{q:g}"`` (e.g. "0.95").
    """
    client = result.client
    errors = client["errors"]
    if result.plan.mode == "closed":
        in_flight = result.plan.connections + errors["read"] + errors["write"] + errors["timeout"]
    else:
        in_flight = errors["failed"] + errors["not_completed"]
    duration = client["duration_seconds"]
    return {
        "window": [counts.before, counts.after],
        "requests": counts.requests,
        "by_status": counts.by_status,
        "request_rate_rps": counts.requests / duration if duration else None,
        "ratio_5xx": counts.errors_5xx / counts.requests if counts.requests else None,
        "latency_p99_seconds": counts.p99_seconds,
        "latency_quantiles_seconds": {f"{q:g}": s for q, s in counts.quantiles_seconds.items()},
        "worker_restarts": counts.worker_restarts,
        "client_requests": client["requests"] - errors["http_429"],
        "count_tolerance": in_flight,
    }


def round_series(result: Round) -> dict:
    """Per-second throughput and p50/p99 latency from the first request sent on, over the
    round's whole seconds (a last, partial second would show as a false drop)."""
    responses = result.responses
    if not len(responses):
        return {"t": [], "throughput": [], "p50": [], "p99": []}
    t0 = float(_starts(responses).min())
    seconds = max(1, math.floor(float(responses.end.max()) - t0))
    return analysis.per_second(responses, t0, seconds)


def run(
    stack: Stack,
    scenario: Scenario,
    engines: list[str],
    mode: str,
    rounds: int,
    reports: Path,
    out: TextIO = sys.stdout,
    target: Target = STACK,
) -> tuple[Path, list[Round], dict]:
    """Run the whole test and return its report folder, the rounds and the settings.

    Against the local stack: leaves the app on the engine it found and the proxy with
    the limits it found, whatever happens. Against an external ``target`` (``engines``
    is then ``[loadtest.target.ENGINE]``): the stack is neither started nor changed, and the
    rounds have the client's figures only.
    """
    started = datetime.now(UTC)
    folder = reports / f"{started:%Y%m%dT%H%M%SZ}-{scenario.name}"
    segment = scenario.duration / rounds
    plan_for = generators.open_loop if mode == "open" else generators.closed_loop
    plan = plan_for(scenario, segment, target)
    results: list[Round] = []
    settings: dict = {}
    if target.external:
        out.write(f"load: target {target.base}, outside the stack: the client's figures only\n")
        stack.build_generator()
        with Sampler(stack, services=()) as sampler:
            for engine, index in schedule(engines, rounds):
                raw = folder / "raw" / f"{engine}-{index}"
                results.append(
                    run_round(
                        stack,
                        None,
                        sampler,
                        scenario,
                        plan,
                        engine,
                        index,
                        rounds,
                        raw,
                        out,
                        target,
                    )
                )
    else:
        settings = _run_on_stack(stack, scenario, engines, plan, rounds, folder, out, results)
    return (
        folder,
        results,
        {
            "scenario": scenario.name,
            "description": scenario.description,
            "mode": mode,
            "generator": "h2load (nghttp2)" if mode == "open" else "wrk",
            "protocol": generators.protocol(scenario, target) if mode == "open" else "http/1.1",
            "rate_rps": scenario.rate if mode == "open" else None,
            "duration_seconds": scenario.duration,
            "round_seconds": plan.duration,
            "rounds": rounds,
            "connections": plan.connections,
            "engines": engines,
            "target": target.base,
            "target_local": not target.external,
            "tls_verified": target.verify if target.scheme == "https" else None,
            **settings,
            "stack": stack.project,
            "started": started.isoformat(timespec="seconds"),
            "finished": datetime.now(UTC).isoformat(timespec="seconds"),
            "scenario_file": str(scenario.source),
            "stages": [
                {"rate_rps": s.rate, "duration_seconds": s.duration} for s in scenario.stages
            ],
            "soak": scenario.mode == "soak",
            "p99_limit_seconds": thresholds.p99_limit_seconds(scenario.thresholds),
            "environment": environment.describe(),
        },
    )


def _run_on_stack(
    stack: Stack,
    scenario: Scenario,
    engines: list[str],
    plan: Plan,
    rounds: int,
    folder: Path,
    out: TextIO,
    results: list[Round],
) -> dict:
    """The rounds against the local stack's engines, appended to ``results``; returns the
    settings only such a run has (the engines' WSGI_SERVER, nginx's limits for the run)."""
    out.write(f"load: stack {stack.project}: ")
    out.flush()
    started_here = stack.ensure_up()
    out.write("started\n" if started_here else "running, using it\n")
    stack.build_generator()
    prometheus = Prometheus(stack.prometheus_url())
    original, limits = stack.wsgi_server(), stack.proxy_limits()
    with Sampler(stack) as sampler:
        try:
            restarted = stack.set_proxy_limits()
            load_limits = stack.proxy_limits()
            if restarted:
                out.write(
                    f"load: nginx restarted with the load test's per-client limits "
                    f"({_show(load_limits)}); its own ({_show(limits)}) come back at the end\n"
                )
                out.flush()
            for engine, index in schedule(_first(engines, original), rounds):
                if stack.wsgi_server() != ENGINES[engine]:
                    out.write(
                        f"load: switching the app to {engine} (WSGI_SERVER={ENGINES[engine]})\n"
                    )
                    out.flush()
                    stack.switch(ENGINES[engine])
                raw = folder / "raw" / f"{engine}-{index}"
                results.append(
                    run_round(
                        stack, prometheus, sampler, scenario, plan, engine, index, rounds, raw, out
                    )
                )
        finally:
            if stack.wsgi_server() != original:
                out.write(f"load: switching the app back to WSGI_SERVER={original}\n")
                stack.switch(original)
            if stack.proxy_limits() != limits:
                out.write(f"load: putting the proxy's limits back ({_show(limits)})\n")
                stack.set_proxy_limits(limits)
    return {
        "wsgi_server": {engine: ENGINES[engine] for engine in engines},
        "proxy_limits": load_limits,
    }


def _first(engines: list[str], wsgi_server: str) -> list[str]:
    """``engines`` with the one the app runs now first (one switch fewer)."""
    running = [e for e in engines if ENGINES[e] == wsgi_server]
    return running + [e for e in engines if e not in running]


def _show(limits: dict[str, str]) -> str:
    """``RATE_LIMIT=... RATE_LIMIT_BURST=... CONN_LIMIT=...``."""
    return " ".join(f"{name}={value}" for name, value in limits.items())
