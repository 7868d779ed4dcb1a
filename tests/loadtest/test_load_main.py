"""`python -m loadtest` refuses bad arguments with one line and status 2, before touching
Docker; with a faked runner, a failed threshold exits 99 (or 0 when not enforced)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

import loadtest.__main__
from loadtest import runner, scenario
from loadtest.__main__ import _rounds, main
from tests.loadtest.test_load_report import both_engines


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "SCENARIO=cpu|hello|io|json-echo|mixed|ramp|soak|stream|upload"),
        (["nope"], "no scenario 'nope'"),
        (["hello", "--rate", "fast"], "RATE must be"),
        (["hello", "--rate", "-3"], "RATE must be"),
        (["hello", "--duration", "forever"], "duration"),
        (["hello", "--duration", "2h"], "at most 3600"),
        (["hello", "--rounds", "0"], "rounds must be 1..20"),
        (["hello", "--connections", "0"], "connections must be"),
        (["ramp", "--rate", "max"], "RATE=max runs the closed loop (wrk), which has no rate"),
        (["ramp", "--rate", "10"], "RATE= and DURATION= do not apply to scenario ramp"),
        (["ramp", "--duration", "1m"], "RATE= and DURATION= do not apply to scenario ramp"),
        (["ramp", "--rounds", "4"], "ROUNDS: scenario ramp has [[stages]]: it runs one round"),
        (["soak", "--engine", "both", "--rounds", "2"], 'soak has mode = "soak": it runs one'),
        (["soak", "--duration", "30s"], "a soak's duration must be at least 60 s"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_bad_engine_is_refused_by_argparse(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["hello", "--engine", "waitress"])
    assert exit_info.value.code == 2
    assert "wsgistack" in capsys.readouterr().err


def test_old_engine_name_is_refused_naming_the_new_one(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["hello", "--engine", "custom"])
    assert exit_info.value.code == 2
    assert "'custom' is now called 'wsgistack' (ENGINE=wsgistack)" in capsys.readouterr().err


def fake_run(monkeypatch, tmp_path: Path, table: str) -> Path:
    """A path to mixed's traffic with the given [thresholds], and a faked stack and runner
    whose run gives test_load_report's made-up rounds of both engines (every answer 200,
    wsgistack's after 10 ms, gunicorn's after 20 ms; the server's p99 5 ms)."""
    settings, results = both_engines()
    for result in results:
        result.server["latency_quantiles_seconds"] = {"0.99": 0.005}
    monkeypatch.setattr(loadtest.__main__, "Stack", lambda options: None)
    monkeypatch.setattr(
        runner, "run", lambda *args, **kwargs: (tmp_path / "report", results, settings)
    )
    mixed = (scenario.SCENARIOS_DIR / "mixed.toml").read_text().split("[thresholds]")[0]
    path = tmp_path / "gated.toml"
    path.write_text(mixed + "[thresholds]\n" + table)
    return path


def test_a_failed_threshold_exits_99_after_the_reports_naming_it(monkeypatch, tmp_path, capsys):
    path = fake_run(
        monkeypatch, tmp_path, 'http_req_failed = "rate<0.01"\nhttp_req_duration = "p(99)<15"\n'
    )
    assert main([str(path), "--engine", "both"]) == 99
    out, err = capsys.readouterr()
    assert err.splitlines() == [
        "load: threshold failed: gunicorn http_req_duration p(99)<15: 20 ms, 5 ms (33 %) over"
    ]
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert (summary["thresholds"]["enforced"], summary["thresholds"]["passed"]) == (True, False)
    assert "**Failed**: 1 of 8 checks (`make load` exits 99)." in out  # report.md, printed


def test_fail_on_threshold_off_reports_the_same_and_exits_0(monkeypatch, tmp_path, capsys):
    path = fake_run(monkeypatch, tmp_path, 'http_req_duration = "p(99)<15"\n')
    assert main([str(path), "--engine", "both", "--no-fail-on-threshold"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "load: threshold failed: gunicorn http_req_duration p(99)<15: 20 ms, 5 ms (33 %) over",
        "load: thresholds not enforced (--no-fail-on-threshold): exit 0",
    ]
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert (summary["thresholds"]["enforced"], summary["thresholds"]["passed"]) == (False, False)


def test_thresholds_met_exit_0_quietly(monkeypatch, tmp_path, capsys):
    path = fake_run(monkeypatch, tmp_path, 'http_req_duration = ["p(99)<25", "max<1000"]\n')
    assert main([str(path), "--engine", "both"]) == 0
    assert capsys.readouterr().err == ""


def test_the_makefile_passes_fail_on_threshold_0_on():
    root = Path(__file__).resolve().parents[2]
    dry = ["make", "--no-print-directory", "-n", "-C", str(root), "load", "SCENARIO=hello"]
    off = subprocess.run([*dry, "FAIL_ON_THRESHOLD=0"], capture_output=True, text=True)
    on = subprocess.run([*dry, "FAIL_ON_THRESHOLD=1"], capture_output=True, text=True)
    assert "--no-fail-on-threshold" in off.stdout
    assert "-m loadtest hello" in on.stdout and "--no-fail-on-threshold" not in on.stdout


def test_a_ramp_or_a_soak_runs_one_round_per_engine_even_with_both():
    assert _rounds(scenario.load("ramp"), None, 2) == 1
    assert _rounds(scenario.load("soak"), 1, 2) == 1
    assert _rounds(scenario.load("mixed"), None, 2) == 4
