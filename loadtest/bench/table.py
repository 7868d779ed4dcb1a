"""From runs to what a reader sees: the summary per engine and scenario with paired
ratios, the Markdown tables (pinned: CPU per request; shared CPUs), issue 15's targets,
and results.md."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from loadtest import analysis
from loadtest.bench.engines import BASELINE, ENGINES, THREADED_BASELINE
from loadtest.bench.results import Row, Run
from loadtest.bench.sampling import RSS_SAMPLE_INTERVAL
from loadtest.bench.scenarios import SCENARIOS


def paired_ratio(
    runs: Sequence[Run],
    scenario: str,
    engine: str,
    base: str,
    pinned: bool = False,
    value: Callable[[Run], float | None] = lambda r: r.rps,
) -> float | None:
    """The median over the rounds of ``engine``'s ``value`` (req/s unless given) over
    ``base``'s in the same round of ``scenario`` on shared CPUs (``pinned``: in the
    pinned phase), rounds where both ran and ``base``'s is not 0 or None; or None."""
    by_round = {
        (r.round, r.engine): value(r) for r in runs if r.scenario == scenario and r.pinned == pinned
    }
    return analysis.median(
        analysis.ratio(mine, by_round.get((number, base)))
        for (number, name), mine in by_round.items()
        if name == engine
    )


def engine_cpu_us(run: Run) -> float | None:
    """The engine's CPU microseconds per request in ``run``."""
    return run.cpu_us_per_request(run.engine_cpu_s)


def summarize(runs: Sequence[Run]) -> list[Row]:
    """One row per (scenario, engine) in SCENARIOS/ENGINES order with paired ratios,
    the shared-CPU rows first, then the pinned ones."""
    rows: list[Row] = []
    for pinned, scenario in [(p, s) for p in (False, True) for s in SCENARIOS]:
        by_engine: dict[str, Row] = {}
        for engine in ENGINES:
            mine = [
                r
                for r in runs
                if r.scenario == scenario and r.engine == engine and r.pinned == pinned
            ]
            if not mine:
                continue
            rss = [r.peak_rss_worker_kib for r in mine if r.peak_rss_worker_kib is not None]
            by_engine[engine] = Row(
                scenario=scenario,
                engine=engine,
                workers=mine[0].workers,
                threads=mine[0].threads if ENGINES[engine].threaded else None,
                rounds=len(mine),
                rps=analysis.median(r.rps for r in mine),
                p50_ms=analysis.median(r.p50_ms for r in mine),
                p99_ms=analysis.median(r.p99_ms for r in mine),
                peak_rss_worker_mib=max(rss) / 1024 if rss else None,
                errors=sum(r.errors for r in mine),
                engine_cpu_us=analysis.median(engine_cpu_us(r) for r in mine),
                nginx_cpu_us=analysis.median(r.cpu_us_per_request(r.nginx_cpu_s) for r in mine),
                client_cpu_us=analysis.median(r.cpu_us_per_request(r.client_cpu_s) for r in mine),
                pinned=pinned,
            )
        for row in by_engine.values():
            row.vs_sync = paired_ratio(runs, scenario, row.engine, BASELINE, pinned)
            row.vs_gthread = paired_ratio(runs, scenario, row.engine, THREADED_BASELINE, pinned)
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


CPU_REFERENCES = ("bjoern", "granian")  # the pinned table's CPU ratios: to C, and to Rust


def render_pinned_table(runs: Sequence[Run]) -> str:
    """The pinned phase's summary as a Markdown table, CPU per request first: the
    engine's CPU µs per request, its ratio to bjoern's and granian's (paired per round,
    median), req/s on its one CPU and the ratio to gunicorn sync; "" without pinned runs."""
    rows = [row for row in summarize(runs) if row.pinned]
    if not rows:
        return ""
    lines = [
        "| scenario | engine | engine CPU µs/request | × bjoern's CPU | × granian's CPU "
        "| req/s (median) | p99 ms | nginx + wrk CPU µs/request | errors | vs gunicorn sync |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for row in rows:
        to_c, to_rust = (
            paired_ratio(runs, row.scenario, row.engine, base, True, engine_cpu_us)
            for base in CPU_REFERENCES
        )
        front = (row.nginx_cpu_us, row.client_cpu_us)
        lines.append(
            f"| {row.scenario} | {ENGINES[row.engine].label} | {_num(row.engine_cpu_us, 0)} "
            f"| {_ratio(to_c)} | {_ratio(to_rust)} | {_num(row.rps, 0)} "
            f"| {_num(row.p99_ms, 2)} | {' + '.join(_num(part, 0) for part in front)} "
            f"| {row.errors} | {_ratio(row.vs_sync)} |"
        )
    return "\n".join(lines) + "\n"


def render_table(rows: Sequence[Row]) -> str:
    """The shared-CPU summary as a Markdown table (the pinned rows left out)."""
    rows = [row for row in rows if not row.pinned]
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


OURS = "wsgistack"
# issue 15's targets are for the server as shipped (since 0.2.0: its hot path compiled)
AS_SHIPPED = "the shipped wsgistack"
# (scenario, the engine compared with, the least ratio of our req/s to its)
RPS_TARGETS = (
    ("flask-hello", "granian", 1.0),
    ("flask-hello", THREADED_BASELINE, 1.3),
    ("django-hello", "granian", 1.0),
    ("django-hello", THREADED_BASELINE, 1.3),
)
CPU_TARGETS = (("granian", 0.8), ("bjoern", 2.0))  # pinned hello: the most CPU/request ratio
# the scenarios of the targets judged on shared CPUs: their last round is profiled too
SHARED_TARGET_SCENARIOS = tuple(dict.fromkeys(("sleep", *(s for s, _, _ in RPS_TARGETS))))


def _not_measured(runs: Sequence[Run], scenario: str, engines: Sequence[str], pinned: bool) -> str:
    """Why a target on ``scenario`` has no verdict: the engines without a run of it, or
    no round that gave both engines' figures."""
    ran = {r.engine for r in runs if r.scenario == scenario and r.pinned == pinned}
    where = f"{'pinned ' if pinned else ''}{scenario}"
    absent = [name for name in engines if name not in ran]
    if absent:
        return f"no {where} run of {' or '.join(absent)} in this run"
    return f"no round of {where} with figures for both {' and '.join(engines)}"


VERDICTS = {True: "met", False: "NOT met", None: "not measured"}


def check_targets(runs: Sequence[Run]) -> list[tuple[str, bool | None, str]]:
    """Issue 15's targets, from the same numbers as the tables, as (target, met — None
    when not measured —, the numbers, or why not measured). Ratios are paired per round
    (``paired_ratio``): engine CPU per request in the pinned hello (through nginx); req/s
    on shared CPUs. Peak RSS per worker: ours against gunicorn's (gthread for the
    scenarios with threads; sync for the others, or gthread with its one thread when
    sync did not run) in every shared-CPU scenario."""
    rows = {(row.scenario, row.engine, row.pinned): row for row in summarize(runs)}
    found: list[tuple[str, bool | None, str]] = []
    for base, most in CPU_TARGETS:
        target = (
            f"hello engine CPU per request ≤ {most:g}× {base}'s "
            f"(pinned, through nginx; {AS_SHIPPED})"
        )
        ratio = paired_ratio(runs, "hello", OURS, base, True, engine_cpu_us)
        ours, theirs = rows.get(("hello", OURS, True)), rows.get(("hello", base, True))
        if ratio is None or ours is None or theirs is None:
            found.append((target, None, _not_measured(runs, "hello", (OURS, base), True)))
            continue
        detail = f"{_ratio(ratio)}: {ours.engine_cpu_us:.0f} vs {theirs.engine_cpu_us:.0f} µs"
        found.append((target, ratio <= most, detail))
    target = "sleep req/s ≥ granian's at ≤ its p99"
    ratio = paired_ratio(runs, "sleep", OURS, "granian")
    ours, theirs = rows.get(("sleep", OURS, False)), rows.get(("sleep", "granian", False))
    if ratio is None or not (ours and theirs and ours.p99_ms and theirs.p99_ms):
        found.append((target, None, _not_measured(runs, "sleep", (OURS, "granian"), False)))
    else:
        met = ratio >= 1 and ours.p99_ms <= theirs.p99_ms
        detail = f"{_ratio(ratio)} the req/s, p99 {ours.p99_ms:,.1f} vs {theirs.p99_ms:,.1f} ms"
        found.append((target, met, detail))
    for scenario, base, least in RPS_TARGETS:
        target = f"{scenario} req/s ≥ {'' if least == 1 else f'{least:g}× '}{base}'s"
        ratio = paired_ratio(runs, scenario, OURS, base)
        ours, theirs = rows.get((scenario, OURS, False)), rows.get((scenario, base, False))
        if ratio is None or ours is None or theirs is None:
            found.append((target, None, _not_measured(runs, scenario, (OURS, base), False)))
        else:
            detail = f"{_ratio(ratio)}: {ours.rps:,.0f} vs {theirs.rps:,.0f} req/s"
            found.append((target, ratio >= least, detail))
    checked = []  # (scenario, ours, gunicorn's, which gunicorn) peak RSS per worker, MiB
    for (scenario, engine, pinned), row in rows.items():
        # gthread with threads; without, sync, or gthread (one thread) if sync did not run
        kinds = (
            (THREADED_BASELINE,) if SCENARIOS[scenario].threaded else (BASELINE, THREADED_BASELINE)
        )
        found_rss = [(kind, rows.get((scenario, kind, False))) for kind in kinds]
        bases = [(kind, base) for kind, base in found_rss if base and base.peak_rss_worker_mib]
        if engine == OURS and not pinned and row.peak_rss_worker_mib and bases:
            kind, base = bases[0]
            checked.append((scenario, row.peak_rss_worker_mib, base.peak_rss_worker_mib, kind))
    target = "peak RSS per worker ≤ gunicorn's"
    if checked:
        detail = ", ".join(
            f"{name} {a:.1f} vs {b:.1f} MiB ({kind})" for name, a, b, kind in checked
        )
        found.append((target, all(a <= b for _, a, b, _ in checked), detail))
    else:
        found.append((target, None, "no scenario with the RSS of both wsgistack and gunicorn"))
    return found


def machine_line(machine: Mapping[str, object]) -> str:
    """loadtest.environment.describe()'s dict as one line: CPUs, model, kernel, Python."""
    return (
        f"{machine['cpus']} CPUs ({machine['cpu_model']}), {machine['kernel']}, {machine['python']}"
    )


def _pinned_section(meta: dict, runs: Sequence[Run]) -> str:
    """The pinned table with the CPUs and the machine above it, or why there is none."""
    pinned = render_pinned_table(runs)
    machine, pins = meta["machine"], meta.get("pinning")
    if not pinned:
        if meta["settings"].get("pinned") is False:
            why = "BENCH_PINNED=0"
        elif "pinning" not in meta:
            why = "the run predates them"
        elif pins is None:
            why = "they need two CPUs"
        else:
            why = "no scenario of this run is marked `pinned`"
        return f"No pinned runs ({why}).\n\n"
    return (
        f"One worker of each engine pinned to CPU {pins['engine']}, nginx and wrk to CPU "
        f"{pins['load']}: the engine's whole budget is one CPU. On {machine['cpu_model']}, "
        f"{machine['python']}.\n\n{pinned}\n"
        "Engine CPU µs/request is what the engine's processes used (user + system, from "
        "/proc) over the requests they served; a ratio to bjoern's or granian's is the "
        "median over the rounds of the two in the same round. These are the figures to "
        "quote: they hardly depend on what else the machine runs.\n\n"
    )


def render_markdown(meta: dict, runs: Sequence[Run]) -> str:
    """results.md: what ran (``meta``: as ``run`` writes it to results.json), the pinned
    table (CPU per request) and the shared-CPU one, the targets, how to read them."""
    rows = summarize(runs)
    machine = meta["machine"]
    s = meta["settings"]
    versions = ", ".join(f"{k} {v}" for k, v in meta["versions"].items())
    scenarios = "; ".join(
        f"`{n}` = {SCENARIOS[n].title}, `{SCENARIOS[n].method} {SCENARIOS[n].path}`"
        for n in meta["scenarios"]
    )
    status = " **(interrupted: partial results)**" if meta.get("interrupted") else ""
    failures = "".join(f"- failed: {f}\n" for f in meta.get("failures", []))
    targets = "".join(
        f"- {target}: **{VERDICTS[met]}** ({detail})\n"
        for target, met, detail in check_targets(runs)
    )
    return (
        f"# WSGI engines side by side behind nginx — {meta['started']}{status}\n\n"
        f"Commit {meta['commit']}; {machine_line(machine)}; {versions}.\n\n"
        f"{s['rounds']} interleaved rounds × {s['duration']} s per run (after {s['warmup']} s "
        f"of warm-up), wrk 1 thread / {s['connections']} connections → nginx (1 worker, "
        f"upstream keep-alive) → engine. Scenarios: {scenarios}.\n\n"
        "## CPU per request: one engine worker on one CPU\n\n"
        f"{_pinned_section(meta, runs)}"
        "## Shared CPUs\n\n"
        f"Engines with {s['workers']} workers; {s['threads']} thread(s) per worker, "
        f"{s['sleep_threads']} for `sleep`; wrk, nginx and the engine share the CPUs.\n\n"
        f"{render_table(rows)}\n"
        "req/s, p50 and p99 are medians over the rounds; peak RSS/worker is the largest "
        "resident set any one worker process reached (sampled every "
        f"{RSS_SAMPLE_INTERVAL} s); errors are non-2xx/3xx answers plus socket errors, "
        "summed. A ratio is the median over the rounds of the engine's req/s over "
        "gunicorn's in the same round (measured seconds apart) — compare those, not the "
        "absolute numbers, which depend on this machine and its neighbours. `wsgistack` "
        "runs as shipped: its hot path compiled, its Prometheus metrics recorded "
        "(multiprocess mode); `wsgistack-python` the same with the hot path's Python "
        "source (WSGISTACK_NO_EXTENSIONS=1), `wsgistack-bare` compiled without the metrics "
        "files; the other engines record no metrics. CPU µs/request is the CPU time "
        "(user + system, from /proc) the "
        "engine's processes, nginx's processes and wrk used during the run, divided by "
        "the requests served (median over the rounds). No engine writes "
        "an access log. waitress runs one process per worker, each on its own port. "
        "bjoern and uWSGI are C servers, the reference for what the Python-level work "
        "costs; nginx speaks the uwsgi protocol to uWSGI (`uwsgi_pass`, no upstream "
        "keep-alive), HTTP to the others. "
        "`nginx static (ceiling)` is no WSGI engine: a second nginx answering the greeting "
        "itself, so its row is the most this machine gives the `hello` setup (wrk, nginx "
        "and the upstream share the CPUs).\n"
        f"{failures}\n"
        "## Targets (issue 15)\n\n"
        "Checked from the figures above: CPU per request from the pinned `hello`, req/s "
        "and p99 from the shared-CPU runs, each ratio paired per round.\n\n"
        f"{targets}"
        f"{_profile_section(runs)}"
    )


def _profile_section(runs: Sequence[Run]) -> str:
    """Where each profiled engine's worker spent its time (Run.profile), or ""."""
    sections = []
    for run in runs:
        if not run.profile:
            continue
        lines = "".join(  # a run from before the counts were kept shows "—"
            f"| `{entry['function']}` | {entry['file']} | {entry.get('samples', '—')} "
            f"| {entry['share']:.1%} |\n"
            for entry in run.profile
        )
        label = ENGINES[run.engine].label
        if run.pinned:
            heading = f"{label}, pinned `{run.scenario}`, round {run.round}"
        else:
            heading = (
                f"{label}, `{run.scenario}` ({run.workers}×{run.threads}, shared CPUs), "
                f"an extra run after round {run.round}"
            )
            if run.threads > 1:
                heading += ", the thread holding the GIL"
        sections.append(
            f"### {heading}\n\n| function | file | samples | share of samples |\n"
            f"|---|---|--:|--:|\n{lines}"
        )
    if not sections:
        return ""
    return (
        "\n## Where the time goes\n\n"
        "py-spy sampling one worker without pausing it (`--nonblocking`), summed per "
        "function over its own frames: a function's share includes the system calls it "
        "made (sending, receiving, waiting in `epoll`). With threads, only the thread "
        "holding the GIL is sampled (`--gil`): where the Python work that the threads "
        "take turns at goes, not their waits. The pinned `hello` (the CPU targets): "
        "during the last round's measured run, py-spy on the load CPU. The scenarios of "
        "the targets judged on shared CPUs: the shipped wsgistack during an extra run of "
        "the same length right after the last round's, so that py-spy's own CPU is not "
        "in the figures above.\n\n" + "\n".join(sections)
    )
