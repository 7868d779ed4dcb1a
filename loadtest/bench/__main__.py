"""``python -m loadtest.bench [--install-missing] [--check]`` (what ``make bench`` runs).

Exit status: 0 when the run completed (failed runs are listed in the report), 2 on a
bad BENCH_* setting, a bad scenario file or an incomplete setup, 130 when interrupted
(Ctrl-C, SIGTERM or SIGHUP: the engines are stopped and what was measured is written).
"""

from __future__ import annotations

import argparse
import atexit
import os
import signal
import sys
from collections.abc import Sequence

from loadtest.bench import processes, run, scenarios, tools
from loadtest.bench.engines import ENGINES
from loadtest.bench.settings import BenchError, Settings, names_from_env
from loadtest.scenario import ScenarioError


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # like Ctrl-C: stop the engines, write what was measured


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest.bench",
        description="Our WSGI server vs gunicorn, waitress, granian, bjoern and uWSGI "
        "behind the same nginx. BENCH_* variables change the defaults (see docs/benchmark.md).",
    )
    parser.add_argument(
        "--install-missing", action="store_true",
        help="apt-get install nginx-light and wrk if they are missing (root, Debian), and "
        "build the selected C servers (bjoern, uWSGI) with their build packages",
    )  # fmt: skip
    parser.add_argument("--check", action="store_true", help="check the setup and exit")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        engines = names_from_env(os.environ, "BENCH_ENGINES", ENGINES)
        chosen = names_from_env(os.environ, "BENCH_SCENARIOS", scenarios.SCENARIOS)
        failed = tools.install_missing(engines) if args.install_missing else {}
        found = tools.check_setup(engines)
        skipped = tools.left_out(engines, failed)  # C servers not installed: run the others
        for line in skipped.values():
            print(f"bench: {line}", file=sys.stderr)
        engines = [e for e in engines if e.name not in skipped]
        if args.check:
            print(f"bench: ready (nginx {found.nginx}, wrk {found.wrk}, {sys.executable})")
            return 0
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, _interrupt)
        atexit.register(processes.stop_all)
        reports = processes.REPO / "reports"
        interrupted = run.run(settings, engines, chosen, found, reports, list(skipped.values()))
    except (BenchError, ScenarioError) as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
