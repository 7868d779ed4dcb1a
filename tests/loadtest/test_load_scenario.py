"""Scenario files: every shipped one is valid and bounded; bad ones fail with the field named."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtest import scenario
from loadtest.scenario import ScenarioError

SHIPPED = ["cpu", "hello", "io", "json-echo", "mixed", "ramp", "soak", "stream", "upload"]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mine.toml"
    path.write_text(text)
    return path


def test_the_issue_s_scenarios_are_shipped():
    assert scenario.available() == SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_scenarios_are_valid_and_bounded(name):
    loaded = scenario.load(name)
    assert loaded.name == name and loaded.description
    assert loaded.rate * loaded.duration <= scenario.MAX_REQUESTS
    assert loaded.duration <= scenario.MAX_DURATION
    assert sum(loaded.share(r) for r in loaded.requests) == pytest.approx(1.0)


def test_the_scenarios_hit_the_endpoints_the_issue_names():
    paths = {name: [r.path for r in scenario.load(name).requests] for name in SHIPPED}
    assert paths["cpu"][0].startswith("/api/work?")
    assert paths["io"][0].startswith("/api/sleep?")
    assert paths["stream"][0].startswith("/api/stream")
    assert paths["json-echo"][0].startswith("/api/echo")
    upload = scenario.load("upload").requests[0]
    assert (upload.method, upload.path, len(upload.body)) == ("POST", "/api/upload", 1024 * 1024)


def test_mixed_blends_the_other_scenarios_by_weight():
    mixed = scenario.load("mixed")
    shares = {r.name: round(mixed.share(r), 2) for r in mixed.requests}
    assert shares == {
        "hello": 0.6,
        "json-echo": 0.2,
        "work-5ms": 0.08,
        "sleep-20ms": 0.08,
        "upload-1mib": 0.02,
        "stream-1mib": 0.02,
    }


def test_a_users_own_file_loads_by_path(tmp_path):
    path = write(
        tmp_path,
        'rate = 5\nduration = "2m"\n[[request]]\nname = "home"\npath = "/"\n'
        '[[request]]\nname = "login"\nmethod = "POST"\npath = "/login"\nbody = "a=1"\n'
        'headers = { "Content-Type" = "application/x-www-form-urlencoded" }\n',
    )
    loaded = scenario.load(str(path))
    assert (loaded.name, loaded.rate, loaded.duration, loaded.connections) == ("mine", 5, 120, 8)
    assert loaded.requests[1].body == b"a=1"
    assert loaded.requests[1].headers == (("Content-Type", "application/x-www-form-urlencoded"),)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("30s", 30), ("500ms", 0.5), ("2m", 120), ("1h", 3600), ("1.5s", 1.5), (7, 7), ("12", 12)],
)
def test_durations(value, seconds):
    assert scenario.parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["", "s", "-1s", "0", "10x", "1 m", True])
def test_bad_durations_are_refused(value):
    with pytest.raises(ScenarioError, match="duration"):
        scenario.parse_duration(value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rate = 1\n", "at least one"),
        ('rate = 1\nspeed = 2\n[[request]]\nname = "a"\npath = "/"\n', "unknown setting"),
        ('[[request]]\nname = "a"\npath = "/"\n', "rate is required"),
        ('rate = 0\n[[request]]\nname = "a"\npath = "/"\n', "rate must be"),
        ('rate = 1\n[[request]]\nname = "a b"\npath = "/"\n', "name must be"),
        ('rate = 1\n[[request]]\nname = "a"\npath = "x"\n', "path must start"),
        ('rate = 1\n[[request]]\nname = "a"\npath = "/"\nmethod = "PUT"\n', "method must be"),
        ('rate = 1\n[[request]]\nname = "a"\npath = "/"\nbody = "x"\n', "needs method POST"),
        ('rate = 1\nprotocol = "h3"\n[[request]]\nname = "a"\npath = "/"\n', "protocol"),
        (
            'rate = 1\n[[request]]\nname = "a"\npath = "/"\n[[request]]\nname = "a"\npath = "/x"\n',
            "unique",
        ),
        (
            'rate = 1\n[[request]]\nname = "a"\nmethod = "POST"\npath = "/"\nbody_bytes = 0\n',
            "body",
        ),
        ('rate = 1000\nduration = "1h"\n[[request]]\nname = "a"\npath = "/"\n', "at most"),
        ('rate = 1\nduration = "2h"\n[[request]]\nname = "a"\npath = "/"\n', "at most 3600"),
        ("rate = [", "not valid TOML"),
        ('rate = 1\n[[request]]\nname = "a"\npath = "/"\nexpect = [200]\n', "expect must be"),
        (
            'rate = 1\n[[request]]\nname = "a"\npath = "/"\nexpect = { code = [200] }\n',
            "expect must be a table like",
        ),
        (
            'rate = 1\n[[request]]\nname = "a"\npath = "/"\nexpect = { status = [] }\n',
            "request 1: expect.status must be a list of HTTP statuses",
        ),
        (
            'rate = 1\n[[request]]\nname = "a"\npath = "/"\nexpect = { status = 200 }\n',
            "expect.status must be a list",
        ),
        (
            'rate = 1\n[[request]]\nname = "a"\npath = "/"\nexpect = { status = [200, 99] }\n',
            "expect.status must be a list of HTTP statuses 100..599, got \\[200, 99\\]",
        ),
        (
            'rate = 1\n[[request]]\nname = "a"\npath = "/"\nexpect = { status = ["200"] }\n',
            "expect.status",
        ),
        (
            'rate = 1\n[[request]]\nname = "a"\npath = "/"\nexpect = { status = [true] }\n',
            "expect.status",
        ),
    ],
)
def test_bad_scenarios_name_the_problem(tmp_path, text, message):
    with pytest.raises(ScenarioError, match=message):
        scenario.load(str(write(tmp_path, text)))


def test_expected_statuses_default_to_k6_s_200_to_399(tmp_path):
    loaded = scenario.load(
        str(
            write(
                tmp_path,
                'rate = 1\n[[request]]\nname = "a"\npath = "/"\n'
                '[[request]]\nname = "b"\npath = "/x"\nexpect = { status = [200, 404] }\n',
            )
        )
    )
    assert loaded.requests[0].expect_status == tuple(range(200, 400))
    assert loaded.requests[1].expect_status == (200, 404)


@pytest.mark.parametrize("name", ["hello", "mixed"])
def test_hello_and_mixed_gate_on_failures_and_the_tail(name):
    keys = {(t.key, t.expression) for t in scenario.load(name).thresholds}
    assert {("http_req_failed", "rate<0.01"), ("http_req_duration", "p(99)<1000")} <= keys


def test_unknown_names_list_the_shipped_scenarios():
    with pytest.raises(ScenarioError, match="hello"):
        scenario.load("nope")


def test_overrides_are_checked_against_the_bounds():
    hello = scenario.load("hello")
    assert hello.with_overrides(rate=3, duration=4).rate == 3
    with pytest.raises(ScenarioError, match="at most"):
        hello.with_overrides(duration=scenario.MAX_DURATION + 1)


def docs_toml() -> list[str]:
    """The TOML blocks of the docs' Load testing page (docs/load-testing.md), in order."""
    root = next(p for p in Path(__file__).resolve().parents if (p / "mkdocs.yml").is_file())
    page = (root / "docs" / "load-testing.md").read_text()
    return [block.split("```\n")[0] for block in page.split("```toml\n")[1:]]


def test_the_docs_example_scenario_is_valid(tmp_path):
    """The scenario on the docs' Load testing page loads."""
    loaded = scenario.load(str(write(tmp_path, docs_toml()[0])))
    assert [r.name for r in loaded.requests] == ["home", "checkout"]
    assert loaded.requests[1].body == b'{"items": [1, 2]}'
    assert loaded.requests[1].expect_status == (200, 201)
    assert [t.expression for t in loaded.thresholds] == ["rate<0.01", "p(95)<300", "p(99)<1000"]


def test_the_docs_thresholds_example_is_valid(tmp_path):
    """The Thresholds section's table, in place of the example scenario's, loads."""
    example, table = docs_toml()[:2]
    path = write(tmp_path, example.split("[thresholds]")[0] + table)
    keys = [t.key for t in scenario.load(str(path)).thresholds]
    assert keys[-1] == "http_req_duration{name:checkout}" and len(keys) == 6


def test_a_bench_table_is_carried_and_must_be_a_table(tmp_path):
    head = 'rate = 1\n[[request]]\nname = "a"\npath = "/"\n'
    assert scenario.load(str(write(tmp_path, head))).bench == {}
    loaded = scenario.load(str(write(tmp_path, head + "[bench]\ndirect = true\n")))
    assert loaded.bench == {"direct": True}
    with pytest.raises(ScenarioError, match="bench must be a table"):
        scenario.load(str(write(tmp_path, "bench = 1\n" + head)))
