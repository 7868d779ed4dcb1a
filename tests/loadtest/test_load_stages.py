"""Ramps ([[stages]]) and soaks: the scenario format and its bounds, the staged run.sh (its
commands, their order, one set of logs per stage) and reading a staged run back. The
staged run.sh also runs here, with stand-ins for h2load and getent: no Docker."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from loadtest import generators, scenario
from loadtest.scenario import ScenarioError
from tests.loadtest.test_load_generators import h2load_commands

REQUEST = '[[request]]\nname = "a"\npath = "/"\n'


def write(tmp_path: Path, text: str, name: str = "mine") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


def stages(*pairs: tuple[float, str]) -> str:
    return "".join(f'[[stages]]\nrate = {r}\nduration = "{d}"\n' for r, d in pairs)


def test_the_shipped_ramp_steps_up_and_is_bounded():
    ramp = scenario.load("ramp")
    assert [(s.rate, s.duration) for s in ramp.stages] == [
        (50, 10),
        (100, 10),
        (200, 10),
        (400, 10),
        (800, 10),
    ]
    assert ramp.duration == 50 and ramp.rate * ramp.duration == 15_500  # rate: the mean
    assert ramp.mode == "load" and [r.name for r in ramp.requests] == ["hello", "json-echo"]


def test_the_shipped_soak_is_a_long_constant_rate_within_the_bounds():
    soak = scenario.load("soak")
    assert (soak.mode, soak.stages, soak.duration, soak.rate) == ("soak", (), 600, 50)
    assert soak.duration <= scenario.MAX_DURATION
    assert soak.rate * soak.duration <= scenario.MAX_REQUESTS


def test_a_scenario_without_stages_has_none():
    hello = scenario.load("hello")
    assert (hello.stages, hello.mode) == ((), "load")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rate = 5\n" + stages((1, "1s")), "rate must not be set beside \\[\\[stages\\]\\]"),
        (
            'rate = 5\nduration = "1s"\n' + stages((1, "1s")),
            "duration and rate must not be set beside",
        ),
        ("stages = []\n", "stages must be 1..50"),
        ("stages = [1, 2]\n", "stages must be 1..50 \\[\\[stages\\]\\] tables"),
        (stages(*[(1, "1s")] * 51), "stages must be 1..50"),
        ("[[stages]]\nrate = 5\n", "stage 1: duration is required"),
        (
            stages((1, "1s")) + '[[stages]]\nrate = 5\nduration = "1s"\nramp = 1\n',
            "stage 2: unknown",
        ),
        (stages((0, "1s")), "stage 1: rate must be a number above 0"),
        (stages((1, "soon")), "stage 1: duration"),
        (stages((1, "40m"), (1, "30m")), "duration must be at most 3600 s, got 4200 s"),
        (stages((600, "1h")), "at most 2000000 requests, got 2160000 over the stages"),
        ('mode = "soak"\n' + stages((1, "2m")), 'mode = "soak" is one constant rate'),
        ('mode = "soak"\nrate = 1\nduration = "30s"\n', "a soak's duration must be at least 60"),
        ('mode = "spike"\nrate = 1\n', "mode must be one of"),
    ],
)
def test_bad_stages_and_soaks_name_the_problem(tmp_path, text, message):
    with pytest.raises(ScenarioError, match=message):
        scenario.load(str(write(tmp_path, text + REQUEST)))


def test_a_staged_scenario_refuses_rate_and_duration_overrides_but_not_connections():
    ramp = scenario.load("ramp")
    for override in ({"rate": 10}, {"duration": 20}):
        with pytest.raises(ScenarioError, match="RATE= and DURATION= do not apply to scenario"):
            ramp.with_overrides(**override)
    assert ramp.with_overrides(connections=2).stages == ramp.stages


def test_a_soak_keeps_its_minimum_under_overrides():
    soak = scenario.load("soak")
    assert soak.with_overrides(rate=5, duration=3600).duration == 3600
    with pytest.raises(ScenarioError, match="at least 60"):
        soak.with_overrides(duration=30)


def test_the_staged_run_script_runs_the_stages_in_order_each_at_its_rate():
    ramp = scenario.load("ramp")
    plan = generators.open_loop(ramp, ramp.duration)
    commands = h2load_commands(plan)
    assert list(commands) == [
        f"stage-{k}.{r.name}" for k in range(1, 6) for r in ramp.requests
    ]  # script order: stage by stage
    for number, stage in enumerate(ramp.stages, 1):
        for request in ramp.requests:
            flags = commands[f"stage-{number}.{request.name}"]
            rate = stage.rate * ramp.share(request)
            assert float(flags["rps"]) * int(flags["clients"]) == pytest.approx(rate)
            assert int(flags["requests"]) == round(rate * stage.duration)
    assert commands["stage-5.json-echo"]["data"] == "/out/json-echo.body"  # one body for all
    assert [(s.rate, s.duration, s.offered) for s in plan.stages] == [
        (50, 10, 500),
        (100, 10, 1000),
        (200, 10, 2000),
        (400, 10, 4000),
        (800, 10, 8000),
    ]
    assert (plan.offered, plan.duration, plan.connections) == (15_500, 50, 8)
    assert set(plan.files) == {"run.sh", "json-echo.body"}


def test_each_stage_records_its_start_and_end_and_the_next_starts_on_schedule():
    ramp = scenario.load("ramp")
    script = generators.open_loop(ramp, ramp.duration).files["run.sh"].decode()
    steps = [
        line
        for line in script.splitlines()
        if line.startswith(("date", "sleep", "wait", "(", ")")) and not line.startswith("( h2")
    ]
    stage = ["(", "date +%s.%N >/out/stage-{k}.started", "wait"]
    stage += ["date +%s.%N >/out/stage-{k}.finished", ") &"]
    expected = []
    for k in range(1, 6):
        expected += [line.format(k=k) for line in stage] + (["sleep 10"] if k < 5 else [])
    assert steps == [*expected, "wait"]  # stages in the background; the last wait: them all


def test_a_staged_scenario_runs_in_one_round():
    ramp = scenario.load("ramp")
    with pytest.raises(ScenarioError, match="one round per engine"):
        generators.open_loop(ramp, ramp.duration / 4)


def test_the_staged_run_script_is_valid_shell(tmp_path):
    ramp = scenario.load("ramp")
    path = tmp_path / "run.sh"
    path.write_bytes(generators.open_loop(ramp, ramp.duration).files["run.sh"])
    assert subprocess.run(["sh", "-n", str(path)]).returncode == 0


# h2load's stand-in: logs its --requests as h2load --log-file would (start µs, status,
# latency µs), prints h2load's totals line; stage 1's processes take SLOW seconds.
FAKE_H2LOAD = r"""#!/bin/sh
for arg; do
  case $arg in --requests=*) n=${arg#--requests=};; --log-file=*) log=${arg#--log-file=};; esac
done
i=0
while [ "$i" -lt "$n" ]; do printf '%s\t200\t1000\n' "$(date +%s%6N)" >>"$log"; i=$((i + 1)); done
case $log in */stage-1.*) sleep @SLOW@;; esac
echo "requests: $n total, $n started, $n done, $n succeeded, 0 failed, 0 errored, 0 timeout"
"""


def test_a_stage_that_overruns_does_not_delay_the_next(tmp_path):
    """run.sh as it is generated, /out pointed at a folder, with stand-ins for h2load and
    getent: stage 1's generators take 1.5 s of a 0.4 s stage; stage 2 starts on time."""
    path = write(tmp_path, stages((10, "400ms"), (20, "400ms"), (10, "400ms")) + REQUEST)
    ramp = scenario.load(str(path))
    plan = generators.open_loop(ramp, ramp.duration)
    out, bin_dir = tmp_path / "out", tmp_path / "bin"
    out.mkdir()
    bin_dir.mkdir()
    for name, text in (("h2load", FAKE_H2LOAD.replace("@SLOW@", "1.5")), ("getent", "")):
        tool = bin_dir / name
        tool.write_text(text or "#!/bin/sh\nexit 0\n")
        tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    (out / "run.sh").write_text(plan.files["run.sh"].decode().replace("/out/", f"{out}/"))
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    subprocess.run(["sh", str(out / "run.sh")], env=env, check=True, timeout=30)

    responses, totals = generators.read_run(plan, ramp, out)
    runs = totals["stages"]
    assert [(run.number, len(run.responses), run.not_completed) for run in runs] == [
        (1, 4, 0),
        (2, 8, 0),
        (3, 4, 0),
    ]
    assert len(responses) == 16 and totals["not_completed"] == 0
    assert totals["exit_codes"] == {f"stage-{k}.a": 0 for k in (1, 2, 3)}
    first, second, third = runs
    assert first.finished - first.started >= 1.5  # it overran its 0.4 s ...
    assert 0.35 < second.started - first.started < 0.9  # ... and stage 2 started on schedule
    assert second.started < first.finished
    assert 0.35 < third.started - second.started < 0.9
    for run in runs:  # every response logged while its stage ran
        assert run.started <= (run.responses.end - run.responses.latency).min()
        assert (run.responses.end - run.responses.latency).max() <= run.finished


def test_reading_a_stage_that_never_finished(tmp_path):
    path = write(tmp_path, stages((10, "1s"), (10, "1s")) + REQUEST)
    ramp = scenario.load(str(path))
    plan = generators.open_loop(ramp, ramp.duration)
    (tmp_path / "stage-1.started").write_text("1700000000.25\n")
    (tmp_path / "stage-1.a.log").write_text("1700000000300000\t200\t1000\n" * 4)
    responses, totals = generators.read_run(plan, ramp, tmp_path)
    first, second = totals["stages"]
    assert (first.started, first.finished, first.not_completed) == (1700000000.25, None, 6)
    assert (second.started, len(second.responses), second.not_completed) == (None, 0, 10)
    assert totals["not_completed"] == 16 and len(responses) == 4
    assert totals["exit_codes"] == {"stage-1.a": None, "stage-2.a": None}


def test_the_docs_ramp_example_is_valid(tmp_path):
    """The ramp on the docs' Load testing page, section Stages and soak, loads."""
    root = next(p for p in Path(__file__).resolve().parents if (p / "mkdocs.yml").is_file())
    page = (root / "docs" / "load-testing.md").read_text()
    section = page[page.index("## Stages and soak") :]
    start = section.index("```toml\n") + len("```toml\n")
    example = section[start : section.index("```\n", start)]
    loaded = scenario.load(str(write(tmp_path, example)))
    assert [(s.rate, s.duration) for s in loaded.stages] == [(50, 30), (100, 30)]
