"""From rounds to a report: figures, summaries, the comparison of two engines, the files.
Rounds are made up here (responses at known times and latencies); nothing runs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from loadtest import analysis, generators, report, runner, scenario, target, thresholds
from loadtest.generators import Responses
from loadtest.prometheus import ServerCounts
from loadtest.runner import Round

T0 = 1_700_000_000.0
MIXED = scenario.load("mixed")


def made_up_round(engine: str, index: int, latency_ms: float, cpu: float) -> Round:
    """10 s at 10 requests/s of mixed, every answer 200 after ``latency_ms``."""
    plan = generators.open_loop(MIXED.with_overrides(rate=10), 10)
    n = plan.offered
    t0 = T0 + 100 * index + (50 if engine == "gunicorn" else 0)
    start = t0 + np.arange(n) / 10
    latency = np.full(n, latency_ms / 1000)
    responses = Responses(start + latency, np.full(n, 200), latency, np.arange(n) % 6)
    totals = {"exit_codes": {}, "messages": {}, "not_completed": 0}
    result = Round(engine, index, Path("raw"), plan, t0 - 1, t0 + 11, False, responses, totals)
    result.client = runner.client_summary(result, MIXED)
    counts = ServerCounts(t0 - 2, t0 + 12, {"GET 200": n - 30, "POST 200": 30}, 0, 0.05)
    result.server = runner.server_summary(result, counts)
    result.containers = {
        "app": {"cpu_seconds": cpu, "peak_rss_bytes": 64 << 20},
        "proxy": {"cpu_seconds": 0.5, "peak_rss_bytes": 8 << 20},
    }
    result.series = runner.round_series(result)
    return result


def both_engines() -> tuple[dict, list[Round]]:
    results = [
        made_up_round(engine, index, latency, cpu)
        for index in (1, 2)
        for engine, latency, cpu in (("wsgistack", 10, 1.0), ("gunicorn", 20, 2.0))
    ]
    settings = {
        "scenario": "mixed",
        "description": MIXED.description,
        "mode": "open",
        "protocol": "h2",
        "rate_rps": 10,
        "duration_seconds": 20,
        "round_seconds": 10,
        "rounds": 2,
        "connections": 6,
        "engines": ["wsgistack", "gunicorn"],
        "target": target.LOCAL_STACK,
        "target_local": True,
        "proxy_limits": {
            "RATE_LIMIT": "100000r/s",
            "RATE_LIMIT_BURST": "100000",
            "CONN_LIMIT": "65535",
        },
        "stack": "test",
        "started": "2023-11-14T22:13:20+00:00",
        "finished": "2023-11-14T22:14:00+00:00",
        "generator": "h2load (nghttp2)",
        "wsgi_server": {"wsgistack": "wsgistack", "gunicorn": "gunicorn"},
        "scenario_file": str(MIXED.source),
    }
    return settings, results


def test_client_summary_of_a_round():
    client = made_up_round("wsgistack", 1, 10, 1.0).client
    assert client["requests"] == client["offered"] == 100
    assert client["errors_total"] == 0
    assert client["latency_seconds"]["p50"] == pytest.approx(0.010)
    assert client["duration_seconds"] == pytest.approx(9.9 + 0.010)
    assert client["by_request"]["hello"]["requests"] == 17  # every 6th of 100, from the 1st


def test_the_server_side_of_a_round_is_prometheus_count_beside_the_client_s():
    server = made_up_round("wsgistack", 1, 10, 1.0).server
    assert server["requests"] == server["client_requests"] == 100
    assert server["count_tolerance"] == 0  # open loop, every request answered
    assert server["request_rate_rps"] == pytest.approx(100 / 9.91)
    assert server["ratio_5xx"] == 0
    assert server["worker_restarts"] == 0 and server["latency_p99_seconds"] == 0.05


def closed_round(statuses: list[int], errors: dict[str, int]) -> Round:
    """A closed-loop round of 4 connections: one response per status, wrk's socket errors."""
    plan = generators.closed_loop(MIXED.with_overrides(connections=4), 2)
    n = len(statuses)
    end = T0 + np.arange(1, n + 1) / n
    responses = Responses(end, np.array(statuses), np.full(n, 0.001), np.zeros(n, dtype=int))
    wrk = {"duration_us": 1_000_000, "errors": {"connect": 0, **errors}}
    totals = {"exit_codes": {"wrk": 0}, "messages": {}, "wrk": wrk}
    result = Round("wsgistack", 1, Path("raw"), plan, T0 - 1, T0 + 2, False, responses, totals)
    result.client = runner.client_summary(result, MIXED)
    return result


def test_the_closed_loop_tolerance_is_what_was_in_flight_when_wrk_stopped():
    result = closed_round([200] * 50, {"read": 1, "write": 0, "timeout": 2})
    server = runner.server_summary(result, ServerCounts(T0 - 1, T0 + 3, {"GET 200": 52}, 0, None))
    assert server["count_tolerance"] == 4 + 1 + 2  # a request per connection, and the broken ones
    assert server["requests"] - server["client_requests"] == 2


def test_429s_are_their_own_error_kind_and_the_server_never_counts_them(tmp_path):
    result = closed_round([200] * 40 + [429] * 7 + [404] * 3, {"read": 0, "write": 0, "timeout": 0})
    assert result.client["errors"] == {
        "http_429": 7,
        "http_4xx": 3,
        "http_5xx": 0,
        "connect": 0,
        "read": 0,
        "write": 0,
        "timeout": 0,
    }
    counts = ServerCounts(T0 - 1, T0 + 3, {"GET 200": 40, "GET 404": 3}, 0, None)
    result.server = runner.server_summary(result, counts)
    assert result.server["client_requests"] == result.server["requests"] == 43  # nginx's 429s
    result.containers, result.series = {}, runner.round_series(result)
    settings, _ = both_engines()
    settings |= {"mode": "closed", "engines": ["wsgistack"], "rounds": 1}
    report.write(tmp_path, settings, [result])
    text = (tmp_path / "report.md").read_text()
    assert "| errors (client) | 10 (http_429 7, http_4xx 3) |" in text
    assert "**nginx refused 7 requests with 429** (wsgistack, round 1)" in text
    assert "Count mismatch" not in text
    assert "per-client limits for the run: 100000r/s (burst 100000), 65535 requests" in text


def test_rounds_alternate_which_engine_goes_first():
    assert runner.schedule(["wsgistack", "gunicorn"], 3) == [
        ("wsgistack", 1),
        ("gunicorn", 1),
        ("gunicorn", 2),
        ("wsgistack", 2),
        ("wsgistack", 3),
        ("gunicorn", 3),
    ]
    assert runner.schedule(["gunicorn"], 2) == [("gunicorn", 1), ("gunicorn", 2)]
    assert runner._first(["wsgistack", "gunicorn"], "gunicorn") == ["gunicorn", "wsgistack"]


def test_the_comparison_is_per_round_ratios_with_their_spread():
    settings, results = both_engines()
    compared = report.comparison(results, "wsgistack", "gunicorn")
    p50 = compared["latency_p50_seconds"]
    assert p50["per_round"] == pytest.approx([0.5, 0.5])
    assert (p50["median"], p50["min"], p50["max"], p50["rounds"]) == pytest.approx(
        (0.5, 0.5, 0.5, 2)
    )
    assert compared["app_cpu_seconds_per_request"]["median"] == pytest.approx(0.5)
    text = report.verdict(settings, compared)
    assert "latency p50: wsgistack is 0.50x gunicorn" in text
    assert "**wsgistack** is better in every round" in text


def test_figures_hold_both_engines_on_the_same_axes():
    settings, results = both_engines()
    figures = report.figures(settings, results)
    assert report.plotted_series(figures["throughput.png"]) == {  # 2 rounds of 9 whole seconds
        "wsgistack": 18,
        "gunicorn": 18,
    }
    assert set(report.plotted_series(figures["latency.png"])) == {
        "wsgistack p50",
        "wsgistack p99",
        "gunicorn p50",
        "gunicorn p99",
    }
    axis = figures["throughput.png"].axes[0]
    ours = next(line for line in axis.get_lines() if line.get_label() == "wsgistack")
    assert np.nansum(ours.get_ydata()) == 180  # every response in those seconds, once
    latency = figures["latency.png"].axes[0]
    gunicorn_p50 = next(line for line in latency.get_lines() if line.get_label() == "gunicorn p50")
    assert np.allclose(gunicorn_p50.get_ydata(), 20.0)  # ms


def test_write_makes_the_report_files(tmp_path):
    settings, results = both_engines()
    summary = report.write(tmp_path, settings, results)
    for name in ("throughput.png", "latency.png"):
        with Image.open(tmp_path / name) as image:
            assert (image.format, image.size) == ("PNG", (1000, 450))
        assert summary["plots"][name]["series"]
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["engines"]["wsgistack"]["client"]["requests"] == 200
    assert saved["engines"]["gunicorn"]["server"]["requests"] == 200
    assert saved["engines"]["wsgistack"]["containers"]["app"]["cpu_seconds"] == 2.0
    assert saved["comparison"]["wsgistack/gunicorn"]["throughput_rps"]["rounds"] == 2
    table = (tmp_path / "report.md").read_text()
    assert "| latency p50, ms | 10 | 20 | 0.50 [0.50-0.50] |" in table
    assert "| requests counted by the server (Prometheus) | 200 | 200 |  |" in table
    assert "Count mismatch" not in table
    assert "![latency](latency.png)" in table


def test_a_single_engine_report_has_no_comparison(tmp_path):
    settings, results = both_engines()
    settings["engines"] = ["wsgistack"]
    summary = report.write(tmp_path, settings, [r for r in results if r.engine == "wsgistack"])
    assert "comparison" not in summary
    assert "Verdict" not in (tmp_path / "report.md").read_text()
    assert report.plotted_series(report.figures(settings, results)["throughput.png"]) == {
        "wsgistack": 18
    }


def test_a_count_mismatch_is_flagged(tmp_path):
    settings, results = both_engines()
    results[0].server["requests"] = 90
    report.write(tmp_path, settings, results)
    assert "**Count mismatch** (wsgistack, round 1)" in (tmp_path / "report.md").read_text()


def test_latency_summary_and_series():
    latency = np.array([0.001 * k for k in range(1, 101)])
    summary = analysis.latency_summary(latency)
    assert summary["p50"] == pytest.approx(0.0505)
    assert summary["max"] == 0.1
    assert analysis.latency_summary(np.zeros(0))["p99"] is None
    responses = Responses(
        np.array([T0 + 0.5, T0 + 0.7, T0 + 2.1]),
        np.array([200, -1, 200]),
        np.array([0.1, 0.2, 0.3]),
        np.zeros(3, dtype=int),
    )
    series = analysis.per_second(responses, T0, 3)
    assert series["throughput"] == [2, 0, 1]
    assert series["p50"] == [0.1, None, 0.3]  # the failed request has no latency


def test_spread_median_and_ratio():
    assert analysis.spread([2.0, None, 1.0, math.nan, 4.0]) == {
        "median": 2.0,
        "min": 1.0,
        "max": 4.0,
        "rounds": 3,
    }
    assert analysis.spread([None])["median"] is None
    assert analysis.ratio(1, 4) == 0.25 and analysis.ratio(1, 0) is None
    assert analysis.median(iter([3.0, None, 1.0, math.nan])) == 2.0  # any iterable
    assert analysis.median([None, math.nan]) is None


def test_a_generator_behind_its_schedule_and_a_failed_generator_are_flagged(tmp_path):
    settings, results = both_engines()
    results[1].client["send_seconds"] = 14.0  # planned: 10 s
    results[2].client["generator_messages"] = {"hello": "getaddrinfo() failed"}
    report.write(tmp_path, settings, results)
    text = (tmp_path / "report.md").read_text()
    assert "**The generator fell behind the rate** (gunicorn, round 1)" in text
    assert "**hello failed** (wsgistack, round 2): getaddrinfo() failed" in text


def test_the_thresholds_come_first_with_every_check(tmp_path):
    settings, results = both_engines()
    settings["target_local"] = False  # client-side checks only
    outcome = thresholds.evaluate(MIXED, results, settings, enforced=True)
    summary = report.write(tmp_path, settings, results, outcome)
    assert summary["thresholds"] == outcome
    text = (tmp_path / "report.md").read_text()
    assert text.index("## Thresholds") < text.index("## Verdict") < text.index("| requests")
    assert f"**Passed**: all {len(MIXED.thresholds) * 2} checks." in text
    assert "Prometheus cross-checks skipped: the target is not the local stack." in text
    assert (
        "| gunicorn | `http_req_duration{name:hello}` `p(99)<500` | client | passed | 20 ms |"
        in (text)
    )


def test_failed_thresholds_not_enforced_say_so(tmp_path):
    settings, results = both_engines()
    outcome = thresholds.evaluate(MIXED, results, settings, enforced=False)  # no server p95
    report.write(tmp_path, settings, results, outcome)
    text = (tmp_path / "report.md").read_text()
    assert "checks, not enforced (`FAIL_ON_THRESHOLD=0`: `make load` exits 0)." in text
    assert (
        "| wsgistack | `http_req_duration` `p(95)<500` | Prometheus | **failed** | no value: "
        in text
    )
    assert "cross-checks skipped" not in text


def test_without_thresholds_the_report_has_no_such_section(tmp_path):
    settings, results = both_engines()
    summary = report.write(tmp_path, settings, results)
    assert summary["thresholds"] == {"enforced": False, "passed": None, "checks": []}
    assert "Thresholds" not in (tmp_path / "report.md").read_text()
