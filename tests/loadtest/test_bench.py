"""Unit tests of scripts/bench.py's pure parts: wrk output → numbers, summary and table,
settings, the plan and the generated commands and nginx config. Nothing here runs a
benchmark, starts a process or measures time."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.support import load_script

bench = load_script("scripts/bench.py", "wsgistack_bench")

# A real `wrk -t1 -c32 -d3s --latency` report (wrk 4.1.0), with the two optional lines
# wrk adds when they are not zero ("  Socket errors: connect %d, read %d, write %d,
# timeout %d" and "  Non-2xx or 3xx responses: %d").
WRK_WITH_ERRORS = """\
Running 3s test @ http://127.0.0.1:40123/
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.19ms    1.52ms  31.86ms   93.45%
    Req/Sec    14.95k     1.23k   16.60k    76.67%
  Latency Distribution
     50%    1.85ms
     75%    2.31ms
     90%    3.05ms
     99%    9.03ms
  44627 requests in 3.01s, 7.02MB read
  Socket errors: connect 0, read 3, write 1, timeout 2
  Non-2xx or 3xx responses: 5
Requests/sec:  14826.25
Transfer/sec:      2.33MB
"""

WRK_SLOW = """\
Running 1m test @ http://127.0.0.1:40123/api/sleep?ms=20
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   347.44ms   20.11ms    1.02s    90.00%
    Req/Sec    89.10     10.00    100.00     70.00%
  Latency Distribution
     50%  812.00us
     75%  347.44ms
     90%    1.02s
     99%    1.50m
  5346 requests in 1.00m, 1.02MB read
Requests/sec:     89.03
Transfer/sec:     17.40KB
"""

WRK_NOTHING = """\
Running 1s test @ http://127.0.0.1:18555/api/sleep?ms=1500
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     0.00us    0.00us   0.00us    -nan%
    Req/Sec     0.00      0.00     0.00      -nan%
  Latency Distribution
     50%    0.00us
     75%    0.00us
     90%    0.00us
     99%    0.00us
  0 requests in 1.00s, 0.00B read
Requests/sec:      0.00
Transfer/sec:       0.00B
"""


# -- wrk output ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("812.00us", 0.812),
        ("1.85ms", 1.85),
        ("1.02s", 1020.0),
        ("1.50m", 90_000.0),
        ("2.00h", 7_200_000.0),
        (" 9.03ms ", 9.03),
    ],
)
def test_parse_time_ms_every_wrk_unit(text, ms):
    assert bench.parse_time_ms(text) == pytest.approx(ms)


@pytest.mark.parametrize("text", ["", "12", "1.0 ms", "1.0ns", "-1ms", "ms"])
def test_parse_time_ms_rejects_what_wrk_does_not_print(text):
    with pytest.raises(ValueError):
        bench.parse_time_ms(text)


def test_parse_wrk_numbers_and_errors():
    result = bench.parse_wrk(WRK_WITH_ERRORS)
    assert result.rps == pytest.approx(14826.25)
    assert result.requests == 44627
    assert result.duration_s == pytest.approx(3.01)
    assert result.latency_ms == pytest.approx({"50": 1.85, "75": 2.31, "90": 3.05, "99": 9.03})
    assert result.socket_errors == {"connect": 0, "read": 3, "write": 1, "timeout": 2}
    assert result.non_2xx_3xx == 5
    assert result.errors == 11


def test_parse_wrk_mixed_units_and_no_error_lines():
    result = bench.parse_wrk(WRK_SLOW)
    assert result.rps == pytest.approx(89.03)
    assert result.duration_s == pytest.approx(60.0)
    assert result.latency_ms == pytest.approx(
        {"50": 0.812, "75": 347.44, "90": 1020.0, "99": 90_000.0}
    )
    assert result.socket_errors == {}
    assert result.non_2xx_3xx == 0
    assert result.errors == 0


def test_parse_wrk_percentiles_come_from_the_distribution_not_the_thread_stats():
    # "Latency 2.19ms ..." (the average) must not be read as a percentile.
    text = WRK_WITH_ERRORS.replace("     50%    1.85ms\n", "")
    assert "50" not in bench.parse_wrk(text).latency_ms


def test_parse_wrk_without_latency_flag_has_no_percentiles():
    head, _, rest = WRK_WITH_ERRORS.partition("  Latency Distribution\n")
    text = head + rest.split("     99%    9.03ms\n", 1)[1]
    result = bench.parse_wrk(text)
    assert result.latency_ms == {}
    assert result.rps == pytest.approx(14826.25)


def test_parse_wrk_nothing_completed_has_no_latency():
    result = bench.parse_wrk(WRK_NOTHING)
    assert result.requests == 0
    assert result.rps == 0.0
    assert result.latency_ms == {}


@pytest.mark.parametrize(
    "text",
    [
        "",
        "unable to connect to 127.0.0.1:18556 Connection refused\n",
        WRK_WITH_ERRORS.replace("Requests/sec:", "Requests/s:"),
        WRK_WITH_ERRORS.replace("44627 requests in", "requests in"),
    ],
)
def test_parse_wrk_rejects_other_output(text):
    with pytest.raises(ValueError):
        bench.parse_wrk(text)


# -- summary and table --------------------------------------------------------------


def run(
    engine, scenario, rps, round_no=1, p50=1.0, p99=2.0, errors=0, rss=20480, threads=1, cpu=None
):
    """A Run of 3 s; ``cpu`` = (engine, nginx, wrk) CPU seconds during it."""
    engine_cpu, nginx_cpu, client_cpu = cpu or (None, None, None)
    return bench.Run(
        round=round_no,
        engine=engine,
        scenario=scenario,
        workers=2,
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
    rows = {row.engine: row for row in bench.summarize(runs)}
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
    rows = {(row.scenario, row.engine): row for row in bench.summarize(runs)}
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
    assert bench.paired_ratio(runs, "hello", "wsgistack", "gunicorn-sync") == pytest.approx(4.0)
    assert bench.paired_ratio(runs, "hello", "wsgistack", "granian") is None
    assert bench.paired_ratio(runs, "64k", "wsgistack", "gunicorn-sync") is None


def test_summarize_zero_baseline_gives_no_ratio():
    rows = bench.summarize([run("gunicorn-sync", "hello", 0.0), run("wsgistack", "hello", 10.0)])
    assert all(row.vs_sync is None for row in rows)


def test_render_table():
    rows = bench.summarize(
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
    lines = bench.render_table(rows).splitlines()
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
        "settings": {**vars(bench.Settings())},
        "scenarios": ["hello", "sleep"],
        "versions": {"gunicorn": "1.0"},
        "cpus": 2,
        "platform": "Linux x",
        "failures": ["round 2 waitress: boom"],
        "interrupted": True,
    }
    runs = [run("wsgistack", "hello", 10.0)]
    text = bench.render_markdown(meta, runs)
    assert bench.render_table(bench.summarize(runs)) in text
    assert "interrupted" in text
    assert "- failed: round 2 waitress: boom" in text
    assert "`sleep` = 20 ms sleep, `GET /api/sleep?ms=20`" in text
    assert "gunicorn 1.0" in text


# -- settings, plan, commands, nginx ------------------------------------------------


def test_settings_defaults_and_environment():
    assert bench.Settings.from_env({}) == bench.Settings()
    settings = bench.Settings.from_env({"BENCH_DURATION": " 5 ", "BENCH_ROUNDS": "1"})
    assert (settings.duration, settings.rounds, settings.workers) == (5, 1, 2)
    assert bench.Settings.from_env({"BENCH_WARMUP": "0"}).warmup == 0


@pytest.mark.parametrize(
    ("key", "value"),
    [("BENCH_DURATION", "3s"), ("BENCH_ROUNDS", "0"), ("BENCH_WORKERS", "-1"),
     ("BENCH_CONNECTIONS", "100000"), ("BENCH_WARMUP", "-1")],
)  # fmt: skip
def test_settings_reject_bad_values(key, value):
    with pytest.raises(bench.BenchError, match=key):
        bench.Settings.from_env({key: value})


def test_phases_group_scenarios_by_thread_count():
    engines = list(bench.ENGINES.values())
    scenarios = list(bench.SCENARIOS.values())
    settings = bench.Settings(threads=1, sleep_threads=8)
    (t1, engines1, group1), (t8, engines8, group8) = bench.phases(settings, engines, scenarios)
    assert (t1, [s.name for s in group1]) == (1, ["hello", "64k", "upload", "hello-direct"])
    assert [e.name for e in engines1] == list(bench.ENGINES)
    assert (t8, [s.name for s in group8]) == (8, ["sleep"])
    assert "nginx-static" not in [e.name for e in engines8]  # it only answers hello
    only_sleep = bench.phases(settings, engines, [bench.SCENARIOS["sleep"]])
    assert [threads for threads, _, _ in only_sleep] == [8]


def test_schedule_runs_each_scenario_back_to_back_rotating_the_engines():
    engines = [bench.ENGINES[n] for n in ("wsgistack", "gunicorn-sync", "waitress", "nginx-static")]
    scenarios = [bench.SCENARIOS["hello"], bench.SCENARIOS["hello-direct"]]
    order = [(r, s.name, e.name) for r, s, e in bench.schedule(2, engines, scenarios)]
    assert order == [
        (1, "hello", "wsgistack"), (1, "hello", "gunicorn-sync"), (1, "hello", "waitress"),
        (1, "hello", "nginx-static"),
        (1, "hello-direct", "wsgistack"), (1, "hello-direct", "gunicorn-sync"),
        (1, "hello-direct", "nginx-static"),  # waitress: no direct run
        (2, "hello", "gunicorn-sync"), (2, "hello", "waitress"), (2, "hello", "nginx-static"),
        (2, "hello", "wsgistack"),
        (2, "hello-direct", "gunicorn-sync"), (2, "hello-direct", "nginx-static"),
        (2, "hello-direct", "wsgistack"),
    ]  # fmt: skip


def test_engine_runs():
    engines, scenarios = bench.ENGINES, bench.SCENARIOS
    assert engines["wsgistack"].runs(scenarios["hello-direct"])
    assert not engines["waitress"].runs(scenarios["hello-direct"])
    assert engines["waitress"].runs(scenarios["sleep"])
    assert engines["nginx-static"].runs(scenarios["hello"])
    assert not engines["nginx-static"].runs(scenarios["sleep"])
    assert not engines["nginx-static"].wsgi and engines["granian"].wsgi


def test_default_plan_estimate_fits_the_budget():
    # Arithmetic on the plan (no clock): the defaults must stay under about 8 minutes.
    estimate = bench.estimate_seconds(
        bench.Settings(), list(bench.ENGINES.values()), list(bench.SCENARIOS.values())
    )
    assert 4 * 60 < estimate < 8 * 60


def _flag(argv, name):
    for i, arg in enumerate(argv):
        if arg == name:
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


@pytest.mark.parametrize("threads", [1, 8])
def test_engine_commands_same_workers_and_threads(threads):
    ports = [40001, 40002]
    commands = {
        name: bench.engine_commands(engine, "/py", ports, 2, threads, "/ngx", Path("/d"))
        for name, engine in bench.ENGINES.items()
    }
    assert commands.pop("nginx-static") == [
        ["/ngx", "-p", "/d", "-c", "/d/static.conf", "-e", "/d/static-error.log"]
    ]
    for name, argvs in commands.items():
        for argv in argvs:
            assert argv[:2] == ["/py", "-m"]
            assert argv[-1] == "wsgistack_demo.wsgi:application"
            assert all("0.0.0.0" not in arg for arg in argv), name  # loopback only
    assert _flag(commands["wsgistack"][0], "-w") == "2"
    assert _flag(commands["wsgistack"][0], "--threads") == str(threads)
    assert _flag(commands["gunicorn-sync"][0], "-k") == "sync"
    assert _flag(commands["gunicorn-sync"][0], "--threads") is None  # would switch to gthread
    assert _flag(commands["gunicorn-gthread"][0], "-k") == "gthread"
    assert _flag(commands["gunicorn-gthread"][0], "--threads") == str(threads)
    assert _flag(commands["granian"][0], "--workers") == "2"
    assert _flag(commands["granian"][0], "--blocking-threads") == str(threads)
    assert _flag(commands["granian"][0], "--interface") == "wsgi"
    waitress = commands["waitress"]
    assert [_flag(argv, "--listen") for argv in waitress] == ["127.0.0.1:40001", "127.0.0.1:40002"]
    assert {_flag(argv, "--threads") for argv in waitress} == {str(threads)}
    for name in ("wsgistack", "gunicorn-sync", "gunicorn-gthread"):
        assert _flag(commands[name][0], "-b") == "127.0.0.1:40001"


def test_nginx_config_proxies_like_the_stack(tmp_path):
    conf = bench.nginx_config(tmp_path, 40100, [40001, 40002])
    assert "listen 127.0.0.1:40100;" in conf
    assert "server 127.0.0.1:40001;" in conf and "server 127.0.0.1:40002;" in conf
    for line in (
        "keepalive 32;",
        "keepalive_timeout 60s;",
        "proxy_http_version 1.1;",
        'proxy_set_header Connection "";',
        "daemon off;",
        f"pid {tmp_path}/nginx.pid;",
        f"client_body_temp_path {tmp_path}/nginx-client_body;",
        "worker_processes 1;",
    ):
        assert line in conf
    assert "ssl" not in conf
    assert conf.count("{") == conf.count("}")


def test_static_nginx_config_answers_the_greeting(tmp_path):
    conf = bench.static_nginx_config(tmp_path, 40200, 2)
    assert "listen 127.0.0.1:40200;" in conf
    assert "worker_processes 2;" in conf
    assert 'return 200 "Hello from the WSGI stack!\\n";' in conf  # nginx's escape: \n
    assert "location = /healthz" in conf
    assert f"pid {tmp_path}/static.pid;" in conf
    assert "proxy_pass" not in conf
    assert conf.count("{") == conf.count("}")


def test_upload_script_posts_one_mebibyte():
    assert 'wrk.method = "POST"' in bench.UPLOAD_LUA
    assert 'string.rep("x", 1048576)' in bench.UPLOAD_LUA


def test_names_from_env():
    engines = bench.ENGINES
    assert bench.names_from_env({}, "BENCH_ENGINES", engines) == list(engines.values())
    chosen = bench.names_from_env({"BENCH_ENGINES": "granian, wsgistack"}, "BENCH_ENGINES", engines)
    assert chosen == [engines["wsgistack"], engines["granian"]]  # the table's order
    with pytest.raises(bench.BenchError, match="BENCH_ENGINES: unknown nope"):
        bench.names_from_env({"BENCH_ENGINES": "wsgistack,nope"}, "BENCH_ENGINES", engines)
    with pytest.raises(bench.BenchError, match="BENCH_ENGINES: 'ours' is now called 'wsgistack'"):
        bench.names_from_env({"BENCH_ENGINES": "ours"}, "BENCH_ENGINES", engines)
    with pytest.raises(bench.BenchError, match="unknown"):
        bench.names_from_env({"BENCH_SCENARIOS": " , "}, "BENCH_SCENARIOS", bench.SCENARIOS)


# -- targets ------------------------------------------------------------------------


def test_check_targets_met_and_missed():
    runs = [
        run("gunicorn-sync", "hello", 1000, rss=22000),
        run("wsgistack", "hello", 5000, rss=21000),
        run("granian", "hello", 4000),
        run("nginx-static", "hello", 6000, rss=None),
        run("gunicorn-gthread", "sleep", 700, p99=50.0, rss=23000, threads=8),
        run("wsgistack", "sleep", 750, p99=60.0, rss=24000, threads=8),
    ]
    targets = {name: (met, detail) for name, met, detail in bench.check_targets(runs)}
    assert targets["hello ≥ 8× gunicorn sync"] == (
        False,
        "5.00×; with an upstream that costs nothing (nginx-static) 6.00×",
    )
    assert targets["hello ≥ granian"] == (True, "1.25×")
    met, detail = targets["sleep ≥ gunicorn gthread at equal or lower p99"]
    assert met is False  # more req/s, but a higher p99
    assert detail == "1.07× the req/s, p99 60.0 ms vs 50.0 ms"
    met, detail = targets["peak RSS per worker ≤ gunicorn's"]
    assert met is False  # sleep: 24000 KiB against gthread's 23000
    assert "hello 20.5 vs 21.5 MiB" in detail and "sleep 23.4 vs 22.5 MiB" in detail


def test_check_targets_hello_gives_the_cpu_budget_of_8x():
    runs = [
        run("gunicorn-sync", "hello", 5000, cpu=(3.0, 1.0, 0.5)),
        run("wsgistack", "hello", 25000, cpu=(3.3, 1.5, 0.9)),  # 75,000 requests: 44 µs engine
        run("nginx-static", "hello", 40000, cpu=(1.2, 2.4, 1.2)),  # 120,000: 20 + 10 µs in front
    ]
    [(name, met, detail), *_] = bench.check_targets(runs, cpus=2)
    assert (name, met) == ("hello ≥ 8× gunicorn sync", False)
    assert detail == (
        "5.00×; with an upstream that costs nothing (nginx-static) 8.00×; at 8× gunicorn sync "
        "(40,000 req/s) the 2 CPUs give each request 50 µs of CPU for wrk, nginx and the "
        "engine together; wrk and nginx take 30 µs of it in front of nginx-static, and our "
        "engine takes 44 µs"
    )
    [(_, _, without_cpus), *_] = bench.check_targets(runs)
    assert without_cpus == "5.00×; with an upstream that costs nothing (nginx-static) 8.00×"


def test_cpu_seconds_counts_what_a_process_used():
    me = [os.getpid()]
    before = bench.cpu_seconds(me)
    deadline = time.process_time() + 0.1
    while time.process_time() < deadline:  # bounded: 0.1 s of this process's CPU
        pass
    assert bench.cpu_seconds(me) - before >= 0.05  # clock ticks: 10 ms resolution
    assert bench.cpu_seconds([2**22 + 1]) == 0  # no such process


def test_check_targets_not_measured():
    targets = bench.check_targets([run("wsgistack", "hello", 10.0)])
    assert [met for _, met, _ in targets] == [None, None, None, None]


def test_render_markdown_lists_the_targets():
    meta = {
        "started": "x",
        "settings": {**vars(bench.Settings())},
        "scenarios": ["hello"],
        "versions": {},
        "cpus": 2,
        "platform": "Linux",
    }
    runs = [run("gunicorn-sync", "hello", 100.0), run("wsgistack", "hello", 900.0)]
    text = bench.render_markdown(meta, runs)
    assert "- hello ≥ 8× gunicorn sync: **met** (9.00×)" in text
    assert "- hello ≥ granian: **not measured** (—)" in text
