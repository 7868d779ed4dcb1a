"""loadtest.bench.profile: which runs are profiled and when, py-spy's raw samples summed
per function, and their section in results.md. Recorded output and a Session whose wrk
and py-spy are stand-ins: nothing here starts a process."""

from __future__ import annotations

import dataclasses

import pytest

from loadtest.bench import pinning, profile, sampling, session, table
from loadtest.bench.engines import ENGINES
from loadtest.bench.scenarios import SCENARIOS
from loadtest.bench.settings import Settings
from tests.loadtest.test_bench_table import MACHINE, run
from tests.loadtest.test_bench_wrk import WRK_SLOW

# py-spy 0.4 `record --format raw`: collapsed stacks, root first, and a sample count
MAIN = "<module> (wsgistack/__main__.py:65);Worker._loop (wsgistack/worker.py:258)"
RAW = "\n".join(
    (
        f"{MAIN};Connection._send_now (wsgistack/http/connection.py:163) 60",
        f"{MAIN};Connection._send_now (wsgistack/http/connection.py:170) 15",
        f"{MAIN};EpollSelector.select (selectors.py:468) 20",
        f"{MAIN};index (wsgistack_demo/wsgi.py:158) 5",
        "garbage line",
    )
)


def test_self_time_sums_the_innermost_frames_per_function_over_their_lines():
    found = profile.self_time(RAW)
    assert found == [
        {
            "function": "Connection._send_now",
            "file": "wsgistack/http/connection.py",
            "samples": 75,
            "share": 0.75,
        },
        {"function": "EpollSelector.select", "file": "selectors.py", "samples": 20, "share": 0.2},
        {"function": "index", "file": "wsgistack_demo/wsgi.py", "samples": 5, "share": 0.05},
    ]
    assert profile.self_time(RAW, shown=1)[0]["function"] == "Connection._send_now"
    assert profile.self_time("") == []


def _meta(scenario, pinning):
    """A run's meta, as run.run() writes it, for ``scenario`` with the given pinning."""
    return {
        "started": "x",
        "settings": {**vars(Settings())},
        "scenarios": [scenario],
        "versions": {},
        "commit": "abc1234",
        "machine": MACHINE,
        "pinning": pinning,
    }


def test_results_md_shows_the_profile_after_the_targets():
    meta = _meta("hello", {"engine": 1, "load": 0})
    profiled = dataclasses.replace(
        run("wsgistack", "hello", 10.0, round_no=3, pinned=True), profile=profile.self_time(RAW)
    )
    text = table.render_markdown(meta, [profiled])
    section = text[text.index("## Where the time goes") :]
    assert text.index("## Targets (issue 15)") < text.index("## Where the time goes")
    assert "### wsgistack, pinned `hello`, round 3" in section
    assert "| `Connection._send_now` | wsgistack/http/connection.py | 75 | 75.0% |" in section
    assert "## Where the time goes" not in table.render_markdown(
        meta, [run("wsgistack", "hello", 10.0)]
    )


@pytest.mark.parametrize(
    ("engine", "scenario", "pinned", "when"),
    [
        ("wsgistack", "hello", True, "during"),  # the CPU targets: every build of ours
        ("wsgistack-python", "hello", True, "during"),
        ("wsgistack-bare", "hello", True, "during"),
        ("granian", "hello", True, None),
        ("wsgistack", "hello-direct", True, None),
        ("wsgistack", "sleep", False, "after"),  # the shared-CPU targets: the shipped one
        ("wsgistack", "flask-hello", False, "after"),
        ("wsgistack", "django-hello", False, "after"),
        ("wsgistack-python", "sleep", False, None),
        ("granian", "sleep", False, None),
        ("wsgistack", "hello", False, None),
        ("wsgistack", "upload", False, None),
    ],
)
def test_timing_profiles_the_scenario_of_each_target(engine, scenario, pinned, when):
    assert profile.timing(engine, scenario, pinned) == when


def test_the_targets_judged_on_shared_cpus_are_the_ones_profiled_after_their_run():
    judged = {"sleep"} | {scenario for scenario, _, _ in table.RPS_TARGETS}
    assert set(table.SHARED_TARGET_SCENARIOS) == judged


class _Spy:
    def __init__(self, events, out, gil):
        events.append("py-spy --gil" if gil else "py-spy")
        out.write_text(RAW)

    def wait(self, timeout):
        return 0


@pytest.fixture
def measuring(monkeypatch, tmp_path):
    """A Session of ENGINE whose wrk and py-spy only say when they ran (``events``):
    (measure(engine, scenario, round, pinned) -> Run, events)."""
    events = []

    def fake_wrk(url, options, seconds):
        events.append(f"wrk {seconds} s")
        return WRK_SLOW

    class Sampler:
        peak, peak_total = {}, 0

        def __init__(self, mains):
            pass

        def __enter__(self):
            events.append("measured:")
            return self

        def __exit__(self, *exc):
            events.append(":measured")

    monkeypatch.setattr(session, "check_scenario", lambda port, scenario: None)
    monkeypatch.setattr(sampling, "children", lambda mains: [4321])
    monkeypatch.setattr(sampling, "tree_cpu_seconds", lambda pids: 1.0)
    monkeypatch.setattr(sampling, "children_cpu_seconds", lambda: 1.0)
    monkeypatch.setattr(sampling, "RssSampler", Sampler)
    monkeypatch.setattr(profile, "py_spy", lambda: "/usr/bin/py-spy")
    monkeypatch.setattr(profile, "start", lambda exe, pid, s, out, pin, gil: _Spy(events, out, gil))

    def measure(engine, scenario, round_no, pinned):
        bench = session.Session.__new__(session.Session)
        bench.engine, bench.settings = ENGINES[engine], Settings(duration=3, warmup=1, rounds=3)
        bench.pins = pinning.Pinning(engine=1, load=0) if pinned else None
        bench.load_cpu = 0 if pinned else None
        threads = 8 if SCENARIOS[scenario].threaded else 1
        bench.workers, bench.threads, bench.dir = 1 if pinned else 2, threads, tmp_path
        bench.procs, bench.nginx, bench.port, bench.engine_port = [], None, 1, 2
        bench._wrk = fake_wrk
        events.clear()
        return bench.measure(SCENARIOS[scenario], None, round_no), list(events)

    return measure


def test_a_shared_cpu_target_is_profiled_in_an_extra_run_after_the_measured_one(measuring):
    result, events = measuring("wsgistack", "sleep", 3, pinned=False)
    assert events == ["wrk 1 s", "measured:", "wrk 3 s", ":measured", "py-spy --gil", "wrk 3 s"]
    assert result.profile[0]["function"] == "Connection._send_now"
    _, events = measuring("wsgistack", "django-hello", 3, pinned=False)
    assert events[-2:] == ["py-spy", "wrk 3 s"]  # one thread: every sample, waits too
    result, events = measuring("wsgistack", "sleep", 2, pinned=False)  # not the last round
    assert events == ["wrk 1 s", "measured:", "wrk 3 s", ":measured"]
    assert result.profile is None
    result, events = measuring("wsgistack-python", "flask-hello", 3, pinned=False)
    assert "py-spy" not in events and result.profile is None


def test_the_pinned_hello_is_profiled_during_its_measured_run(measuring):
    result, events = measuring("wsgistack-python", "hello", 3, pinned=True)
    assert events == ["wrk 1 s", "py-spy", "measured:", "wrk 3 s", ":measured"]
    assert result.profile is not None
    _, events = measuring("wsgistack", "hello-direct", 3, pinned=True)
    assert "py-spy" not in events


def test_results_md_names_a_shared_cpu_profile_as_an_extra_run():
    meta = _meta("sleep", None)
    profiled = dataclasses.replace(
        run("wsgistack", "sleep", 700.0, round_no=3, threads=8), profile=profile.self_time(RAW)
    )
    section = table.render_markdown(meta, [profiled]).partition("## Where the time goes")[2]
    heading = "### wsgistack, `sleep` (2×8, shared CPUs), an extra run after round 3, the "
    assert f"{heading}thread holding the GIL\n" in section
    assert "| `EpollSelector.select` | selectors.py | 20 | 20.0% |" in section


def test_start_asks_py_spy_for_the_gil_holder_only_when_told(monkeypatch, tmp_path):
    argvs = []
    monkeypatch.setattr(profile.subprocess, "Popen", lambda argv, **kw: argvs.append(argv))
    profile.start("py-spy", 42, 2.5, tmp_path / "p.txt", None)
    profile.start("py-spy", 42, 2.5, tmp_path / "p.txt", None, gil=True)
    assert "--gil" not in argvs[0] and argvs[1][-1] == "--gil"
    rates = [argv[argv.index("--rate") + 1] for argv in argvs]
    assert rates == [str(profile.RATE), str(profile.GIL_RATE)]  # the GIL is held less often
    assert argvs[0][argvs[0].index("--pid") + 1] == "42"
    assert "--nonblocking" in argvs[0] and argvs[0][argvs[0].index("--duration") + 1] == "2"


def test_a_profile_from_before_the_sample_counts_still_renders():
    old = [{"function": "Worker._serve", "file": "wsgistack/worker.py", "share": 0.5}]
    profiled = dataclasses.replace(run("wsgistack", "hello", 10.0, pinned=True), profile=old)
    section = table._profile_section([profiled])
    assert "| `Worker._serve` | wsgistack/worker.py | — | 50.0% |" in section
