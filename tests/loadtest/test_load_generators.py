"""The generators' commands (h2load open loop, wrk closed loop) and reading their output.
Nothing here runs a generator: the compose-based smoke runs in tests/stack/integration do."""

from __future__ import annotations

import json
import shlex
import subprocess

import numpy as np
import pytest

from loadtest import generators, scenario
from loadtest.scenario import ScenarioError


def h2load_commands(plan: generators.Plan) -> dict[str, dict[str, str]]:
    """{request name: {flag: value}} from the h2load lines of run.sh."""
    commands = {}
    for line in plan.files["run.sh"].decode().splitlines():
        if line.startswith("( h2load"):
            words = shlex.split(line.split(">")[0][2:])
            flags = dict(w.removeprefix("--").split("=", 1) for w in words if "=" in w)
            flags["url"] = words[-1]
            commands[flags["log-file"].removeprefix("/out/").removesuffix(".log")] = flags
    return commands


def test_open_loop_sends_each_request_at_its_share_of_the_rate():
    mixed = scenario.load("mixed")
    plan = generators.open_loop(mixed, 30)
    commands = h2load_commands(plan)
    assert list(commands) == [r.name for r in mixed.requests]
    for request in mixed.requests:
        flags = commands[request.name]
        rate = mixed.rate * mixed.share(request)
        assert float(flags["rps"]) * int(flags["clients"]) == pytest.approx(rate, rel=1e-5)
        assert int(flags["requests"]) == round(rate * 30)
        assert flags["url"] == "https://proxy:8443" + request.path
        assert flags["max-concurrent-streams"] == "100"
        # connections open 1/rate s apart, so their requests interleave evenly
        assert int(flags["rate"]) == 1
        assert flags["rate-period"] == f"{round(1000 / rate)}ms"
    assert plan.offered == sum(int(f["requests"]) for f in commands.values()) == 3000
    assert plan.connections == sum(int(f["clients"]) for f in commands.values())


def test_open_loop_posts_bodies_from_files_with_their_headers():
    upload = scenario.load("upload")
    plan = generators.open_loop(upload, 2)
    flags = h2load_commands(plan)["upload-1mib"]
    assert flags["data"] == "/out/upload-1mib.body"
    assert plan.files["upload-1mib.body"] == upload.requests[0].body
    assert "'--header=content-type: application/octet-stream'" in plan.files["run.sh"].decode()


def test_fast_request_streams_open_connections_in_batches_per_millisecond():
    fast = scenario.load("hello").with_overrides(rate=5000, connections=50, duration=2)
    flags = h2load_commands(generators.open_loop(fast, 2))["hello"]
    assert (flags["rate"], flags["rate-period"]) == ("5", "1ms")


def test_open_loop_never_has_more_connections_than_requests():
    tiny = scenario.load("hello").with_overrides(rate=1, duration=2)
    flags = h2load_commands(generators.open_loop(tiny, 2))["hello"]
    assert (flags["requests"], flags["clients"]) == ("2", "2")


def test_http1_scenarios_use_h1_without_pipelining(tmp_path):
    path = tmp_path / "h1.toml"
    path.write_text('rate = 10\nprotocol = "http/1.1"\n[[request]]\nname = "a"\npath = "/"\n')
    script = generators.open_loop(scenario.load(str(path)), 5).files["run.sh"].decode()
    assert " --h1 " in script and "--max-concurrent-streams=1 " in script


@pytest.mark.parametrize("name", ["hello", "mixed"])
def test_run_scripts_are_valid_shell(tmp_path, name):
    for plan in (
        generators.open_loop(scenario.load(name), 5),
        generators.closed_loop(scenario.load(name), 5),
    ):
        path = tmp_path / "run.sh"
        path.write_bytes(plan.files["run.sh"])
        assert subprocess.run(["sh", "-n", str(path)]).returncode == 0


def test_closed_loop_runs_one_wrk_thread_per_connection_with_the_weighted_script():
    mixed = scenario.load("mixed")
    plan = generators.closed_loop(mixed, 7.6)
    script = plan.files["run.sh"].decode()
    assert "wrk --threads=16 --connections=16 --duration=8s" in script
    assert script.rstrip().endswith("https://proxy:8443 >/out/wrk.out 2>&1; echo $? >/out/wrk.rc")
    lua = plan.files["wrk.lua"].decode()
    for request in mixed.requests:
        assert f'path = "{request.path}"' in lua
        assert f"weight = {request.weight!r}" in lua
    assert 'body_file = "/out/upload-1mib.body"' in lua
    assert plan.files["upload-1mib.body"] == mixed.requests[4].body
    assert (plan.mode, plan.offered, plan.duration) == ("closed", None, 8.0)


def test_closed_loop_refuses_more_connections_than_threads_it_may_start():
    hello = scenario.load("hello").with_overrides(connections=generators.WRK_MAX_CONNECTIONS + 1)
    with pytest.raises(ScenarioError, match="at most"):
        generators.closed_loop(hello, 5)


def test_h2load_log_lines_become_responses_and_a_partial_line_waits():
    text = "1700000000000000\t200\t1500\n1700000000500000\t-1\t30000000\n1700000001000000\t50"
    responses = generators.parse_h2load_log(text, kind=3)
    assert len(responses) == 2
    assert responses.status.tolist() == [200, -1]
    assert responses.latency.tolist() == [0.0015, 30.0]
    assert responses.end.tolist() == pytest.approx([1700000000.0015, 1700000030.5])
    assert responses.kind.tolist() == [3, 3]
    assert len(generators.parse_h2load_log("", 0)) == 0


def test_wrk_log_lines_become_responses():
    responses = generators.parse_wrk_log("1700000000.250000\t200\t0.012000\t4\n")
    assert responses.end.tolist() == [1700000000.25]
    assert (responses.status[0], responses.latency[0], responses.kind[0]) == (200, 0.012, 4)


H2LOAD_OUTPUT = """\
finished in 3.61s, 5.53 req/s, 1.13KB/s
requests: 20 total, 19 started, 18 done, 17 succeeded, 3 failed, 1 errored, 0 timeout
status codes: 17 2xx, 0 3xx, 0 4xx, 0 5xx
"""


def test_h2load_totals_line():
    assert generators.parse_h2load_output(H2LOAD_OUTPUT) == {
        "total": 20,
        "started": 19,
        "done": 18,
        "succeeded": 17,
        "failed": 3,
        "errored": 1,
        "timeout": 0,
    }
    assert generators.parse_h2load_output("getaddrinfo() failed") == {}


def test_tail_returns_whole_lines_once(tmp_path):
    path = tmp_path / "log"
    tail = generators.Tail(path)
    assert tail.read() == ""  # not there yet
    path.write_text("a\nb")
    assert tail.read() == "a\n"
    with path.open("a") as f:
        f.write("c\nd\n")
    assert tail.read() == "bc\nd\n"
    assert tail.read() == ""


def test_read_run_counts_what_was_not_answered_and_keeps_failures(tmp_path):
    mixed = scenario.load("mixed")
    plan = generators.open_loop(mixed, 1)  # 100 offered
    (tmp_path / "hello.log").write_text("1700000000000000\t200\t1000\n" * 60)
    (tmp_path / "hello.rc").write_text("0\n")
    (tmp_path / "json-echo.out").write_text("starting benchmark...\ngetaddrinfo() failed: x\n")
    (tmp_path / "json-echo.rc").write_text("1\n")
    responses, totals = generators.read_run(plan, mixed, tmp_path)
    assert len(responses) == 60 and set(responses.kind.tolist()) == {0}
    assert totals["not_completed"] == 40
    assert totals["exit_codes"]["hello"] == 0 and totals["exit_codes"]["json-echo"] == 1
    assert totals["exit_codes"]["work-5ms"] is None
    assert totals["messages"]["json-echo"] == "getaddrinfo() failed: x"


def test_read_run_reads_wrk_totals(tmp_path):
    hello = scenario.load("hello")
    plan = generators.closed_loop(hello, 1)
    (tmp_path / "wrk-1.tsv").write_text("1700000000.1\t200\t0.01\t0\n")
    (tmp_path / "wrk-2.tsv").write_text("1700000000.2\t503\t0.02\t0\n")
    (tmp_path / "wrk.rc").write_text("0\n")
    summary = {"requests": 2, "duration_us": 1000000, "errors": {"read": 1}}
    (tmp_path / "wrk-summary.json").write_text(json.dumps(summary))
    responses, totals = generators.read_run(plan, hello, tmp_path)
    assert np.sort(responses.status).tolist() == [200, 503]
    assert totals["wrk"] == summary and totals["messages"] == {}
