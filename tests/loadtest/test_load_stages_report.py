"""A ramp's per-stage figures and its knee, a soak's per-minute series, and how the report
shows them (tables, figures, summary.json). Stages and responses are made up here."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from loadtest import analysis, generators, report, runner, scenario
from loadtest.generators import Responses, StagePlan, StageRun
from loadtest.prometheus import ServerCounts
from loadtest.runner import Round
from tests.loadtest.test_load_report import both_engines

T0 = 1_700_000_000.0
RATES = (100, 200, 400, 800)  # offered per stage, 10 s each


def stage_run(
    number: int, rate: float, capacity: float, latency: float, started: float | None = None
) -> StageRun:
    """Stage ``number`` (10 s, from T0 + 10 x (number - 1)) offered ``rate`` requests/s to a
    server answering at most ``capacity`` per second, each after ``latency`` s at least."""
    start = T0 + 10 * (number - 1)
    n = int(rate * 10)
    sent = start + np.arange(n) / rate
    end = np.maximum(sent + latency, start + (np.arange(n) + 1) / capacity)
    responses = Responses(end, np.full(n, 200), end - sent, np.zeros(n, dtype=int))
    return StageRun(
        number, StagePlan(rate, 10.0, n), start if started is None else started, None, responses, 0
    )


def ramp(capacity: float, slow_from: int = 99, finished: dict[int, float] | None = None):
    """A stage per RATES entry; from stage ``slow_from`` on every answer takes 612 ms."""
    runs = [
        stage_run(k, rate, capacity, 0.612 if k >= slow_from else 0.005)
        for k, rate in enumerate(RATES, 1)
    ]
    for run in runs:
        run.finished = run.started + 10.005 + (finished or {}).get(run.number, 0.0)
    return runs


def test_a_stage_that_keeps_up_achieves_its_offered_rate():
    summary = analysis.stage_summary(stage_run(1, 100, 1000, 0.005))
    assert summary["requests"] == summary["offered"] == 1000
    assert summary["achieved_rps"] == pytest.approx(100)
    assert summary["measured_seconds"] == pytest.approx(10)
    assert summary["latency_seconds"]["p99"] == pytest.approx(0.005, rel=1e-3)
    assert (summary["stage"], summary["rate_rps"], summary["duration_seconds"]) == (1, 100, 10)
    assert summary["errors"] == 0 and summary["started"] == T0


def test_slow_answers_at_the_offered_rate_are_no_shortfall():
    summary = analysis.stage_summary(stage_run(1, 100, 1000, 0.612))
    assert summary["achieved_rps"] == pytest.approx(100)  # the latency is p99's business


def test_a_stage_whose_answers_trail_past_its_end_achieved_what_the_server_managed():
    summary = analysis.stage_summary(stage_run(4, 400, 300, 0.005))
    assert summary["requests"] == 4000  # every request answered, eventually ...
    assert summary["achieved_rps"] == pytest.approx(300, rel=1e-3)  # ... at the server's pace
    assert summary["measured_seconds"] == pytest.approx(4000 / 300, rel=1e-3)


def test_a_stage_with_one_answer_or_none_is_measured_over_its_planned_time():
    run = stage_run(1, 100, 1000, 0.005)
    run.responses = Responses.empty()
    assert analysis.stage_summary(run)["achieved_rps"] == 0
    run.responses = stage_run(1, 0.1, 1, 0.005).responses  # one request in 10 s
    assert analysis.stage_summary(run)["achieved_rps"] == pytest.approx(0.1)


def test_errors_of_a_stage_are_failed_4xx_5xx_and_unanswered():
    run = stage_run(1, 10, 1000, 0.005)
    run.responses.status[:3] = [-1, 404, 503]
    run.not_completed = 2
    summary = analysis.stage_summary(run)
    assert summary["errors"] == 5 and summary["requests"] == 99  # -1 is not an answer


def test_the_knee_by_latency():
    stages = [analysis.stage_summary(run) for run in ramp(capacity=1000, slow_from=3)]
    assert analysis.knee(stages, p99_limit_seconds=0.5) == {
        "stage": 3,
        "reason": "p99 612 ms > 500 ms",
    }
    assert analysis.knee(stages, p99_limit_seconds=None) is None  # no latency limit given
    assert analysis.knee(stages, p99_limit_seconds=0.7) is None


def test_the_knee_by_shortfall():
    stages = [analysis.stage_summary(run) for run in ramp(capacity=300)]
    assert analysis.knee(stages, p99_limit_seconds=None) == {
        "stage": 3,  # 300 of 400 req/s: 25 % short
        "reason": "achieved 300.0 req/s, 25% short of the offered 400 req/s",
    }


def test_no_knee_when_every_stage_keeps_up():
    stages = [analysis.stage_summary(run) for run in ramp(capacity=1000)]
    assert [s["achieved_rps"] for s in stages] == pytest.approx([100, 200, 400, 800], rel=0.01)
    assert analysis.knee(stages, p99_limit_seconds=0.5) is None


def test_five_percent_short_is_not_yet_the_knee():
    stage = analysis.stage_summary(stage_run(1, 100, 1000, 0.005))
    stage["achieved_rps"] = 95.01
    assert analysis.knee([stage], None) is None
    stage["achieved_rps"] = 94.9
    assert analysis.knee([stage], None)["stage"] == 1


def test_per_minute_series():
    n = 300  # 1 request/s for 5 minutes, answered after 10 ms, 20 ms from minute 2
    start = T0 + np.arange(n, dtype=float)
    latency = np.where(np.arange(n) >= 120, 0.02, 0.01)
    status = np.full(n, 200)
    status[[61, 62]] = [-1, 500]  # minute 1: a failure and a 5xx
    responses = Responses(start + latency, status, latency, np.zeros(n, dtype=int))
    series = analysis.per_minute(responses, T0, 4)  # the 5th minute is left out
    assert series["minute"] == [0, 1, 2, 3]
    assert series["throughput_rps"] == pytest.approx([1, 59 / 60, 1, 1])
    assert series["p50"] == pytest.approx([0.01, 0.01, 0.02, 0.02])
    assert series["errors"] == [0, 2, 0, 0]
    empty = analysis.per_minute(Responses.empty(), T0, 2)
    assert empty["p99"] == [None, None] and empty["throughput_rps"] == [0, 0]


# -- the report ----------------------------------------------------------------------

RAMP = scenario.load("ramp")


def staged_round(engine: str, runs: list[StageRun]) -> Round:
    """A round of a ramp made of ``runs``, with the client, server and series filled in."""
    offered = sum(r.plan.offered for r in runs)
    plan = generators.Plan("open", {}, offered, 40.0, 8, tuple(r.plan for r in runs))
    responses = Responses.concat([r.responses for r in runs])
    totals = {"exit_codes": {}, "messages": {}, "not_completed": 0, "stages": runs}
    result = Round(engine, 1, Path("raw"), plan, T0 - 1, T0 + 60, False, responses, totals)
    result.client = runner.client_summary(result, RAMP)
    counts = ServerCounts(T0 - 2, T0 + 62, {"GET 200": len(responses)}, 0, 0.05)
    result.server = runner.server_summary(result, counts)
    result.series = runner.round_series(result)
    return result


def ramp_settings(engines: list[str]) -> dict:
    settings, _ = both_engines()
    return settings | {
        "scenario": "ramp",
        "engines": engines,
        "rounds": 1,
        "round_seconds": 40,
        "duration_seconds": 40,
        "stages": [{"rate_rps": r, "duration_seconds": 10} for r in RATES],
    }


def test_a_ramp_s_report_has_its_stages_and_knee(tmp_path):
    results = [
        staged_round("wsgistack", ramp(capacity=1000, finished={2: 3.0})),
        staged_round("gunicorn", ramp(capacity=300)),
    ]
    summary = report.write(tmp_path, ramp_settings(["wsgistack", "gunicorn"]), results)
    ours, theirs = (summary["engines"][n] for n in ("wsgistack", "gunicorn"))
    assert [s["stage"] for s in ours["stages"]] == [1, 2, 3, 4]
    assert set(ours["stages"][0]) >= {
        "stage",
        "rate_rps",
        "duration_seconds",
        "requests",
        "achieved_rps",
        "latency_seconds",
        "errors",
    }
    assert ours["knee"] is None and theirs["knee"]["stage"] == 3
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["engines"]["gunicorn"]["knee"] == theirs["knee"]
    text = (tmp_path / "report.md").read_text()
    assert "open loop in 4 stages, 100 req/s for 10 s, 200 req/s for 10 s, 400 req/s" in text
    assert "in 1 round(s) of 40 s;" in text  # not "interleaved": one round each
    assert "| 2 | 200 | 10 | 200.0 | 5 | 0 | 200.0 | 5 | 0 |" in text
    assert "| 3 **knee** (gunicorn) | 400 | 10 | 400.0 | 5 | 0 | 300.0 |" in text
    assert "- knee, wsgistack: none: every stage achieved its offered rate within 5%" in text
    assert "- knee, gunicorn: stage 3, achieved 300.0 req/s, 25% short of the offered" in text
    assert "**Stage 2 ran 3.0 s past its planned end** (wsgistack)" in text
    assert "while stage 3 ran, adding to its load (stage 3 started on schedule" in text
    assert "Stage 1 ran" not in text and "![stages](stages.png)" in text
    with Image.open(tmp_path / "stages.png") as image:
        assert (image.format, image.size) == ("PNG", (1000, 600))
    assert summary["plots"]["stages.png"]["series"] == {
        "offered": 4,
        "wsgistack achieved": 4,
        "wsgistack p99": 4,
        "gunicorn achieved": 4,
        "gunicorn p99": 4,
        "gunicorn knee: stage 3": 2,
    }


def test_the_stages_figure_plots_offered_against_achieved():
    results = [staged_round("wsgistack", ramp(capacity=300))]
    figure = report.figures(ramp_settings(["wsgistack"]), results)["stages.png"]
    lines = {line.get_label(): line for axis in figure.axes for line in axis.get_lines()}
    assert list(lines["offered"].get_ydata()) == list(RATES)
    assert lines["wsgistack achieved"].get_ydata() == pytest.approx([100, 200, 300, 300], rel=1e-3)
    assert lines["wsgistack p99"].get_ydata()[-1] > 10_000  # ms: 8000 requests at 300/s
    assert list(lines["wsgistack knee: stage 3"].get_xdata()) == [3, 3]


def test_a_report_without_stages_has_neither_their_table_nor_figure(tmp_path):
    settings, results = both_engines()
    summary = report.write(tmp_path, settings, results)
    assert "stages" not in summary["engines"]["wsgistack"] and "stages.png" not in summary["plots"]
    assert "per_minute" not in summary["engines"]["wsgistack"]
    assert "### Stages" not in (tmp_path / "report.md").read_text()


def soak_round(engine: str, latency: float) -> Round:
    """3 minutes of a soak at 2 requests/s, answered after ``latency`` s, 1 failure."""
    soak = scenario.load("soak").with_overrides(rate=2, duration=180)
    plan = generators.open_loop(soak, 180)
    n = 360
    start = T0 + np.arange(n) / 2
    status = np.full(n, 200)
    status[200] = -1
    responses = Responses(start + latency, status, np.full(n, latency), np.arange(n) % 6)
    totals = {"exit_codes": {}, "messages": {}, "not_completed": 0}
    result = Round(engine, 1, Path("raw"), plan, T0 - 1, T0 + 181, False, responses, totals)
    result.client = runner.client_summary(result, soak)
    result.server = runner.server_summary(
        result, ServerCounts(T0 - 2, T0 + 182, {"GET 200": n - 1}, 0, 0.05)
    )
    result.series = runner.round_series(result)
    return result


def test_a_soak_s_report_has_a_per_minute_series_table_and_figure(tmp_path):
    settings, _ = both_engines()
    settings |= {"scenario": "soak", "soak": True, "rounds": 1, "round_seconds": 180}
    results = [soak_round("wsgistack", 0.01), soak_round("gunicorn", 0.02)]
    summary = report.write(tmp_path, settings, results)
    series = summary["engines"]["gunicorn"]["per_minute"]
    assert series == {
        "minute": [0, 1, 2],
        "throughput_rps": pytest.approx([2, 119 / 60, 2]),
        "p50": pytest.approx([0.02] * 3),
        "p99": pytest.approx([0.02] * 3),
        "errors": [0, 1, 0],
    }
    text = (tmp_path / "report.md").read_text()
    assert "### Per minute (soak)" in text
    assert "| 1 | 2.0 | 10 | 10 | 1 | 2.0 | 20 | 20 | 1 |" in text
    assert "![per minute](per_minute.png)" in text
    with Image.open(tmp_path / "per_minute.png") as image:
        assert image.format == "PNG"
    assert summary["plots"]["per_minute.png"]["series"] == {
        "wsgistack": 3,
        "wsgistack p50": 3,
        "wsgistack p99": 3,
        "gunicorn": 3,
        "gunicorn p50": 3,
        "gunicorn p99": 3,
    }


def test_the_scenario_s_p99_threshold_marks_the_knee_by_latency(tmp_path):
    """settings["p99_limit_seconds"] (the runner's, from [thresholds]' p(99)) reaches the
    knee: a stage answered in full but slowly is the knee once p99 passes the limit."""
    results = [staged_round("wsgistack", ramp(capacity=1000, slow_from=3))]
    without = report.write(tmp_path / "a", ramp_settings(["wsgistack"]), results)
    assert without["engines"]["wsgistack"]["knee"] is None  # slow, but at the offered rate
    limited = ramp_settings(["wsgistack"]) | {"p99_limit_seconds": 0.5}
    knee = report.write(tmp_path / "b", limited, results)["engines"]["wsgistack"]["knee"]
    assert knee["stage"] == 3 and "500 ms" in knee["reason"]
