"""loadtest.bench's scenarios: the TOML files of loadtest/scenarios/bench/, read with
loadtest.scenario and their [bench] table; what a right answer is; and the command
line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from loadtest import scenario
from loadtest.bench import scenarios
from loadtest.bench.scenarios import GREETING, SCENARIOS, answer_ok
from tests.support import ROOT


def test_the_shipped_scenarios_in_the_tables_order():
    assert list(SCENARIOS) == [
        "hello", "64k", "upload", "sleep", "hello-direct", "flask-hello", "django-hello"
    ]  # fmt: skip
    assert sorted(p.stem for p in scenarios.BENCH_DIR.glob("*.toml")) == sorted(SCENARIOS)
    assert [s.name for s in SCENARIOS.values() if s.threaded] == ["sleep"]
    assert [s.name for s in SCENARIOS.values() if s.direct] == ["hello-direct"]
    assert [s.name for s in SCENARIOS.values() if s.pinned] == ["hello", "hello-direct"]
    upload = SCENARIOS["upload"]
    assert (upload.method, upload.path, len(upload.request.body)) == (
        "POST",
        "/api/upload",
        1048576,
    )
    assert (SCENARIOS["sleep"].title, SCENARIOS["sleep"].path) == (
        "20 ms sleep",
        "/api/sleep?ms=20",
    )


def test_the_framework_scenarios_name_their_app():
    apps = {name: s.app for name, s in SCENARIOS.items() if s.app != scenarios.DEMO_APP}
    assert apps == {
        "flask-hello": "loadtest.bench.apps.flask_hello:app",
        "django-hello": "loadtest.bench.apps.django_hello:app",
    }
    for name in apps:
        hello = SCENARIOS[name]
        assert (hello.method, hello.path, hello.threaded, hello.direct, hello.pinned) == (
            "GET", "/", False, False, False
        )  # fmt: skip
    assert SCENARIOS["hello"].app == "wsgistack_demo.wsgi:application"


def test_the_bench_files_are_load_test_scenarios_too():
    assert scenario.load(str(scenarios.BENCH_DIR / "sleep.toml")).bench == {"sleep_threads": True}
    assert "hello" in scenario.available() and "hello-direct" not in scenario.available()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[bench]\nthreads = 8\n", r"unknown \[bench\] key\(s\) \['threads'\]"),
        ("[bench]\ndirect = 1\n", r"\[bench\] direct must be true or false"),
        ('[bench]\npinned = "yes"\n', r"\[bench\] pinned must be true or false"),
        ('[bench]\napp = "flask_hello"\n', r"\[bench\] app must be MODULE:NAME .*'flask_hello'"),
        ("[bench]\napp = 1\n", r"\[bench\] app must be MODULE:NAME \(a WSGI app\), got 1$"),
        ('[bench]\napp = "a b:app"\n', r"\[bench\] app must be MODULE:NAME"),
        ('[[request]]\nname = "b"\npath = "/"\n', "exactly one"),
    ],
)
def test_a_bad_bench_file_is_refused(tmp_path, monkeypatch, text, message):
    good = (scenarios.BENCH_DIR / "64k.toml").read_text()  # one without a [bench] table
    (tmp_path / "mine.toml").write_text(good + text)
    monkeypatch.setattr(scenarios, "BENCH_DIR", tmp_path)
    with pytest.raises(scenario.ScenarioError, match=message):
        scenarios.load("mine")


@pytest.mark.parametrize(
    ("name", "body", "ok"),
    [
        ("hello", GREETING, True),
        ("hello", b"Hello\n", False),
        ("64k", b"x" * 65536, True),
        ("64k", b"x" * 65535, False),
        ("upload", json.dumps({"bytes": 1048576}).encode(), True),
        ("upload", json.dumps({"bytes": 1}).encode(), False),
        ("sleep", json.dumps({"ms": 20}).encode(), True),
        ("sleep", json.dumps({"ms": 0}).encode(), False),
        ("flask-hello", b"Hello from Flask!\n", True),
        ("flask-hello", GREETING, False),  # the demo app's: the engine did not serve Flask
        ("django-hello", b"Hello from Django!\n", True),
        ("django-hello", b"Hello from Flask!\n", False),
    ],
)
def test_answer_ok(name, body, ok):
    assert answer_ok(SCENARIOS[name], 200, body) is ok
    assert not answer_ok(SCENARIOS[name], 500, body)


def test_help_runs():
    out = subprocess.run(
        [sys.executable, "-m", "loadtest.bench", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout.startswith("usage: python -m loadtest.bench")
    assert "--install-missing" in out.stdout


def test_a_bad_setting_exits_2_naming_it():
    out = subprocess.run(
        [sys.executable, "-m", "loadtest.bench", "--check"],
        cwd=ROOT,
        env={"BENCH_ROUNDS": "x", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert out.stderr == "bench: BENCH_ROUNDS must be an integer, got 'x'\n"
