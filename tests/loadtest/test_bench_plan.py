"""loadtest.bench's settings, plan, engine commands and nginx configs, and its /proc
CPU counter: nothing here runs a benchmark or starts a process."""

from __future__ import annotations

import os
import select
import subprocess
import sys
from pathlib import Path

import pytest

from loadtest.bench import nginx, pinning, run, sampling
from loadtest.bench.engines import ENGINES, engine_commands, engine_environment
from loadtest.bench.scenarios import DEMO_APP, SCENARIOS
from loadtest.bench.settings import BenchError, Settings, names_from_env
from tests.support import in_ci


def test_settings_defaults_and_environment():
    assert Settings.from_env({}) == Settings()
    settings = Settings.from_env({"BENCH_DURATION": " 5 ", "BENCH_ROUNDS": "1"})
    assert (settings.duration, settings.rounds, settings.workers) == (5, 1, 2)
    assert Settings.from_env({"BENCH_WARMUP": "0"}).warmup == 0
    assert Settings().pinned is True
    assert Settings.from_env({"BENCH_PINNED": "0"}).pinned is False


@pytest.mark.parametrize(
    ("key", "value"),
    [("BENCH_DURATION", "3s"), ("BENCH_ROUNDS", "0"), ("BENCH_WORKERS", "-1"),
     ("BENCH_CONNECTIONS", "100000"), ("BENCH_WARMUP", "-1"), ("BENCH_PINNED", "2"),
     ("BENCH_PINNED", "yes")],
)  # fmt: skip
def test_settings_reject_bad_values(key, value):
    with pytest.raises(BenchError, match=key):
        Settings.from_env({key: value})


def test_phases_group_scenarios_by_thread_count_and_app():
    engines = list(ENGINES.values())
    scenarios = list(SCENARIOS.values())
    settings = Settings(threads=1, sleep_threads=8, workers=2)
    one, flask, django, eight = run.phases(settings, engines, scenarios)  # no pinned phase
    assert (one.workers, one.threads, one.pins, one.app) == (2, 1, None, DEMO_APP)
    assert [s.name for s in one.scenarios] == ["hello", "64k", "upload", "hello-direct"]
    assert [e.name for e in one.engines] == list(ENGINES)
    # the framework scenarios: engines started for their own app, nginx-static left out
    for phase, name in ((flask, "flask"), (django, "django")):
        assert (phase.threads, phase.app) == (1, f"loadtest.bench.apps.{name}_hello:app")
        assert [s.name for s in phase.scenarios] == [f"{name}-hello"]
        assert [e.name for e in phase.engines] == [e for e in ENGINES if e != "nginx-static"]
    assert (eight.threads, [s.name for s in eight.scenarios]) == (8, ["sleep"])
    assert "nginx-static" not in [e.name for e in eight.engines]  # it only answers hello
    only_sleep = run.phases(settings, engines, [SCENARIOS["sleep"]])
    assert [phase.threads for phase in only_sleep] == [8]


def test_pinned_phase_runs_the_pinned_scenarios_with_one_worker():
    engines, scenarios = list(ENGINES.values()), list(SCENARIOS.values())
    pins = pinning.Pinning(engine=1, load=0)
    *shared, pinned = run.phases(Settings(workers=2), engines, scenarios, pins)
    assert [(p.workers, p.pins) for p in shared] == [(2, None)] * 4
    assert (pinned.workers, pinned.threads, pinned.pins) == (1, 1, pins)
    assert [s.name for s in pinned.scenarios] == ["hello", "hello-direct"]
    assert [e.name for e in pinned.engines] == list(ENGINES)  # waitress: hello only
    off = run.phases(Settings(pinned=False), engines, scenarios, pins)
    assert all(p.pins is None for p in off) and len(off) == 4


def test_pinning_plan():
    assert pinning.plan({0, 1}) == pinning.Pinning(engine=1, load=0)
    assert pinning.plan([5, 2, 3]) == pinning.Pinning(engine=5, load=3)
    assert pinning.plan({0}) is None  # one CPU: no pinned runs
    assert pinning.affinity(None) is None


def test_affinity_pins_a_child_process():
    cpu = max(os.sched_getaffinity(0))
    pin = pinning.affinity(cpu)
    pid = os.fork()
    if pid == 0:  # the child pins itself, as Popen's preexec_fn does, and reports
        pin()
        os._exit(0 if os.sched_getaffinity(0) == {cpu} else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


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
    # Arithmetic on the plan (no clock): the defaults, pinned phase included, must stay
    # under about 21 minutes (docs/benchmark.md: about 20, our three variants included);
    # the pinned phase (hello, hello-direct) adds about 4.5 of them, the framework
    # scenarios as much.
    engines, scenarios = list(ENGINES.values()), list(SCENARIOS.values())
    pins = pinning.Pinning(engine=1, load=0)
    estimate = run.estimate_seconds(Settings(), engines, scenarios, pins)
    shared = run.estimate_seconds(Settings(), engines, scenarios)
    assert 17 * 60 < estimate < 21 * 60
    assert 3.5 * 60 < estimate - shared < 5.5 * 60
    frameworks = [SCENARIOS["flask-hello"], SCENARIOS["django-hello"]]
    assert 3.5 * 60 < run.estimate_seconds(Settings(), engines, frameworks) < 5.5 * 60


def _flag(argv, name):
    for i, arg in enumerate(argv):
        if arg == name:
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


@pytest.mark.parametrize("threads", [1, 8])
def test_engine_commands_same_workers_threads_and_app(threads):
    ports, app = [40001, 40002], SCENARIOS["flask-hello"].app
    commands = {
        name: engine_commands(engine, "/venv/bin/py", ports, 2, threads, app, "/ngx", Path("/d"))
        for name, engine in ENGINES.items()
    }
    assert commands.pop("nginx-static") == [
        ["/ngx", "-p", "/d", "-c", "/d/static.conf", "-e", "/d/static-error.log"]
    ]
    uwsgi = commands.pop("uwsgi")
    for name, argvs in commands.items():
        for argv in argvs:
            assert argv[:2] == ["/venv/bin/py", "-m"]
            assert argv[-1] == "loadtest.bench.apps.flask_hello:app"  # every engine serves it
            assert all("0.0.0.0" not in arg for arg in argv), name  # loopback only
    [argv] = uwsgi
    assert argv[0] == "/venv/bin/uwsgi"  # the venv's, beside its Python
    assert _flag(argv, "--module") == "loadtest.bench.apps.flask_hello:app"
    assert _flag(argv, "--processes") == "2" and "--master" in argv
    assert _flag(argv, "--threads") == (str(threads) if threads > 1 else None)
    assert _flag(argv, "--http11-socket") == "127.0.0.1:40001"  # HTTP with keep-alive
    assert _flag(argv, "--socket") == "127.0.0.1:40002"  # uwsgi protocol, for nginx
    assert "--disable-logging" in argv  # no engine writes an access log
    assert commands["bjoern"] == [
        ["/venv/bin/py", "-m", "loadtest.bench.bjoern_serve", "127.0.0.1:40001", "2",
         "loadtest.bench.apps.flask_hello:app"]
    ]  # fmt: skip
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
    # the variants run the same command in another environment
    assert commands["wsgistack-python"] == commands["wsgistack-bare"] == commands["wsgistack"]


def test_wsgistack_variants_differ_in_environment_only():
    base = {"PATH": "/bin", "PROMETHEUS_MULTIPROC_DIR": "/tmp/m", "WSGISTACK_NO_EXTENSIONS": "0"}
    assert engine_environment(ENGINES["wsgistack"], base) == base  # as shipped: compiled
    assert engine_environment(ENGINES["granian"], base) == base
    assert engine_environment(ENGINES["wsgistack-python"], base) == {
        **base,
        "WSGISTACK_NO_EXTENSIONS": "1",
    }
    assert engine_environment(ENGINES["wsgistack-bare"], base) == {
        "PATH": "/bin",
        "WSGISTACK_NO_EXTENSIONS": "0",
    }
    assert base["PROMETHEUS_MULTIPROC_DIR"] == "/tmp/m"  # a copy: the session's is untouched
    for name in ("wsgistack-python", "wsgistack-bare"):
        assert ENGINES[name].distribution == "wsgistack" and ENGINES[name].threaded


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


def test_nginx_config_for_uwsgi_passes_the_uwsgi_protocol(tmp_path):
    conf = nginx.proxy_config(tmp_path, 40100, [40002], upstream="uwsgi")
    assert "server 127.0.0.1:40002;" in conf
    assert "uwsgi_pass app;" in conf and "proxy_pass" not in conf
    for name in ("REQUEST_METHOD", "QUERY_STRING", "PATH_INFO", "CONTENT_LENGTH", "SERVER_NAME"):
        assert f"uwsgi_param {name} " in conf  # what WSGI's environ is built from
    assert "keepalive" not in conf  # uWSGI closes each uwsgi-protocol connection
    assert conf.count("{") == conf.count("}")


def test_uwsgi_params_match_debians_file():
    debian = Path("/etc/nginx/uwsgi_params")
    if not debian.exists():
        missing = "no /etc/nginx/uwsgi_params (Debian's nginx-common, a host package)"
        if in_ci():
            pytest.fail(f"CI=true: {missing}")
        pytest.skip(missing)
    text = debian.read_text().splitlines()
    lines = [line.split(None, 2) for line in text if line.startswith("uwsgi_param")]
    params = {(name, value.rstrip(";")) for _, name, value in lines}
    assert params == set(nginx.UWSGI_PARAMS)


def test_static_nginx_config_answers_the_greeting(tmp_path):
    conf = nginx.static_config(tmp_path, 40200, 2)
    assert "listen 127.0.0.1:40200;" in conf
    assert "worker_processes 2;" in conf
    assert 'return 200 "Hello from the WSGI stack!\\n";' in conf  # nginx's escape: \n
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


# A main process with one worker; on "go", the worker burns 0.2 s of CPU and
# exits, the main reaps it and starts a replacement that burns 0.2 s and stays.
REPLACED_WORKER = """
import os, sys, time
def burn():
    end = time.process_time() + 0.2
    while time.process_time() < end:
        pass
def worker(start, burnt):
    os.read(start, 1)
    burn()
    os.write(burnt, b"x")
    os._exit(0)
(start_r, start_w), (burnt_r, burnt_w) = os.pipe(), os.pipe()
first = os.fork()
if first == 0:
    worker(start_r, burnt_w)
print("ready", flush=True)
sys.stdin.readline()
os.write(start_w, b"x")
os.read(burnt_r, 1)
os.waitpid(first, 0)
second = os.fork()
if second == 0:
    burn()
    os.write(burnt_w, b"x")
    time.sleep(30)
    os._exit(0)
os.read(burnt_r, 1)
print("done", flush=True)
sys.stdin.readline()
os.kill(second, 9)
"""


def _line(proc: subprocess.Popen) -> str:
    ready, _, _ = select.select([proc.stdout], [], [], 10)  # bounded wait
    assert ready, "the process tree said nothing within 10 s"
    return proc.stdout.readline()


def test_tree_cpu_seconds_keeps_a_replaced_worker_and_counts_its_replacement():
    proc = subprocess.Popen(
        [sys.executable, "-c", REPLACED_WORKER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert _line(proc) == "ready\n"
        assert len(sampling.children([proc.pid])) == 1
        before = sampling.tree_cpu_seconds([proc.pid])
        proc.stdin.write("go\n")
        proc.stdin.flush()
        assert _line(proc) == "done\n"
        # the first worker's 0.2 s now in the main's reaped children, the second's living
        used = sampling.tree_cpu_seconds([proc.pid]) - before
        proc.stdin.write("end\n")
        proc.stdin.flush()
        assert proc.wait(10) == 0
    finally:
        proc.kill()
    assert 0.35 <= used < 1.0  # clock ticks: 10 ms resolution
    assert sampling.tree_cpu_seconds([2**22 + 1]) == 0  # no such process


def test_keep_logs_copies_the_sessions_non_empty_logs(tmp_path):
    session = tmp_path / "tmp" / "wsgistack-pinned-1x1-wsgi-abc123"
    session.mkdir(parents=True)
    (session / "engine.log").write_text("worker 42 exited\n")
    (session / "nginx.log").write_text("")
    (session / "nginx.conf").write_text("events {}\n")
    run.keep_logs(tmp_path / "tmp", tmp_path / "report" / "logs")
    kept = sorted(p.relative_to(tmp_path / "report") for p in tmp_path.glob("report/**/*.*"))
    assert kept == [Path("logs/wsgistack-pinned-1x1-wsgi-abc123/engine.log")]
    assert (tmp_path / "report" / kept[0]).read_text() == "worker 42 exited\n"
