"""``python -m loadtest SCENARIO [options]`` (what ``make load`` runs).

Brings the stack up (or uses the running one), runs the scenario's traffic from
a generator container on the stack's frontend network against nginx, prints
progress, and writes reports/<timestamp>-<scenario>/ (summary.json, report.md,
throughput.png, latency.png). Exit status: 0 when the run completed (errors
and all: they are in the report), 2 on a bad argument or scenario, 1 when the
stack or Prometheus failed, 130 when interrupted (Ctrl-C; the app is put back
on the engine it had).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from loadtest import report, runner, scenario
from loadtest.prometheus import PrometheusError
from loadtest.stack import ENGINES, ROOT, Stack, StackError

DEFAULT_ROUNDS = {1: 1, 2: 4}  # engines compared -> interleaved rounds


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest",
        description="Load-test the stack through nginx and write a report with plots.",
    )
    parser.add_argument(
        "scenario", nargs="?", help=f"a name ({', '.join(scenario.available())}) or a .toml path"
    )
    parser.add_argument(
        "--engine",
        default="wsgistack",
        type=_engine,
        choices=[*ENGINES, "both"],
        help="wsgistack (WSGI_SERVER=wsgistack); gunicorn; both: interleaved rounds",
    )
    parser.add_argument(
        "--rate",
        help="requests/s offered, open loop (h2load); 'max': closed loop at full speed (wrk); "
        "default: the scenario's",
    )
    parser.add_argument("--duration", help="measured time per engine, e.g. 30s, 2m")
    parser.add_argument("--connections", type=int, help="TCP connections to nginx")
    parser.add_argument(
        "--rounds", type=int, help="rounds per engine (default: 1; 4 with both; a ramp or soak: 1)"
    )
    parser.add_argument("--reports", type=Path, default=ROOT / "reports", help="reports folder")
    parser.add_argument(
        "--compose-option",
        action="append",
        default=[],
        metavar="OPTION",
        help="extra global option for docker compose (repeat), e.g. --compose-option=-p "
        "--compose-option=myproject",
    )
    return parser.parse_args(argv)


def _engine(text: str) -> str:
    """The --engine value; wsgistack 0.1's name ``custom`` is refused naming the new one."""
    if text == "custom":
        raise argparse.ArgumentTypeError("'custom' is now called 'wsgistack' (ENGINE=wsgistack)")
    return text


def _rate(text: str) -> float:
    try:
        rate = float(text)
    except ValueError:
        rate = 0.0
    if not rate > 0:
        raise scenario.ScenarioError(
            f"RATE must be requests per second above 0, or max; got {text!r}"
        )
    return rate


def _rounds(chosen: scenario.Scenario, asked: int | None, engines: int) -> int:
    """Rounds per engine: ROUNDS=, else DEFAULT_ROUNDS; a ramp or a soak runs in one round
    (each stage, each minute measured once per engine, in one go)."""
    if chosen.stages or chosen.mode == "soak":
        if asked not in (None, 1):
            what = "[[stages]]" if chosen.stages else 'mode = "soak"'
            raise scenario.ScenarioError(
                f"ROUNDS: scenario {chosen.name} has {what}: it runs one round per engine, "
                f"got {asked}"
            )
        return 1
    rounds = DEFAULT_ROUNDS[engines] if asked is None else asked
    if not 1 <= rounds <= 20:
        raise scenario.ScenarioError(f"rounds must be 1..20, got {rounds}")
    return rounds


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    if not args.scenario:
        print(
            "load: say which scenario: SCENARIO="
            + "|".join(scenario.available())
            + " (or a path to your own .toml)",
            file=sys.stderr,
        )
        return 2
    try:
        chosen = scenario.load(args.scenario)
        closed = args.rate == "max"
        rate = None if closed or args.rate is None else _rate(args.rate)
        duration = None if args.duration is None else scenario.parse_duration(args.duration)
        chosen = chosen.with_overrides(rate=rate, duration=duration, connections=args.connections)
        if closed and chosen.stages:
            raise scenario.ScenarioError(
                f"RATE=max runs the closed loop (wrk), which has no rate to ramp: scenario "
                f"{chosen.name} has [[stages]], it runs open loop only"
            )
        engines = list(ENGINES) if args.engine == "both" else [args.engine]
        rounds = _rounds(chosen, args.rounds, len(engines))
    except scenario.ScenarioError as exc:
        print(f"load: {exc}", file=sys.stderr)
        return 2
    try:
        stack = Stack(args.compose_option)
        folder, results, settings = runner.run(
            stack, chosen, engines, "closed" if closed else "open", rounds, args.reports
        )
        report.write(folder, settings, results)
    except (StackError, PrometheusError) as exc:
        print(f"load: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # the generator is gone and the app on its engine again
        print("\nload: interrupted, no report", file=sys.stderr)
        return 130
    print()
    print((folder / "report.md").read_text())
    print(f"load: report in {folder}/ (report.md, summary.json, throughput.png, latency.png)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
