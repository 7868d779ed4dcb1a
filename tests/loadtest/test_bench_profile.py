"""loadtest.bench.profile: py-spy's raw samples summed per function, and their section
in results.md. Pure functions on recorded output."""

from __future__ import annotations

import dataclasses

from loadtest.bench import profile, table
from loadtest.bench.settings import Settings
from tests.loadtest.test_bench_table import MACHINE, run

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
        {"function": "Connection._send_now", "file": "wsgistack/http/connection.py", "share": 0.75},
        {"function": "EpollSelector.select", "file": "selectors.py", "share": 0.2},
        {"function": "index", "file": "wsgistack_demo/wsgi.py", "share": 0.05},
    ]
    assert profile.self_time(RAW, shown=1)[0]["function"] == "Connection._send_now"
    assert profile.self_time("") == []


def test_results_md_shows_the_profile_after_the_targets():
    meta = {
        "started": "x",
        "settings": {**vars(Settings())},
        "scenarios": ["hello"],
        "versions": {},
        "commit": "abc1234",
        "machine": MACHINE,
        "pinning": {"engine": 1, "load": 0},
    }
    profiled = dataclasses.replace(
        run("wsgistack", "hello", 10.0, round_no=3, pinned=True), profile=profile.self_time(RAW)
    )
    text = table.render_markdown(meta, [profiled])
    section = text[text.index("## Where the time goes") :]
    assert text.index("## Targets (issue 15)") < text.index("## Where the time goes")
    assert "### wsgistack, pinned `hello`, round 3" in section
    assert "| `Connection._send_now` | wsgistack/http/connection.py | 75.0% |" in section
    assert "## Where the time goes" not in table.render_markdown(
        meta, [run("wsgistack", "hello", 10.0)]
    )
