"""A whole run: the plan (phases by thread count, then the pinned phase; rounds in
rotated order), the sessions side by side, and the report in reports/bench-<time>/
(results.json, results.md)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from loadtest import environment
from loadtest.bench import pinning, processes, profile, table, wrk
from loadtest.bench.engines import Engine
from loadtest.bench.results import Run
from loadtest.bench.scenarios import DEMO_APP, Scenario, app_label
from loadtest.bench.session import Session
from loadtest.bench.settings import BenchError, Settings
from loadtest.bench.tools import Tools, versions

SESSION_OVERHEAD = 2.5  # rough seconds to start and stop one engine, for the estimate


@dataclass
class Phase:
    """Engines started side by side with ``workers`` workers of ``threads`` threads
    serving ``app`` (MODULE:NAME), measured on ``scenarios``; ``pins`` the CPUs of a
    pinned phase (None: shared CPUs)."""

    workers: int
    threads: int
    engines: list[Engine]
    scenarios: list[Scenario]
    app: str
    pins: pinning.Pinning | None = None


def phases(
    settings: Settings,
    engines: Sequence[Engine],
    scenarios: Sequence[Scenario],
    pins: pinning.Pinning | None = None,
) -> list[Phase]:
    """The phases of a run: on shared CPUs with BENCH_WORKERS workers, BENCH_THREADS
    threads for the scenarios without threads and BENCH_SLEEP_THREADS for the others;
    then, with BENCH_PINNED and ``pins`` (pinning.plan(): None on one CPU), the
    scenarios marked ``pinned`` again with ONE worker pinned to ``pins.engine``, nginx
    and wrk on ``pins.load``. A phase's engines run side by side and serve one app:
    the scenarios of another app ([bench] app) get a phase of their own. Phases with no
    scenario or no engine are left out."""
    plans = [(settings.workers, None)]
    if settings.pinned and pins is not None:
        plans.append((1, pins))
    found = []
    for workers, pinned in plans:
        for threads, threaded in ((settings.threads, False), (settings.sleep_threads, True)):
            group = [s for s in scenarios if s.threaded == threaded and (s.pinned or not pinned)]
            for app in dict.fromkeys(s.app for s in group):  # in the scenarios' order
                served = [s for s in group if s.app == app]
                runners = [e for e in engines if any(e.runs(s) for s in served)]
                if runners:
                    found.append(Phase(workers, threads, runners, served, app, pinned))
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
    settings: Settings,
    engines: Sequence[Engine],
    scenarios: Sequence[Scenario],
    pins: pinning.Pinning | None = None,
) -> float:
    """Rough duration of a run with these settings, seconds (for the progress line)."""
    total = 0.0
    for phase in phases(settings, engines, scenarios, pins):
        measured = sum(1 for _ in schedule(settings.rounds, phase.engines, phase.scenarios))
        total += len(phase.engines) * SESSION_OVERHEAD
        total += measured * (settings.duration + settings.warmup + 0.3)
        profiled = [  # profile.timing "after": an extra run each
            e for s in phase.scenarios for e in phase.engines
            if e.runs(s) and profile.timing(e.name, s.name, phase.pins is not None) == "after"
        ]  # fmt: skip
        total += len(profiled) * settings.duration
    return total


def write_scripts(scenarios: Sequence[Scenario], folder: Path) -> dict[str, Path]:
    """wrk's Lua script (and request body) in ``folder`` for each scenario that needs one:
    {scenario name: script path}."""
    scripts = {}
    for scenario in scenarios:
        if wrk.needs_script(scenario.request):
            body = folder / f"{scenario.name}.body"
            body.write_bytes(scenario.request.body)
            scripts[scenario.name] = folder / f"{scenario.name}.lua"
            scripts[scenario.name].write_text(wrk.script(scenario.request, body))
    return scripts


def commit() -> str:
    """The checkout's commit (``git describe --always --dirty``), or "?" outside git."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=processes.REPO,
            capture_output=True,
            text=True,
            timeout=10,
        )
        if out.returncode == 0:
            return out.stdout.strip()
    return "?"


def keep_logs(tmp: Path, logs: Path) -> None:
    """Copy every non-empty log the sessions wrote (``tmp``/SESSION/*.log: the
    engine's, nginx's) to ``logs``/SESSION/, SESSION naming the engine and phase."""
    for log in sorted(tmp.glob("*/*.log")):
        if log.stat().st_size:
            target = logs / log.parent.name / log.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(log, target)


def run(
    settings: Settings,
    engines: Sequence[Engine],
    scenarios: Sequence[Scenario],
    tools: Tools,
    out_dir: Path,
    skipped: Sequence[str] = (),
) -> bool:
    """Every planned run; writes the report and prints the table. True if interrupted.
    ``skipped``: one line for each engine left out (not installed), for the report."""
    started = datetime.now(UTC)
    pins = pinning.plan(os.sched_getaffinity(0))
    meta = {
        "started": started.strftime("%Y-%m-%d %H:%M:%S UTC"),
        "commit": commit(),
        "settings": asdict(settings),
        "engines": [e.name for e in engines],
        "scenarios": [s.name for s in scenarios],
        "versions": versions(tools, engines),
        "machine": environment.describe(),
        # the pinned phase's CPUs, or None: BENCH_PINNED=0, or fewer than two CPUs
        "pinning": asdict(pins) if settings.pinned and pins else None,
        "failures": list(skipped),
    }
    if settings.pinned and pins is None:
        print("bench: one CPU only: no pinned runs (they need two)", file=sys.stderr)
    runs: list[Run] = []
    report = out_dir / f"bench-{started.strftime('%Y%m%d-%H%M%S')}"
    estimate = estimate_seconds(settings, engines, scenarios, pins)
    print(
        f"bench: {len(engines)} engines × {len(scenarios)} scenarios × {settings.rounds} "
        f"rounds, about {estimate / 60:.1f} min; results in {report}/",
        file=sys.stderr,
    )
    tmp = Path(tempfile.mkdtemp(prefix="wsgistack-bench-"))
    tmp.chmod(0o755)
    scripts = write_scripts(scenarios, tmp)
    begin = time.monotonic()

    def failed(what: str, exc: BaseException) -> None:
        meta["failures"].append(f"{what}: {exc}".splitlines()[0])
        print(f"  FAILED {what}: {exc}", file=sys.stderr)

    try:
        for phase in phases(settings, engines, scenarios, pins):
            where = ("pinned " if phase.pins else "") + f"{phase.workers}×{phase.threads}"
            if phase.app != DEMO_APP:
                where += f" {app_label(phase.app)}"
            with contextlib.ExitStack() as stack:
                sessions: dict[str, Session] = {}
                for engine in phase.engines:
                    try:
                        session = Session(
                            engine,
                            settings,
                            phase.workers,
                            phase.threads,
                            phase.app,
                            tools,
                            tmp,
                            phase.pins,
                        )
                        sessions[engine.name] = stack.enter_context(session)
                    except (BenchError, OSError, subprocess.TimeoutExpired) as exc:
                        failed(f"starting {engine.name} ({where})", exc)
                rounds = schedule(settings.rounds, phase.engines, phase.scenarios)
                for round_no, scenario, engine in rounds:
                    if engine.name not in sessions:
                        continue
                    script = scripts.get(scenario.name)
                    try:
                        result = sessions[engine.name].measure(scenario, script, round_no)
                    except (BenchError, OSError, ValueError, subprocess.TimeoutExpired) as exc:
                        failed(f"round {round_no} {scenario.name} {engine.name} ({where})", exc)
                        continue
                    runs.append(result)
                    print(
                        f"  round {round_no} {scenario.name:<12} {engine.name:<17} {where:<12} "
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
        processes.stop_all()
        keep_logs(tmp, report / "logs")
        shutil.rmtree(tmp, ignore_errors=True)
    meta["seconds"] = round(time.monotonic() - begin, 1)
    rows = table.summarize(runs)
    report.mkdir(parents=True, exist_ok=True)
    (report / "results.json").write_text(
        json.dumps(
            {
                "meta": meta,
                "summary": [asdict(r) for r in rows],
                "targets": [
                    {"target": target, "met": met, "detail": detail}
                    for target, met, detail in table.check_targets(runs)
                ],
                "runs": [asdict(r) for r in runs],
            },
            indent=2,
        )
        + "\n"
    )
    markdown = table.render_markdown(meta, runs)
    (report / "results.md").write_text(markdown)
    print(markdown)
    return bool(meta.get("interrupted"))
