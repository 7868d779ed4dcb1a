"""loadtest.bench.table: runs into the summary (medians, paired ratios), the Markdown
table, issue 15's targets and results.md. Pure functions on made-up runs."""

from __future__ import annotations

import pytest

from loadtest.bench import table
from loadtest.bench.results import Run
from loadtest.bench.settings import Settings

# what loadtest.environment.describe() gives
MACHINE = {
    "cpu_model": "AMD EPYC 7B13",
    "cpus": 2,
    "kernel": "Linux 6.1",
    "python": "CPython 3.11.2 (PGO, LTO)",
}


def run(
    engine,
    scenario,
    rps,
    round_no=1,
    p50=1.0,
    p99=2.0,
    errors=0,
    rss=20480,
    threads=1,
    cpu=None,
    pinned=False,
):
    """A Run of 3 s; ``cpu`` = (engine, nginx, wrk) CPU seconds during it; ``pinned``:
    from the pinned phase (one worker)."""
    engine_cpu, nginx_cpu, client_cpu = cpu or (None, None, None)
    return Run(
        round=round_no,
        engine=engine,
        scenario=scenario,
        workers=1 if pinned else 2,
        threads=threads,
        rps=rps,
        p50_ms=p50,
        p99_ms=p99,
        errors=errors,
        requests=int(rps * 3),
        peak_rss_worker_kib=rss,
        peak_rss_total_kib=None if rss is None else rss * 3,
        engine_cpu_s=engine_cpu,
        nginx_cpu_s=nginx_cpu,
        client_cpu_s=client_cpu,
        pinned=pinned,
    )


def test_summarize_medians_peak_and_ratios():
    runs = [
        run("gunicorn-sync", "hello", 1000, 1, p50=5.0, p99=9.0),
        run("gunicorn-sync", "hello", 1200, 2, p50=4.0, p99=8.0),
        run("gunicorn-sync", "hello", 900, 3, p50=6.0, p99=30.0),
        run("wsgistack", "hello", 3000, 1, p50=1.0, p99=3.0, rss=20480, errors=1),
        run("wsgistack", "hello", 2500, 2, p50=2.0, p99=4.0, rss=30720),
        run("wsgistack", "hello", 9000, 3, p50=1.5, p99=2.0, rss=None, errors=2),
    ]
    rows = {row.engine: row for row in table.summarize(runs)}
    assert list(rows) == ["wsgistack", "gunicorn-sync"]  # ENGINES order, not run order
    sync, ours = rows["gunicorn-sync"], rows["wsgistack"]
    assert (sync.rps, sync.p50_ms, sync.p99_ms, sync.rounds) == (1000, 5.0, 9.0, 3)
    assert sync.threads is None  # the sync worker has no threads
    assert (ours.rps, ours.p50_ms, ours.p99_ms) == (3000, 1.5, 3.0)
    assert ours.threads == 1
    assert ours.peak_rss_worker_mib == pytest.approx(30.0)  # the largest, missing ones skipped
    assert ours.errors == 3
    assert ours.vs_sync == pytest.approx(3.0)  # median of 3000/1000, 2500/1200, 9000/900
    assert sync.vs_sync == pytest.approx(1.0)
    assert ours.vs_gthread is None and sync.vs_gthread is None  # gthread did not run


def test_summarize_ratios_stay_within_a_scenario():
    runs = [
        run("gunicorn-sync", "sleep", 100, threads=8),
        run("gunicorn-gthread", "sleep", 800, threads=8),
        run("wsgistack", "sleep", 1000, threads=8),
        run("gunicorn-sync", "hello", 4000),
        run("wsgistack", "hello", 2000),
    ]
    rows = {(row.scenario, row.engine): row for row in table.summarize(runs)}
    assert [key[0] for key in rows] == ["hello", "hello", "sleep", "sleep", "sleep"]
    assert rows["sleep", "wsgistack"].vs_sync == pytest.approx(10.0)
    assert rows["sleep", "wsgistack"].vs_gthread == pytest.approx(1.25)
    assert rows["sleep", "gunicorn-sync"].vs_gthread == pytest.approx(0.125)
    assert rows["hello", "wsgistack"].vs_sync == pytest.approx(0.5)
    assert rows["hello", "wsgistack"].vs_gthread is None


def test_ratios_pair_runs_of_the_same_round():
    runs = [
        run("gunicorn-sync", "hello", 1000, 1),
        run("gunicorn-sync", "hello", 500, 2),  # a disturbed round hits both engines
        run("wsgistack", "hello", 4000, 1),
        run("wsgistack", "hello", 2000, 2),
        run("wsgistack", "hello", 9999, 3),  # no gunicorn run in round 3: not paired
    ]
    assert table.paired_ratio(runs, "hello", "wsgistack", "gunicorn-sync") == pytest.approx(4.0)
    assert table.paired_ratio(runs, "hello", "wsgistack", "granian") is None
    assert table.paired_ratio(runs, "64k", "wsgistack", "gunicorn-sync") is None


def test_summarize_zero_baseline_gives_no_ratio():
    rows = table.summarize([run("gunicorn-sync", "hello", 0.0), run("wsgistack", "hello", 10.0)])
    assert all(row.vs_sync is None for row in rows)


def test_render_table():
    rows = table.summarize(
        [
            run("gunicorn-sync", "hello", 4626.4, p50=6.3, p99=13.62, rss=22323),
            run(
                "wsgistack",
                "hello",
                14740.8,
                p50=1.854,
                p99=9.031,
                rss=20890,
                errors=4,
                cpu=(1.9, 1.2, None),
            ),
            run("granian", "hello", 100.0, p50=None, p99=None, rss=None),
        ]
    )
    lines = table.render_table(rows).splitlines()
    assert lines[0].startswith("| scenario | engine | workers×threads | req/s (median) |")
    assert lines[0].count("|") == lines[1].count("|") == 12
    # 1.9 s of engine CPU over 44,222 requests: 43 µs each; nginx 27 µs; wrk unknown
    assert lines[2] == (
        "| hello | wsgistack | 2×1 | 14,741 | 1.85 | 9.03 | 20.4 | 43 + 27 + — | 4 | 3.19× | — |"
    )
    assert lines[3] == (
        "| hello | gunicorn sync | 2×— | 4,626 | 6.30 | 13.62 | 21.8 | — | 0 | 1.00× | — |"
    )
    assert lines[4] == "| hello | granian (wsgi) | 2×1 | 100 | — | — | — | — | 0 | 0.02× | — |"
    assert len(lines) == 5


def test_render_markdown_says_what_ran():
    meta = {
        "started": "2026-01-01 00:00:00 UTC",
        "settings": {**vars(Settings())},
        "scenarios": ["hello", "sleep"],
        "versions": {"gunicorn": "1.0"},
        "commit": "abc1234",
        "machine": MACHINE,
        "failures": ["round 2 waitress: boom"],
        "interrupted": True,
    }
    runs = [run("wsgistack", "hello", 10.0)]
    text = table.render_markdown(meta, runs)
    assert table.render_table(table.summarize(runs)) in text
    assert "interrupted" in text
    assert "- failed: round 2 waitress: boom" in text
    assert "`sleep` = 20 ms sleep, `GET /api/sleep?ms=20`" in text
    assert "gunicorn 1.0" in text
    assert "Commit abc1234; 2 CPUs (AMD EPYC 7B13), Linux 6.1, CPython 3.11.2 (PGO, LTO);" in text


# -- targets ------------------------------------------------------------------------


AS_SHIPPED = "(pinned, through nginx; the shipped wsgistack)"
CPU_GRANIAN = f"hello engine CPU per request ≤ 0.8× granian's {AS_SHIPPED}"
CPU_BJOERN = f"hello engine CPU per request ≤ 2× bjoern's {AS_SHIPPED}"
SLEEP = "sleep req/s ≥ granian's at ≤ its p99"
RSS = "peak RSS per worker ≤ gunicorn's"


def _target_runs(ours_cpu_s=0.66, ours_sleep=(800, 25.0), django=520):
    """One round of every run the targets read: pinned hello (granian 30 µs, bjoern 15,
    ours ``ours_cpu_s`` over 30,000 requests: 22 µs by default), sleep (granian 750 req/s
    at p99 30 ms; ours ``ours_sleep`` as (req/s, p99)), the framework scenarios (flask:
    granian 1,000, gthread 800, ours 1,100; django: granian 500, gthread 400, ours
    ``django``) and RSS (ours 20 MiB, gunicorn's 21 MiB)."""
    rps, p99 = ours_sleep
    return [
        run("granian", "hello", 15000, cpu=(1.35, 1.0, 0.5), pinned=True),
        run("bjoern", "hello", 20000, cpu=(0.9, 1.0, 0.5), pinned=True),
        run("wsgistack", "hello", 10000, cpu=(ours_cpu_s, 1.0, 0.5), pinned=True),
        run("granian", "sleep", 750, p99=30.0, threads=8),
        run("gunicorn-gthread", "sleep", 700, p99=40.0, threads=8, rss=21504),
        run("wsgistack", "sleep", rps, p99=p99, threads=8),
        run("granian", "flask-hello", 1000),
        run("gunicorn-gthread", "flask-hello", 800),
        run("wsgistack", "flask-hello", 1100),
        run("gunicorn-sync", "flask-hello", 500, rss=21504),
        run("granian", "django-hello", 500),
        run("gunicorn-gthread", "django-hello", 400),
        run("wsgistack", "django-hello", django),
    ]


def test_check_targets_met():
    targets = {name: (met, detail) for name, met, detail in table.check_targets(_target_runs())}
    assert targets == {
        CPU_GRANIAN: (True, "0.73×: 22 vs 30 µs"),
        CPU_BJOERN: (True, "1.47×: 22 vs 15 µs"),
        SLEEP: (True, "1.07× the req/s, p99 25.0 vs 30.0 ms"),
        "flask-hello req/s ≥ granian's": (True, "1.10×: 1,100 vs 1,000 req/s"),
        "flask-hello req/s ≥ 1.3× gunicorn-gthread's": (True, "1.38×: 1,100 vs 800 req/s"),
        "django-hello req/s ≥ granian's": (True, "1.04×: 520 vs 500 req/s"),
        "django-hello req/s ≥ 1.3× gunicorn-gthread's": (True, "1.30×: 520 vs 400 req/s"),
        RSS: (
            True,
            "sleep 20.0 vs 21.0 MiB (gunicorn-gthread), flask-hello 20.0 vs 21.0 MiB "
            "(gunicorn-sync), django-hello 20.0 vs 20.0 MiB (gunicorn-gthread)",
        ),  # django-hello: no gunicorn sync run, gthread (one thread) instead
    }


@pytest.mark.parametrize(
    ("change", "target", "detail"),
    [
        ({"ours_cpu_s": 0.75}, CPU_GRANIAN, "0.83×: 25 vs 30 µs"),  # 25 µs: over 0.8× 30
        ({"ours_cpu_s": 0.93}, CPU_BJOERN, "2.07×: 31 vs 15 µs"),
        ({"ours_sleep": (700, 25.0)}, SLEEP, "0.93× the req/s, p99 25.0 vs 30.0 ms"),
        ({"ours_sleep": (800, 31.0)}, SLEEP, "1.07× the req/s, p99 31.0 vs 30.0 ms"),
        ({"django": 499}, "django-hello req/s ≥ granian's", "1.00×: 499 vs 500 req/s"),
        ({"django": 510}, "django-hello req/s ≥ 1.3× gunicorn-gthread's",
         "1.27×: 510 vs 400 req/s"),
    ],
)  # fmt: skip
def test_check_targets_not_met(change, target, detail):
    targets = {name: (met, why) for name, met, why in table.check_targets(_target_runs(**change))}
    assert targets[target] == (False, detail)


def test_check_targets_rss_not_met_names_each_scenario():
    runs = [
        *_target_runs(),
        run("wsgistack", "hello", 900, rss=23552),
        run("gunicorn-sync", "hello", 100),
    ]
    [(name, met, detail)] = [t for t in table.check_targets(runs) if t[0] == RSS]
    assert met is False  # hello: 23 MiB against gunicorn sync's 20
    assert detail.startswith("hello 23.0 vs 20.0 MiB (gunicorn-sync), sleep 20.0 vs 21.0 MiB")


def test_check_targets_not_measured_says_why():
    runs = [
        run("wsgistack", "hello", 10.0, pinned=True),  # no CPU figure
        run("granian", "hello", 10.0, pinned=True),
        run("wsgistack", "sleep", 800, threads=8),
        run("wsgistack", "flask-hello", 1100),
        run("gunicorn-gthread", "flask-hello", 800, round_no=2, rss=None),  # no round with both
    ]
    targets = {name: (met, why) for name, met, why in table.check_targets(runs)}
    assert targets == {
        CPU_GRANIAN: (None, "no round of pinned hello with figures for both wsgistack and granian"),
        CPU_BJOERN: (None, "no pinned hello run of bjoern in this run"),
        SLEEP: (None, "no sleep run of granian in this run"),
        "flask-hello req/s ≥ granian's": (None, "no flask-hello run of granian in this run"),
        "flask-hello req/s ≥ 1.3× gunicorn-gthread's": (
            None, "no round of flask-hello with figures for both wsgistack and gunicorn-gthread"
        ),
        "django-hello req/s ≥ granian's": (
            None, "no django-hello run of wsgistack or granian in this run"
        ),
        "django-hello req/s ≥ 1.3× gunicorn-gthread's": (
            None, "no django-hello run of wsgistack or gunicorn-gthread in this run"
        ),
        RSS: (None, "no scenario with the RSS of both wsgistack and gunicorn"),
    }  # fmt: skip


def test_render_markdown_lists_the_targets():
    meta = {
        "started": "x",
        "settings": {**vars(Settings())},
        "scenarios": ["hello", "sleep", "flask-hello", "django-hello"],
        "versions": {},
        "commit": "abc1234",
        "machine": MACHINE,
        "pinning": {"engine": 1, "load": 0},
    }
    text = table.render_markdown(meta, _target_runs(django=510))
    targets = text[text.index("## Targets (issue 15)") :]
    assert f"- {CPU_GRANIAN}: **met** (0.73×: 22 vs 30 µs)\n" in targets
    assert "- django-hello req/s ≥ 1.3× gunicorn-gthread's: **NOT met** (1.27×: " in targets
    assert "`flask-hello` = Flask hello world, `GET /`" in text
    other = table.render_markdown(meta, [run("wsgistack", "hello", 10.0)])
    assert f"- {CPU_BJOERN}: **not measured** (no pinned hello run of " in other


# -- the pinned phase: CPU per request -----------------------------------------------


def test_cpu_per_request_is_cpu_seconds_over_requests():
    one = run("bjoern", "hello", 10000, cpu=(0.45, 0.9, 0.3))  # 30,000 requests
    assert one.cpu_us_per_request(one.engine_cpu_s) == pytest.approx(15.0)
    assert table.engine_cpu_us(one) == pytest.approx(15.0)
    assert one.cpu_us_per_request(None) is None
    assert run("bjoern", "hello", 0.0, cpu=(1.0, 0, 0)).cpu_us_per_request(1.0) is None


def _pinned_runs():
    """Two rounds of hello, pinned (bjoern 15 µs, granian 30, ours 75 in round 1), and
    a shared-CPU hello that must stay out of the pinned table."""
    return [
        run("bjoern", "hello", 20000, 1, cpu=(0.9, 1.2, 0.6), pinned=True),  # 60,000: 15 µs
        run("granian", "hello", 15000, 1, cpu=(1.35, 1.0, 0.5), pinned=True),  # 45,000: 30 µs
        run("wsgistack", "hello", 8000, 1, cpu=(1.8, 0.5, 0.2), pinned=True),  # 24,000: 75 µs
        run("gunicorn-sync", "hello", 2000, 1, cpu=(1.8, 0.6, 0.1), pinned=True),  # 300 µs
        run("bjoern", "hello", 10000, 2, cpu=(0.6, 0.6, 0.3), pinned=True),  # 30,000: 20 µs
        run("wsgistack", "hello", 4000, 2, cpu=(1.08, 0.3, 0.1), pinned=True),  # 12,000: 90 µs
        run("wsgistack", "hello", 99999, 1, cpu=(1.0, 1.0, 1.0)),  # shared CPUs
    ]


def test_summarize_keeps_pinned_and_shared_apart():
    rows = table.summarize(_pinned_runs())
    shared = [(r.engine, r.pinned) for r in rows if not r.pinned]
    assert shared == [("wsgistack", False)]  # the shared rows first
    pinned = {r.engine: r for r in rows if r.pinned}
    assert list(pinned) == ["wsgistack", "gunicorn-sync", "granian", "bjoern"]
    ours = pinned["wsgistack"]
    assert (ours.rps, ours.rounds, ours.workers) == (6000, 2, 1)
    assert ours.engine_cpu_us == pytest.approx(82.5)  # median of 75 and 90
    assert ours.vs_sync == pytest.approx(4.0)  # round 1 only: 8000 / 2000


def test_cpu_ratios_pair_the_pinned_runs_of_a_round():
    runs = _pinned_runs()
    cpu = table.engine_cpu_us
    # 75/15 in round 1, 90/20 in round 2: median 4.75
    assert table.paired_ratio(runs, "hello", "wsgistack", "bjoern", True, cpu) == pytest.approx(
        4.75
    )
    assert table.paired_ratio(runs, "hello", "wsgistack", "granian", True, cpu) == pytest.approx(
        2.5
    )  # round 1 only
    assert table.paired_ratio(runs, "hello", "wsgistack", "bjoern", False, cpu) is None


def test_render_pinned_table():
    lines = table.render_pinned_table(_pinned_runs()).splitlines()
    assert lines[0] == (
        "| scenario | engine | engine CPU µs/request | × bjoern's CPU | × granian's CPU "
        "| req/s (median) | p99 ms | nginx + wrk CPU µs/request | errors | vs gunicorn sync |"
    )
    assert lines[1].count("|") == lines[0].count("|") == 11
    # ours: 82 µs (75, 90), 4.75× bjoern's and 2.50× granian's; 6,000 req/s, 4× gunicorn's
    assert lines[2] == (
        "| hello | wsgistack | 82 | 4.75× | 2.50× | 6,000 | 2.00 | 23 + 8 | 0 | 4.00× |"
    )
    assert lines[4] == (
        "| hello | granian (wsgi) | 30 | 2.00× | 1.00× | 15,000 | 2.00 | 22 + 11 | 0 | 7.50× |"
    )
    assert lines[5].startswith("| hello | bjoern (C) | 18 | 1.00× | 0.50× | 15,000 |")
    assert len(lines) == 6
    assert table.render_pinned_table([run("wsgistack", "hello", 10.0)]) == ""


def test_shared_table_and_targets_leave_the_pinned_runs_out():
    runs = [
        run("gunicorn-sync", "hello", 1000),
        run("wsgistack", "hello", 2000),
        run("wsgistack", "hello", 50000, pinned=True),
        run("gunicorn-sync", "hello", 1000, pinned=True),
    ]
    lines = table.render_table(table.summarize(runs)).splitlines()
    assert [line.split(" | ")[3] for line in lines[2:]] == ["2,000", "1,000"]
    targets = {name: detail for name, _, detail in table.check_targets(runs)}
    assert targets[RSS] == "hello 20.0 vs 20.0 MiB (gunicorn-sync)"  # the shared rows only


@pytest.mark.parametrize(
    ("meta", "why"),
    [
        ({"pinning": {"engine": 1, "load": 0}}, "no scenario of this run is marked `pinned`"),
        ({"pinning": None}, "they need two CPUs"),
        ({"pinning": None, "pinned": False}, "BENCH_PINNED=0"),
        ({}, "the run predates them"),  # a results.json from before the pinned phase
    ],
)
def test_render_markdown_says_why_there_are_no_pinned_runs(meta, why):
    settings = {**vars(Settings()), "pinned": meta.pop("pinned", True)}
    meta = {**meta, "started": "x", "settings": settings, "scenarios": ["hello"],
            "versions": {}, "commit": "abc1234", "machine": MACHINE}  # fmt: skip
    text = table.render_markdown(meta, [run("wsgistack", "hello", 10.0)])
    assert f"No pinned runs ({why})." in text


def test_render_markdown_puts_the_pinned_table_first_with_cpus_and_machine():
    meta = {"started": "x", "settings": {**vars(Settings())}, "scenarios": ["hello"],
            "versions": {}, "commit": "abc1234", "machine": MACHINE,
            "pinning": {"engine": 1, "load": 0}}  # fmt: skip
    runs = _pinned_runs()
    text = table.render_markdown(meta, runs)
    pinned = text.index(table.render_pinned_table(runs))
    shared = text.index(table.render_table(table.summarize(runs)))
    assert text.index("## CPU per request") < pinned < text.index("## Shared CPUs") < shared
    above = text[text.index("## CPU per request") : pinned]
    assert "pinned to CPU 1, nginx and wrk to CPU 0" in above
    assert "On AMD EPYC 7B13, CPython 3.11.2 (PGO, LTO)." in above
