"""The process model under signals and faults, on real processes: reload under
load (also to code that fails to import, and of the config file), killed and
hung workers, graceful and immediate stops, worker count, log reopening, boot
failures, recycling, --preload and configuration.

Every wait is bounded; load is a bounded number of requests on loopback.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from tests.server.conformance import RECORDER
from tests.support import ROOT, wait_until
from tests.support.process import Server, free_port, server_environ
from tests.support.rawhttp import Client, request


def children(pid: int) -> set[int]:
    """The pids whose parent is ``pid`` (the master's workers)."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                found.add(int(entry))
    return found


def get(server: Server, target: str = "/pid") -> dict:
    client = Client(server.connect())
    try:
        client.send(request(target=target))
        return client.response().json()
    finally:
        client.close()


class Load:
    """Background clients sending GET /pid until stopped (bounded in count and time).

    Each client uses keep-alive, opens a new connection every 5 requests or when
    the server says Connection: close. Every request must get a 200.
    """

    def __init__(self, server: Server, clients: int = 2, limit: int = 4000, seconds: float = 40):
        self.server, self.limit, self.seconds = server, limit, seconds
        self.stopped = threading.Event()
        self.ok = 0
        self.failures: list[str] = []
        self.pids: set[int] = set()
        self.threads = [threading.Thread(target=self._run) for _ in range(clients)]

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        for thread in self.threads:
            thread.join(30)

    def wait(self, requests: int) -> None:
        """Until ``requests`` more succeeded (bounded by the load's own limits)."""
        target = self.ok + requests
        assert wait_until(lambda: self.ok >= target or self.stopped.is_set(), 30)

    def _run(self) -> None:
        deadline = time.monotonic() + self.seconds
        client = None
        used = 0
        while not self.stopped.is_set() and time.monotonic() < deadline:
            if self.ok + len(self.failures) >= self.limit:
                break
            try:
                if client is None:
                    client, used = Client(self.server.connect()), 0
                client.send(request(target="/pid"))
                response = client.response()
                used += 1
                if response.status != 200:
                    self.failures.append(f"status {response.status}")
                else:
                    self.ok += 1
                    self.pids.add(response.json()["pid"])
                if response.header("Connection") == "close" or used >= 5:
                    client.close()
                    client = None
            except Exception as exc:  # any refused, reset or cut request is a failure
                self.failures.append(repr(exc))
                if client is not None:
                    client.close()
                client = None
        if client is not None:
            client.close()
        self.stopped.set()


# -- reload ------------------------------------------------------------------------

HOT_APP = """
VERSION = "{version}"

def application(environ, start_response):
    import os
    body = ('{{"pid": %d, "version": "%s"}}' % (os.getpid(), VERSION)).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
"""


def test_sighup_reloads_fresh_code_with_no_failed_request(spawn, tmp_path):
    module = tmp_path / "hotapp.py"
    module.write_text(HOT_APP.format(version="1"))
    env = {"PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}", "PYTHONDONTWRITEBYTECODE": "1"}
    server = spawn("-w", "2", "--graceful-timeout", "10", app="hotapp:application", env=env)
    server.wait_ready(2)
    old = children(server.proc.pid)
    assert get(server)["version"] == "1"
    module.write_text(HOT_APP.format(version="2"))
    load = reload_under_load(server, old, "2", requests=100)
    print(f"reload under load: {load.ok} requests, {len(load.failures)} failed")
    assert load.failures == []
    assert {get(server)["version"] for _ in range(10)} == {"2"}
    assert len(children(server.proc.pid)) == 2
    assert server.stop() == 0


def reload_under_load(server: Server, old: set[int], version: str, requests: int) -> Load:
    """SIGHUP with ``requests`` answered before and after it, until the workers in
    ``old`` are gone and the app answers ``version``; the finished Load."""
    with Load(server) as load:
        load.wait(requests)
        server.proc.send_signal(signal.SIGHUP)
        assert wait_until(lambda: get(server)["version"] == version, 20)
        assert wait_until(lambda: not (children(server.proc.pid) & old), 20)
        load.wait(requests)
    return load


BROKEN_APP = "raise RuntimeError('the new code cannot start')\n"


def test_sighup_to_code_that_fails_to_import_keeps_the_old_workers_serving(spawn, tmp_path):
    module = tmp_path / "hotapp.py"
    module.write_text(HOT_APP.format(version="1"))
    env = {"PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}", "PYTHONDONTWRITEBYTECODE": "1"}
    server = spawn("-w", "2", "--graceful-timeout", "10", app="hotapp:application", env=env)
    server.expect_log("worker failed to load the application")  # the import's traceback, on purpose
    server.wait_ready(2)
    old = children(server.proc.pid)
    module.write_text(BROKEN_APP)
    with Load(server) as load:
        load.wait(100)
        server.proc.send_signal(signal.SIGHUP)
        assert wait_until(lambda: "SIGHUP: reload abandoned" in server.log(), 20)
        load.wait(100)
    print(f"failed reload under load: {load.ok} requests, {len(load.failures)} failed")
    assert load.failures == []
    assert server.proc.poll() is None
    assert children(server.proc.pid) == old
    assert {get(server)["version"] for _ in range(10)} == {"1"}
    log = server.log()
    assert log.count("Traceback (most recent call last)") == 1
    assert log.count("RuntimeError: the new code cannot start") == 1
    assert log.count("spawned worker") == 3  # 2 at start, 1 for the reload: no respawn loop

    module.write_text(HOT_APP.format(version="2"))  # fixed: the next HUP reloads
    assert reload_under_load(server, old, "2", requests=50).failures == []
    assert {get(server)["version"] for _ in range(10)} == {"2"}
    assert len(children(server.proc.pid)) == 2
    assert server.stop() == 0


def test_replacement_that_fails_to_import_is_not_retried(spawn, tmp_path):
    module = tmp_path / "hotapp.py"
    module.write_text(HOT_APP.format(version="1"))
    env = {"PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}", "PYTHONDONTWRITEBYTECODE": "1"}
    server = spawn("-w", "2", app="hotapp:application", env=env)
    server.expect_log("worker failed to load the application")  # the import's traceback, on purpose
    server.wait_ready(2)
    first, second = sorted(children(server.proc.pid))
    module.write_text(BROKEN_APP)  # changed on disk, no HUP
    os.kill(first, signal.SIGKILL)
    assert wait_until(lambda: "not replacing it" in server.log(), 20)
    assert {get(server)["pid"] for _ in range(5)} == {second}  # the other one still serves
    assert children(server.proc.pid) == {second}
    os.kill(second, signal.SIGKILL)  # no worker left and none can boot: stop
    assert server.proc.wait(20) == 3
    log = server.log()
    assert "no worker left and the app fails to import; stopping" in log
    assert log.count("Traceback (most recent call last)") == 1
    assert log.count("spawned worker") == 3


def test_sighup_rereads_the_config_file_and_keeps_it_when_invalid(spawn, tmp_path):
    config = tmp_path / "conf.py"
    config.write_text("workers = 2\n")
    server = spawn("-c", str(config))
    server.wait_ready(2)
    master = server.proc.pid
    old = children(master)
    assert len(old) == 2
    config.write_text("workers = 3\n")
    server.proc.send_signal(signal.SIGHUP)
    assert wait_until(lambda: len(children(master)) == 3 and not (children(master) & old), 20)
    reloaded = [x for x in server.log().splitlines() if "SIGHUP: reloading; config:" in x]
    assert len(reloaded) == 1
    assert f"workers=3(file {config})" in reloaded[0]
    spawned = server.log().count("spawned worker")

    config.write_text("workers = 'many'\n")
    server.proc.send_signal(signal.SIGHUP)
    assert wait_until(lambda: "configuration not reloaded" in server.log())
    refused = [x for x in server.log().splitlines() if "configuration not reloaded" in x]
    assert len(refused) == 1
    assert refused[0].endswith(f"--workers (file {config}): must be an integer, got 'many'")
    assert "pid" in get(server)
    assert len(children(master)) == 3
    assert server.log().count("spawned worker") == spawned  # the running workers stay
    assert server.stop() == 0


# -- dead and hung workers -----------------------------------------------------------


def test_killed_worker_is_replaced_at_once(spawn):
    server = spawn("-w", "2")
    server.wait_ready(2)
    victim = get(server)["pid"]
    spawned = server.log().count("spawned worker")
    killed_at = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    assert wait_until(lambda: server.log().count("spawned worker") > spawned, 10)
    replaced = time.monotonic() - killed_at
    assert wait_until(lambda: server.log().count(" serving ") == 3, 10)
    serving = time.monotonic() - killed_at
    print(f"kill -9: replacement spawned after {replaced:.3f} s, serving after {serving:.3f} s")
    assert replaced < 2.0  # the master reacts to SIGCHLD, not to its 1 s tick
    assert f"worker {victim} exited unexpectedly (signal 9)" in server.log()
    assert victim not in children(server.proc.pid)
    assert len(children(server.proc.pid)) == 2
    assert get(server)["pid"] != victim


def test_hung_worker_is_aborted_after_timeout_and_its_request_logged(spawn):
    server = spawn("-w", "1", "--timeout", "2")
    server.wait_ready(1)
    client = Client(server.connect())
    client.send(request(target="/sleep?s=30"))
    assert client.closed()  # no answer: the worker was killed
    log = server.log()
    assert "WORKER TIMEOUT" in log
    assert re.search(r"worker \d+ timed out serving GET /sleep\?s=30", log), log
    assert wait_until(lambda: server.log().count(" serving ") == 2, 10)
    assert "pid" in get(server)


def test_worker_ignoring_sigabrt_is_killed(spawn):
    server = spawn("-w", "1", "--timeout", "2")
    server.wait_ready(1)
    client = Client(server.connect())
    client.send(request(target="/hang"))
    assert client.closed()
    assert re.search(r"worker \d+ ignored SIGABRT; sending SIGKILL", server.log())
    assert wait_until(lambda: server.log().count(" serving ") == 2, 10)
    assert "pid" in get(server)


# -- stopping ------------------------------------------------------------------------


def test_sigterm_finishes_in_flight_requests_then_exits_0(spawn, tmp_path):
    server = spawn("-w", "2", "--threads", "2")
    server.wait_ready(2)
    held = [Client(server.connect()) for _ in range(3)]
    for i, client in enumerate(held):
        client.send(request(target=f"/hold?dir={tmp_path}&name={i}"))
    for i in range(3):  # every request is inside the app
        assert wait_until((tmp_path / f"started-{i}").exists)
    server.proc.send_signal(signal.SIGTERM)
    assert wait_until(lambda: "stopping (SIGTERM, graceful)" in server.log())
    (tmp_path / "release").touch()
    for client in held:
        response = client.response()
        assert response.status == 200  # finished, not cut
        assert response.header("Connection") == "close"
    assert server.proc.wait(20) == 0
    with pytest.raises(ConnectionRefusedError):
        server.connect()


def test_sigint_is_a_graceful_stop_too(spawn):
    server = spawn("-w", "1")
    server.wait_ready(1)
    server.proc.send_signal(signal.SIGINT)
    assert server.proc.wait(20) == 0
    assert "stopping (SIGINT, graceful)" in server.log()


def test_graceful_timeout_bounds_the_stop(spawn):
    server = spawn("-w", "1", "--graceful-timeout", "1")
    server.wait_ready(1)
    client = Client(server.connect())
    client.send(request(target="/sleep?s=30"))
    time.sleep(0.3)
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(20) == 0
    assert client.closed()
    assert "still running after the graceful timeout; killing it" in server.log()


def test_sigquit_stops_at_once(spawn):
    server = spawn("-w", "2")
    server.wait_ready(2)
    workers = children(server.proc.pid)
    client = Client(server.connect())
    client.send(request(target="/sleep?s=30"))
    time.sleep(0.3)
    server.proc.send_signal(signal.SIGQUIT)
    assert server.proc.wait(10) == 0
    assert client.closed()  # the in-flight request is cut, not finished
    assert "stopping (SIGQUIT, immediate)" in server.log()
    assert not any(os.path.exists(f"/proc/{pid}") for pid in workers)


def test_a_stop_while_a_worker_starts_reaches_that_worker(spawn, tmp_path):
    """SIGTERM just after a fork: the new worker, still in post_fork, must stop
    too. It used to run the master's inherited handler, lose the signal and serve
    on until --graceful-timeout killed it."""
    started = tmp_path / "started"
    hooks = tmp_path / "hooks.py"
    hooks.write_text(
        "import pathlib, time\n"
        "def post_fork(server, worker):\n"
        f"    pathlib.Path({str(started)!r}).touch()\n"
        "    time.sleep(1)\n"
    )
    server = spawn("-w", "1", "--graceful-timeout", "20", "-c", str(hooks))
    assert wait_until(started.exists, 10), server.log()
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(10) == 0, server.log()
    log = server.log()
    assert re.search(r"worker \d+ exiting", log) and "still running after" not in log


# -- worker count and logs ----------------------------------------------------------


def test_ttin_and_ttou_change_the_worker_count(spawn):
    server = spawn("-w", "2")
    server.wait_ready(2)
    master = server.proc.pid
    server.proc.send_signal(signal.SIGTTIN)
    assert wait_until(lambda: len(children(master)) == 3)
    server.proc.send_signal(signal.SIGTTIN)
    assert wait_until(lambda: len(children(master)) == 4)
    for expected in (3, 2, 1, 1):  # never below one worker
        server.proc.send_signal(signal.SIGTTOU)
        assert wait_until(lambda n=expected: len(children(master)) == n)
    time.sleep(0.5)
    assert len(children(master)) == 1
    assert "pid" in get(server)


def test_sigusr1_reopens_log_files(spawn, tmp_path):
    error_log, access_log = tmp_path / "error.log", tmp_path / "access.log"
    server = spawn(
        "-w", "2", "--error-logfile", str(error_log), "--access-logfile", str(access_log)
    )
    server.log_path = error_log
    server.wait_ready(2)
    get(server, "/pid?before")
    assert wait_until(lambda: "/pid?before" in access_log.read_text())
    error_log.rename(tmp_path / "error.log.1")  # what logrotate does
    access_log.rename(tmp_path / "access.log.1")
    server.proc.send_signal(signal.SIGUSR1)
    assert wait_until(error_log.exists)  # the master's next line opens the new file
    for i in range(6):  # reach both workers
        get(server, f"/pid?after={i}")
    assert wait_until(lambda: access_log.exists() and "/pid?after" in access_log.read_text())
    assert "/pid?after" not in (tmp_path / "access.log.1").read_text()
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(20) == 0
    assert "stopped" in error_log.read_text()


# -- boot failures ------------------------------------------------------------------------


def test_app_that_fails_to_import_stops_the_master_with_one_traceback(spawn, tmp_path):
    (tmp_path / "broken.py").write_text("raise RuntimeError('this app cannot start')\n")
    env = {"PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}
    server = spawn("-w", "3", app="broken:application", env=env)
    server.expect_log("worker failed to load the application")  # the import's traceback, on purpose
    assert server.proc.wait(30) == 3
    log = server.log()
    assert log.count("Traceback (most recent call last)") == 1
    assert log.count("RuntimeError: this app cannot start") == 1
    assert log.count("spawned worker") == 1  # no respawn loop


def test_app_that_fails_to_import_with_preload(spawn, tmp_path):
    (tmp_path / "broken.py").write_text("raise RuntimeError('this app cannot start')\n")
    env = {"PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}
    server = spawn("-w", "2", "--preload", app="broken:application", env=env)
    server.expect_log("cannot load the application")  # the import's traceback, on purpose
    assert server.proc.wait(30) == 3
    assert server.log().count("Traceback (most recent call last)") == 1
    assert "spawned worker" not in server.log()


# -- recycling -------------------------------------------------------------------------------


def test_max_requests_with_jitter_recycles_with_no_failed_request(spawn):
    server = spawn("-w", "2", "--max-requests", "25", "--max-requests-jitter", "10")
    server.wait_ready(2)
    with Load(server, limit=400) as load:
        assert wait_until(lambda: load.stopped.is_set(), 60)
    recycled = server.log().count("served its max-requests")
    print(f"max-requests: {load.ok} requests, {recycled} workers recycled, {load.failures}")
    assert load.failures == []
    assert load.ok >= 400
    assert recycled >= 400 // 35 - 2  # every worker leaves after 25..35 requests
    assert len(load.pids) >= recycled


def test_max_worker_memory_recycles_with_no_failed_request(spawn):
    server = spawn("-w", "2", "--max-worker-memory", "100")
    server.wait_ready(2)
    with Load(server, limit=3000) as load:
        load.wait(50)
        grown = get(server, "/grow?mb=120")["pid"]
        assert wait_until(lambda: not os.path.exists(f"/proc/{grown}"), 20)
        load.wait(50)
    print(f"max-worker-memory: {load.ok} requests, failures {load.failures}")
    assert load.failures == []
    assert f"worker {grown} uses" in server.log()
    assert wait_until(lambda: len(children(server.proc.pid)) == 2)


# -- preload and configuration --------------------------------------------------------


def test_preload_imports_the_app_in_the_master(spawn):
    server = spawn("-w", "2", "--preload")
    server.wait_ready(2)
    seen = get(server)
    assert seen["imported_by"] == server.proc.pid
    assert seen["pid"] != server.proc.pid


def test_without_preload_each_worker_imports_the_app(spawn):
    server = spawn("-w", "1")
    server.wait_ready(1)
    seen = get(server)
    assert seen["imported_by"] == seen["pid"] != server.proc.pid


def run_server(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "wsgistack", *args],
        cwd=ROOT,
        env=server_environ(env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_config_validates_imports_and_exits_without_binding():
    port = free_port()
    result = run_server(RECORDER, "-b", f"127.0.0.1:{port}", "--check-config")
    assert result.returncode == 0, result.stderr
    assert "configuration OK" in result.stderr
    assert f"bind=['127.0.0.1:{port}'](flag)" in result.stderr
    with socket.socket() as probe:  # nothing listens there
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_check_config_fails_for_an_app_that_cannot_import():
    result = run_server("no_such_module:app", "--check-config")
    assert result.returncode == 1
    assert "ModuleNotFoundError" in result.stderr


@pytest.mark.parametrize(
    ("args", "env", "line"),
    [
        (["--workers", "zero"], {}, "error: --workers (flag): must be an integer, got 'zero'"),
        (["--threads", "0"], {}, "error: --threads (flag): must be >= 1, got 0"),
        (
            [],
            {"WSGISTACK_TIMEOUT": "-1"},
            "error: --timeout (env WSGISTACK_TIMEOUT): must be >= 0 ",
        ),
        ([], {"WEB_CONCURRENCY": "many"}, "error: --workers (env WEB_CONCURRENCY): must be an"),
        (["-b", "nowhere"], {}, "error: --bind (flag): must be HOST:PORT or unix:PATH"),
        (["--log-level", "loud"], {}, "error: --log-level (flag): must be debug, info,"),
    ],
)
def test_bad_configuration_exits_2_with_one_line(args, env, line):
    result = run_server(RECORDER, "--check-config", *args, env=env)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(line), result.stderr


def test_bad_value_in_config_file_names_the_file(tmp_path):
    config = tmp_path / "conf.py"
    config.write_text("keep_alive = 'forever'\n")
    result = run_server(RECORDER, "--check-config", "-c", str(config))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: --keep-alive (file {config}): must be a number of seconds, got 'forever'"
    )


def test_precedence_flags_env_file_defaults_printed_at_startup(tmp_path):
    config = tmp_path / "conf.py"
    config.write_text("workers = 5\nthreads = 2\nkeep_alive = 5\ntimeout = 7\n")
    result = run_server(
        RECORDER,
        "--check-config",
        "-c",
        str(config),
        "--keep-alive",
        "9",
        env={"WEB_CONCURRENCY": "3", "WSGISTACK_THREADS": "4"},
    )
    assert result.returncode == 0, result.stderr
    line = next(x for x in result.stderr.splitlines() if "config:" in x)
    assert "keep_alive=9.0(flag)" in line  # flag over env and file
    assert "threads=4(env WSGISTACK_THREADS)" in line  # env over file
    assert "workers=3(env WEB_CONCURRENCY)" in line
    assert f"timeout=7.0(file {config})" in line  # file over default
    assert "backlog=2048(default)" in line


@pytest.mark.parametrize("style", ["json", "combined"])
def test_access_log_styles_end_to_end(spawn, tmp_path, style):
    access_log = tmp_path / "access.log"
    flags = ["-w", "1", "--access-logfile", str(access_log), "--access-log-style", style]
    server = spawn(*flags)
    server.wait_ready(1)
    client = Client(server.connect())
    client.send(request(target="/pid?q=1", headers=[("X-Request-ID", "rid-7"), ("Referer", "r")]))
    assert client.response().status == 200
    client.close()
    assert wait_until(lambda: access_log.exists() and access_log.read_text().endswith("\n"))
    line = access_log.read_text().splitlines()[0]
    if style == "json":
        import json

        entry = json.loads(line)
        assert (entry["request_id"], entry["status"], entry["uri"]) == ("rid-7", 200, "/pid?q=1")
        assert entry["response_bytes"] > 0 and 0 <= entry["duration_seconds"] < 10
    else:
        assert re.fullmatch(
            r'127\.0\.0\.1 - - \[[^\]]+\] "GET /pid\?q=1 HTTP/1\.1" 200 \d+ "r" "-"', line
        ), line
