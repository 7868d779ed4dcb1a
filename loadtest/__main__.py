"""``python -m loadtest SCENARIO [options]`` (what ``make load`` runs).

Brings the stack up (or uses the running one), runs the scenario's traffic from
a generator container on the stack's frontend network against nginx, prints
progress, and writes reports/<timestamp>-<scenario>/ (report.html, summary.json,
report.md, throughput.png, latency.png). With ``--target URL`` the traffic goes to that
base URL instead (loadtest.target), from a generator on the host's network,
and the stack is left alone. Exit status: 0 when the run completed and met
the scenario's thresholds (errors and all when it has none: they are in the
report); 99 (k6's code) when a threshold failed, after the reports are written
and one line per failed threshold printed (0 with --no-fail-on-threshold, which
reports them the same); 2 on a bad argument, scenario or target; 1 when the
stack, Prometheus or the target failed; 130 when interrupted (Ctrl-C; the app
is put back on the engine it had).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from loadtest import report, runner, scenario, target, thresholds
from loadtest.prometheus import PrometheusError
from loadtest.stack import ENGINES, ROOT, Stack, StackError

DEFAULT_ROUNDS = {1: 1, 2: 4}  # engines compared -> interleaved rounds
THRESHOLDS_FAILED = 99  # exit status: a threshold failed (k6's)


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
    parser.add_argument(
        "--target",
        metavar="URL",
        help="load this base URL (http:// or https://) instead of the local stack's nginx",
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="with --target: do not verify its TLS certificate before the run",
    )
    parser.add_argument(
        "--rate-ceiling",
        type=float,
        default=target.RATE_CEILING,
        metavar="RPS",
        help="with --target on another machine: the most requests/s offered without "
        f"--confirm-rate (default {target.RATE_CEILING:g})",
    )
    parser.add_argument(
        "--confirm-rate",
        action="store_true",
        help="with --target on another machine: allow a rate above --rate-ceiling, or RATE=max",
    )
    parser.add_argument(
        "--no-fail-on-threshold",
        dest="fail_on_threshold",
        action="store_false",
        help=f"report failed thresholds but exit 0, not {THRESHOLDS_FAILED} (FAIL_ON_THRESHOLD=0)",
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
        where = target.STACK
        if args.target is not None:
            where = target.parse(args.target, insecure=args.insecure)
            if args.engine != "wsgistack":  # argparse's default: not chosen
                raise scenario.ScenarioError(
                    "ENGINE chooses the local stack's server; a TARGET's is its own"
                )
            peak = max((stage.rate for stage in chosen.stages), default=chosen.rate)
            target.check_rate(where, None if closed else peak, args.rate_ceiling, args.confirm_rate)
        engines = (
            [target.ENGINE]
            if where.external
            else list(ENGINES)
            if args.engine == "both"
            else [args.engine]
        )
        rounds = _rounds(chosen, args.rounds, len(engines))
    except (scenario.ScenarioError, target.TargetError) as exc:
        print(f"load: {exc}", file=sys.stderr)
        return 2
    try:
        if where.external:
            status = target.preflight(where)
            print(f"load: {where.base} answers ({status})")
        stack = Stack(args.compose_option)
        folder, results, settings = runner.run(
            stack,
            chosen,
            engines,
            "closed" if closed else "open",
            rounds,
            args.reports,
            target=where,
        )
        outcome = thresholds.evaluate(chosen, results, settings, args.fail_on_threshold)
        report.write(folder, settings, results, outcome)
    except (StackError, PrometheusError, target.TargetError) as exc:
        print(f"load: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # the generator is gone and the app on its engine again
        print("\nload: interrupted, no report", file=sys.stderr)
        return 130
    print()
    print((folder / "report.md").read_text())
    print(
        f"load: report in {folder}/report.html "
        "(and report.md, summary.json, throughput.png, latency.png)"
    )
    failed = [c for c in outcome["checks"] if not c["passed"]]
    for check in failed:
        print(f"load: threshold failed: {thresholds.line(check)}", file=sys.stderr)
    if failed and not args.fail_on_threshold:
        print("load: thresholds not enforced (--no-fail-on-threshold): exit 0", file=sys.stderr)
    return THRESHOLDS_FAILED if failed and args.fail_on_threshold else 0


if __name__ == "__main__":
    sys.exit(main())
