"""`make load` with [[stages]] and mode = "soak" against the session stack: a short ramp
whose every stage is answered in full, at its rate, with its own logs; and a one-minute
soak with its per-minute series. Both sides count the same, as for every scenario."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from tests.stack.integration.loadruns import check_report, load

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(420)]

HELLO = '[[request]]\nname = "hello"\npath = "/"\n'


def scenario_file(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "scenarios"
    folder.mkdir()
    path = folder / "mine.toml"
    path.write_text(text + HELLO)
    return path


def test_a_short_ramp_answers_every_stage_at_its_rate(stack, load_limits, tmp_path):
    stages = "".join(f'[[stages]]\nrate = {r}\nduration = "4s"\n' for r in (5, 10, 20))
    path = scenario_file(tmp_path, "connections = 2\n" + stages)
    folder, summary, _ = load(stack, tmp_path / "reports", str(path))
    check_report(folder, summary, ["wsgistack"])
    engine = summary["engines"]["wsgistack"]
    assert [(s["stage"], s["requests"], s["offered"]) for s in engine["stages"]] == [
        (1, 20, 20),
        (2, 40, 40),
        (3, 80, 80),
    ]
    assert engine["knee"] is None  # 20 requests/s of GET / is far below the knee
    for stage in engine["stages"]:
        assert stage["errors"] == 0
        assert stage["achieved_rps"] == pytest.approx(stage["rate_rps"], rel=0.05)
        assert stage["started"] < stage["finished"]
    first, second, third = engine["stages"]
    assert second["started"] - first["started"] == pytest.approx(4, abs=0.5)  # on schedule
    assert third["started"] - second["started"] == pytest.approx(4, abs=0.5)
    raw = Path(engine["rounds"][0]["folder"])
    assert len((raw / "stage-3.hello.log").read_text().splitlines()) == 80
    assert summary["plots"]["stages.png"]["series"]["wsgistack achieved"] == 3
    with Image.open(folder / "stages.png") as image:
        assert image.format == "PNG"
    assert "### Stages" in (folder / "report.md").read_text()


def test_a_one_minute_soak_has_its_per_minute_series(stack, load_limits, tmp_path):
    path = scenario_file(tmp_path, 'mode = "soak"\nrate = 2\nduration = "1m"\nconnections = 1\n')
    folder, summary, _ = load(stack, tmp_path / "reports", str(path))
    check_report(folder, summary, ["wsgistack"])
    series = summary["engines"]["wsgistack"]["per_minute"]
    assert series["minute"] == [0] and series["errors"] == [0]
    assert series["throughput_rps"][0] == pytest.approx(2, abs=0.1)
    assert summary["plots"]["per_minute.png"]["series"]["wsgistack p99"] == 1
    assert "### Per minute (soak)" in (folder / "report.md").read_text()
