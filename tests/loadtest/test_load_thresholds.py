"""k6-style thresholds: every form of a [thresholds] table parses, every mistake is refused
naming it, and the checks come out right on made-up rounds (the generator's responses and
the server's Prometheus counts, as the runner records them); nothing runs."""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

import numpy as np
import pytest

from loadtest import generators, runner, scenario, thresholds
from loadtest.generators import Responses
from loadtest.prometheus import ServerCounts
from loadtest.runner import Round
from loadtest.scenario import ScenarioError
from loadtest.thresholds import Threshold

T0 = 1_700_000_000.0
REQUESTS = """
rate = 10
[[request]]
name = "hello"
path = "/"
[[request]]
name = "gone"
path = "/api/status?code=404"
expect = { status = [404] }
"""


def made_scenario(table: str = "") -> scenario.Scenario:
    """Two requests, ``hello`` (index 0: 200-399 pass) and ``gone`` (1: 404 passes), and
    the given [thresholds] table."""
    return scenario.parse(tomllib.loads(REQUESTS + "[thresholds]\n" + table), Path("mine.toml"))


def made_round(
    status: list[int],
    latency_ms: list[float],
    kind: list[int] | None = None,
    *,
    engine: str = "wsgistack",
    errors: dict[str, int] | None = None,
    duration: float = 10.0,
    by_status: dict[str, int] | None = None,
    quantiles: dict[str, float | None] | None = None,
) -> Round:
    """A round with one response per status (latency in ms; kind 0 unless given), the
    client's unlogged errors and measured seconds, and the server's counts."""
    n = len(status)
    responses = Responses(
        T0 + np.arange(n) / 100,
        np.array(status, dtype=int),
        np.array(latency_ms, dtype=float) / 1000,
        np.array([0] * n if kind is None else kind, dtype=int),
    )
    plan = generators.open_loop(made_scenario(), 1)
    result = Round(engine, 1, Path("raw"), plan, T0, T0 + duration, False, responses, {})
    result.client = {"errors": errors or {}, "duration_seconds": duration}
    result.server = {"by_status": by_status or {}, "latency_quantiles_seconds": quantiles or {}}
    return result


def one(text: str) -> Threshold:
    (parsed,) = made_scenario(text).thresholds
    return parsed


# -- parsing ---------------------------------------------------------------------------


def test_every_form_of_the_table_parses():
    parsed = made_scenario(
        'http_req_failed = "rate<0.01"\n'
        'http_req_duration = ["p(95)<200", "p(99.9) <= 500", " avg<50 ", "med<10", '
        '"min>=0", "max<2e3"]\n'
        'checks = "rate>0.99"\n'
        'http_reqs = ["count>100", "rate==10", "rate!=0"]\n'
        '"http_req_duration{name:hello}" = "p(99)<50"\n'
        '"http_req_failed{ name : gone }" = "rate<0.5"\n'
    ).thresholds
    assert [(t.key, t.aggregation, t.operator, t.limit, t.unit) for t in parsed] == [
        ("http_req_failed", "rate", "<", 0.01, "rate"),
        ("http_req_duration", "p(95)", "<", 200, "ms"),
        ("http_req_duration", "p(99.9)", "<=", 500, "ms"),
        ("http_req_duration", "avg", "<", 50, "ms"),
        ("http_req_duration", "med", "<", 10, "ms"),
        ("http_req_duration", "min", ">=", 0, "ms"),
        ("http_req_duration", "max", "<", 2000, "ms"),
        ("checks", "rate", ">", 0.99, "rate"),
        ("http_reqs", "count", ">", 100, "count"),
        ("http_reqs", "rate", "==", 10, "req/s"),
        ("http_reqs", "rate", "!=", 0, "req/s"),
        ("http_req_duration{name:hello}", "p(99)", "<", 50, "ms"),
        ("http_req_failed{name:gone}", "rate", "<", 0.5, "rate"),
    ]
    assert parsed[2].expression == "p(99.9)<=500" and parsed[2].quantile == pytest.approx(0.999)
    assert parsed[4].quantile == 0.5 and parsed[3].quantile is None
    assert [t.request for t in parsed[-2:]] == ["hello", "gone"]


def test_a_scenario_without_thresholds_has_none():
    assert scenario.parse(tomllib.loads(REQUESTS), Path("mine.toml")).thresholds == ()


def test_only_whole_scenario_failures_and_duration_quantiles_are_cross_checked():
    parsed = made_scenario(
        'http_req_failed = "rate<0.01"\n'
        'http_req_duration = ["p(95)<200", "med<10", "avg<50", "max<900"]\n'
        'checks = "rate>0.99"\nhttp_reqs = "count>1"\n'
        '"http_req_duration{name:hello}" = "p(99)<50"\n'
        '"http_req_failed{name:hello}" = "rate<0.1"\n'
    ).thresholds
    assert [t.cross_checked for t in parsed] == [True, True, True] + [False] * 6
    assert thresholds.server_quantiles(parsed) == [0.5, 0.95]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('http_req_waiting = "p(95)<200"', "unknown metric 'http_req_waiting'; known: "),
        ('"vus{name:hello}" = "value<2"', "unknown metric 'vus{name:hello}'"),
        ('"http_req_duration{status:200}" = "p(95)<2"', r"selects a request as \{name:REQUEST\}"),
        ('"http_req_duration{name:}" = "p(95)<2"', "selects a request"),
        ('"http_req_duration{name:home}" = "p(95)<2"', "no request named 'home'.*hello, gone"),
        ('http_req_duration = "p95<200"', "malformed expression 'p95<200'"),
        ('http_req_duration = "p(95)<"', "malformed expression"),
        ('http_req_duration = "<200"', "malformed expression"),
        ('http_req_duration = "p(95)=200"', "malformed expression"),
        ('http_req_duration = "p(95)<200ms"', "malformed expression"),
        ('http_req_failed = "rate<-1"', "malformed expression"),
        ('http_req_duration = "rate<200"', "http_req_duration has no rate; it has avg, min"),
        ('checks = "p(95)<2"', "checks has no p\\(95\\); it has rate"),
        ('http_reqs = "avg>2"', "http_reqs has no avg; it has count, rate"),
        ('http_req_duration = "p(101)<2"', "a percentile is 0..100"),
        ('http_req_failed = "rate<5"', "a rate is a fraction 0..1"),
        ("http_req_failed = 0.01", "expected an expression like"),
        ("http_req_duration = []", "expected an expression like"),
        ('http_req_duration = ["p(95)<200", 5]', "expected an expression like"),
        (
            'http_req_duration = { threshold = "p(95)<200", abortOnFail = true }',
            "expected an expression like",
        ),
    ],
)
def test_bad_thresholds_are_refused_naming_them(tmp_path, table, message):
    path = tmp_path / "mine.toml"
    path.write_text(REQUESTS + "[thresholds]\n" + table + "\n")
    with pytest.raises(ScenarioError, match=f"{path}: thresholds: .*{message}"):
        scenario.load(str(path))


def test_thresholds_must_be_a_table(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('thresholds = "rate<0.01"\n' + REQUESTS)
    with pytest.raises(ScenarioError, match="thresholds must be a table"):
        scenario.load(str(path))


# -- the client's side -------------------------------------------------------------------


def client(text: str, *rounds: Round) -> float | None:
    parsed = made_scenario(text)
    return thresholds.client_value(parsed.thresholds[0], parsed, list(rounds))


def test_duration_aggregations_are_over_answered_requests_in_ms():
    rounds = [
        made_round([200, 200, 500, -1], [10, 20, 30, 99]),
        made_round([200, 404], [40, math.nan], [0, 1]),  # NaN: a latency not measured
    ]
    observed = {
        aggregation: client(f'http_req_duration = "{aggregation}<1"', *rounds)
        for aggregation in ("avg", "min", "med", "max", "p(50)", "p(100)", "p(0)")
    }
    assert observed == pytest.approx(
        {"avg": 25, "min": 10, "med": 25, "max": 40, "p(50)": 25, "p(100)": 40, "p(0)": 10}
    )  # the failed request (-1) and the NaN are left out; a 500 has a latency
    assert client('http_req_duration = "p(90)<1"', *rounds) == pytest.approx(37)  # numpy's
    assert client('"http_req_duration{name:gone}" = "max<1"', *rounds) is None  # its only: NaN


def test_failures_follow_each_request_s_expected_statuses():
    # hello: 200 and 301 pass (200-399), 404 and -1 fail; gone: 404 passes, 200 fails
    statuses, kinds = [200, 301, 404, -1, 404, 404, 200], [0, 0, 0, 0, 1, 1, 1]
    result = made_round(statuses, [1] * 7, kinds, errors={"not_completed": 3, "http_5xx": 9})
    assert client('http_req_failed = "rate<0.01"', result) == pytest.approx(6 / 10)
    assert client('checks = "rate>0.99"', result) == pytest.approx(4 / 7)
    assert client('"http_req_failed{name:hello}" = "rate<0.01"', result) == pytest.approx(2 / 4)
    assert client('"checks{name:gone}" = "rate>0.99"', result) == pytest.approx(2 / 3)


def test_the_closed_loop_s_socket_errors_count_as_failed_requests():
    result = made_round([200] * 6, [1] * 6, errors={"connect": 1, "read": 1, "timeout": 2})
    assert client('http_req_failed = "rate<0.01"', result) == pytest.approx(4 / 10)


def test_requests_count_and_rate_over_the_measured_time():
    rounds = [made_round([200] * 30, [1] * 30, duration=10), made_round([-1] * 10, [1] * 10)]
    assert client('http_reqs = "count>1"', *rounds) == 40
    assert client('http_reqs = "rate>1"', *rounds) == pytest.approx(2.0)
    assert client('"http_reqs{name:gone}" = "count>1"', *rounds) == 0


@pytest.mark.parametrize(
    "text",
    [
        'http_req_duration = "p(95)<200"',
        'http_req_failed = "rate<0.01"',
        'checks = "rate>0.99"',
        'http_reqs = "rate>1"',
    ],
)
def test_no_responses_measure_nothing_and_fail_saying_so(text):
    result = made_round([], [], duration=0)
    parsed = made_scenario(text)
    assert thresholds.client_value(parsed.thresholds[0], parsed, [result]) is None
    outcome = thresholds.evaluate(parsed, [result], {"engines": ["wsgistack"]}, True)
    assert outcome["passed"] is False
    assert outcome["checks"][0]["observed"] is None
    assert outcome["checks"][0]["message"].startswith("no value: no ")


def test_a_count_of_zero_is_a_value():
    assert client('http_reqs = "count>1"', made_round([], [], duration=0)) == 0


# -- checks and their messages --------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "observed", "passed", "message"),
    [
        ("p(95)<200", 312.0, False, "312 ms, 112 ms (56 %) over"),
        ("p(95)<200", 12.34, True, "12.3 ms"),
        ("p(95)<=200", 200.0, True, "200 ms"),
        ("p(95)<200", 200.0, False, "200 ms, at the limit"),
        ("max>100", 40.0, False, "40 ms, 60 ms (60 %) under"),
        ("avg==10", 12.0, False, "12 ms, not 10 ms"),
        ("avg!=10", 10.0, False, "10 ms, at the limit"),
        ("min<0", 1.5, False, "1.5 ms, 1.5 ms over"),  # no share of a limit of 0
    ],
)
def test_a_failure_says_by_how_much(expression, observed, passed, message):
    entry = thresholds.check(one(f'http_req_duration = "{expression}"'), "x", "client", observed)
    assert (entry["passed"], entry["message"]) == (passed, message)


def test_rates_counts_and_per_second_are_shown_in_their_units():
    failed = thresholds.check(one('http_req_failed = "rate<0.01"'), "x", "client", 0.0312)
    assert failed["message"] == "0.0312, 0.0212 (212 %) over"
    slow = thresholds.check(one('http_reqs = "rate>100"'), "gunicorn", "client", 91.25)
    assert thresholds.line(slow) == "gunicorn http_reqs rate>100: 91.2 req/s, 8.8 req/s (9 %) under"
    few = thresholds.check(one('http_reqs = "count>=100"'), "x", "client", 97.0)
    assert few["message"] == "97, 3 (3 %) under"


def test_an_entry_has_the_shape_the_report_reads():
    entry = thresholds.check(
        one('"http_req_duration{name:hello}" = "p(99)<50"'), "wsgistack", "client", 60.0
    )
    assert entry == {
        "engine": "wsgistack",
        "metric": "http_req_duration{name:hello}",
        "request": "hello",
        "expression": "p(99)<50",
        "source": "client",
        "observed": 60.0,
        "limit": 50.0,
        "unit": "ms",
        "passed": False,
        "message": "60 ms, 10 ms (20 %) over",
    }
    assert thresholds.line(entry) == (
        "wsgistack http_req_duration{name:hello} p(99)<50: 60 ms, 10 ms (20 %) over"
    )


# -- evaluation, with the server's side -------------------------------------------------


TABLE = 'http_req_failed = "rate<0.1"\nhttp_req_duration = ["p(95)<200", "avg<100"]\n'


def test_both_sides_are_checked_per_engine_and_either_fails_the_threshold():
    rounds = [
        made_round(
            [200] * 10,
            [5] * 10,
            engine=engine,
            by_status={"GET 200": 10 - errors, "GET 502": errors},
            quantiles={"0.95": server_p95},
        )
        for engine, errors, server_p95 in (("wsgistack", 0, 0.05), ("gunicorn", 2, 0.3))
    ]
    outcome = thresholds.evaluate(
        made_scenario(TABLE), rounds, {"engines": ["wsgistack", "gunicorn"]}, True
    )
    assert outcome["passed"] is False and outcome["enforced"] and outcome["cross_checked"]
    found = [(c["engine"], c["metric"], c["expression"], c["source"]) for c in outcome["checks"]]
    assert found == [
        (engine, metric, expression, source)
        for engine in ("wsgistack", "gunicorn")
        for metric, expression, source in (
            ("http_req_failed", "rate<0.1", "client"),
            ("http_req_failed", "rate<0.1", "prometheus"),
            ("http_req_duration", "p(95)<200", "client"),
            ("http_req_duration", "p(95)<200", "prometheus"),
            ("http_req_duration", "avg<100", "client"),
        )
    ]
    failed = [thresholds.line(c) for c in outcome["checks"] if not c["passed"]]
    assert failed == [
        "gunicorn http_req_failed rate<0.1 (Prometheus): 0.2, 0.1 (100 %) over",
        "gunicorn http_req_duration p(95)<200 (Prometheus): 300 ms, 100 ms (50 %) over",
    ]


def test_an_external_target_is_checked_on_the_client_s_side_only():
    result = made_round([200] * 10, [5] * 10)  # the server counted nothing: no figure
    outcome = thresholds.evaluate(
        made_scenario(TABLE), [result], {"engines": ["wsgistack"], "target_local": False}, False
    )
    assert {c["source"] for c in outcome["checks"]} == {"client"}
    assert (outcome["passed"], outcome["enforced"], outcome["cross_checked"]) == (
        True,
        False,
        False,
    )


def test_without_thresholds_nothing_passes_or_fails():
    result = made_round([500], [5])
    outcome = thresholds.evaluate(made_scenario(), [result], {"engines": ["wsgistack"]}, True)
    assert (outcome["passed"], outcome["checks"]) == (None, [])


def test_the_server_s_failures_are_its_5xx_that_no_request_expects():
    parsed = scenario.parse(
        tomllib.loads(
            'rate = 1\n[[request]]\nname = "down"\npath = "/api/status?code=503"\n'
            "expect = { status = [503] }\n"
            '[[request]]\nname = "home"\npath = "/"\n[thresholds]\nhttp_req_failed = "rate<0.01"'
        ),
        Path("mine.toml"),
    )
    result = made_round([], [], by_status={"GET 503": 5, "GET 500": 1, "GET 404": 2, "GET 200": 2})
    assert thresholds.server_value(parsed.thresholds[0], parsed, [result]) == pytest.approx(0.1)
    assert thresholds.server_value(parsed.thresholds[0], parsed, [made_round([], [])]) is None


def test_the_server_s_quantile_is_the_median_of_the_rounds_and_none_without_one():
    p95 = one('http_req_duration = "p(95)<200"')
    rounds = [made_round([], [], quantiles={"0.95": v}) for v in (0.01, 0.03, None, 0.02)]
    assert thresholds.server_value(p95, made_scenario(), rounds) == pytest.approx(20)
    outcome = thresholds.evaluate(
        made_scenario('http_req_duration = "p(95)<200"'),
        [made_round([200], [5], quantiles={"0.95": None})],
        {"engines": ["wsgistack"]},
        True,
    )
    server = outcome["checks"][1]
    assert (server["source"], server["passed"], server["observed"]) == ("prometheus", False, None)
    assert server["message"] == "no value: the server counted no requests in the rounds' windows"


def test_the_runner_records_the_quantiles_the_thresholds_read():
    """runner.server_summary keys Prometheus' quantiles so that server_value finds them."""
    parsed = made_scenario('http_req_duration = ["p(99.9)<200", "med<5"]')
    wanted = thresholds.server_quantiles(parsed.thresholds)
    result = made_round([200], [1])
    result.client |= {"requests": 1, "errors": {"http_429": 0, "failed": 0, "not_completed": 0}}
    counts = ServerCounts(T0, T0 + 10, {"GET 200": 1}, 0, 0.004, {q: q / 100 for q in wanted})
    result.server = runner.server_summary(result, counts)
    observed = [thresholds.server_value(t, parsed, [result]) for t in parsed.thresholds]
    assert observed == pytest.approx([0.999 * 10, 0.5 * 10])  # ms


def test_the_knee_s_latency_limit_is_the_tightest_p99_upper_bound():
    limits = thresholds.parse(
        {
            "http_req_duration": ["p(95)<100", "p(99)<800", "p(99)<=500", "p(99)>1"],
            "http_req_duration{name:a}": "p(99)<50",
        },
        ["a"],
    )
    assert thresholds.p99_limit_seconds(limits) == 0.5
    assert thresholds.p99_limit_seconds(thresholds.parse({"checks": "rate>0.9"}, ["a"])) is None
