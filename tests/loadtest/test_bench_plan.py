"""loadtest.bench's settings, plan, engine commands and nginx configs, and its /proc
CPU counter: nothing here runs a benchmark or starts a process."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from loadtest.bench import nginx, run, sampling
from loadtest.bench.engines import ENGINES, engine_commands
from loadtest.bench.scenarios import SCENARIOS
from loadtest.bench.settings import BenchError, Settings, names_from_env


def test_settings_defaults_and_environment():
    assert Settings.from_env({}) == Settings()
    settings = Settings.from_env({"BENCH_DURATION": " 5 ", "BENCH_ROUNDS": "1"})
    assert (settings.duration, settings.rounds, settings.workers) == (5, 1, 2)
    assert Settings.from_env({"BENCH_WARMUP": "0"}).warmup == 0


@pytest.mark.parametrize(
    ("key", "value"),
    [("BENCH_DURATION", "3s"), ("BENCH_ROUNDS", "0"), ("BENCH_WORKERS", "-1"),
     ("BENCH_CONNECTIONS", "100000"), ("BENCH_WARMUP", "-1")],
)  # fmt: skip
def test_settings_reject_bad_values(key, value):
    with pytest.raises(BenchError, match=key):
        Settings.from_env({key: value})


def test_phases_group_scenarios_by_thread_count():
    engines = list(ENGINES.values())
    scenarios = list(SCENARIOS.values())
    settings = Settings(threads=1, sleep_threads=8)
    (t1, engines1, group1), (t8, engines8, group8) = run.phases(settings, engines, scenarios)
    assert (t1, [s.name for s in group1]) == (1, ["hello", "64k", "upload", "hello-direct"])
    assert [e.name for e in engines1] == list(ENGINES)
    assert (t8, [s.name for s in group8]) == (8, ["sleep"])
    assert "nginx-static" not in [e.name for e in engines8]  # it only answers hello
    only_sleep = run.phases(settings, engines, [SCENARIOS["sleep"]])
    assert [threads for threads, _, _ in only_sleep] == [8]


def test_schedule_runs_each_scenario_back_to_back_rotating_the_engines():
    engines = [ENGINES[n] for n in ("wsgistack", "gunicorn-sync", "waitress", "nginx-static")]
    scenarios = [SCENARIOS["hello"], SCENARIOS["hello-direct"]]
    order = [(r, s.name, e.name) for r, s, e in run.schedule(2, engines, scenarios)]
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
    engines, scenarios = ENGINES, SCENARIOS
    assert engines["wsgistack"].runs(scenarios["hello-direct"])
    assert not engines["waitress"].runs(scenarios["hello-direct"])
    assert engines["waitress"].runs(scenarios["sleep"])
    assert engines["nginx-static"].runs(scenarios["hello"])
    assert not engines["nginx-static"].runs(scenarios["sleep"])
    assert not engines["nginx-static"].wsgi and engines["granian"].wsgi


def test_default_plan_estimate_fits_the_budget():
    # Arithmetic on the plan (no clock): the defaults must stay under about 8 minutes.
    estimate = run.estimate_seconds(Settings(), list(ENGINES.values()), list(SCENARIOS.values()))
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
        name: engine_commands(engine, "/py", ports, 2, threads, "/ngx", Path("/d"))
        for name, engine in ENGINES.items()
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
    conf = nginx.proxy_config(tmp_path, 40100, [40001, 40002])
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
    conf = nginx.static_config(tmp_path, 40200, 2)
    assert "listen 127.0.0.1:40200;" in conf
    assert "worker_processes 2;" in conf
    assert 'return 200 "Hello from the WSGI stack!\\n";' in conf  # nginx's escape: \n
    assert "location = /healthz" in conf
    assert f"pid {tmp_path}/static.pid;" in conf
    assert "proxy_pass" not in conf
    assert conf.count("{") == conf.count("}")


def test_names_from_env():
    engines = ENGINES
    assert names_from_env({}, "BENCH_ENGINES", engines) == list(engines.values())
    chosen = names_from_env({"BENCH_ENGINES": "granian, wsgistack"}, "BENCH_ENGINES", engines)
    assert chosen == [engines["wsgistack"], engines["granian"]]  # the table's order
    with pytest.raises(BenchError, match="BENCH_ENGINES: unknown nope"):
        names_from_env({"BENCH_ENGINES": "wsgistack,nope"}, "BENCH_ENGINES", engines)
    with pytest.raises(BenchError, match="BENCH_ENGINES: 'ours' is now called 'wsgistack'"):
        names_from_env({"BENCH_ENGINES": "ours"}, "BENCH_ENGINES", engines)
    with pytest.raises(BenchError, match="unknown"):
        names_from_env({"BENCH_SCENARIOS": " , "}, "BENCH_SCENARIOS", SCENARIOS)


def test_cpu_seconds_counts_what_a_process_used():
    me = [os.getpid()]
    before = sampling.cpu_seconds(me)
    deadline = time.process_time() + 0.1
    while time.process_time() < deadline:  # bounded: 0.1 s of this process's CPU
        pass
    assert sampling.cpu_seconds(me) - before >= 0.05  # clock ticks: 10 ms resolution
    assert sampling.cpu_seconds([2**22 + 1]) == 0  # no such process
