"""`python -m loadtest` refuses bad arguments with one line and status 2, before touching
Docker."""

from __future__ import annotations

import pytest

from loadtest import scenario
from loadtest.__main__ import _rounds, main


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


def test_a_ramp_or_a_soak_runs_one_round_per_engine_even_with_both():
    assert _rounds(scenario.load("ramp"), None, 2) == 1
    assert _rounds(scenario.load("soak"), 1, 2) == 1
    assert _rounds(scenario.load("mixed"), None, 2) == 4
