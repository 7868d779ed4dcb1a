"""loadtest.bench.wrk: wrk's --latency report into numbers, and the Lua script for a
request with a body. Nothing here runs wrk."""

from __future__ import annotations

import pytest

from loadtest.bench import wrk
from loadtest.bench.scenarios import SCENARIOS

# A real `wrk -t1 -c32 -d3s --latency` report (wrk 4.1.0), with the two optional lines
# wrk adds when they are not zero ("  Socket errors: connect %d, read %d, write %d,
# timeout %d" and "  Non-2xx or 3xx responses: %d").
WRK_WITH_ERRORS = """\
Running 3s test @ http://127.0.0.1:40123/
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.19ms    1.52ms  31.86ms   93.45%
    Req/Sec    14.95k     1.23k   16.60k    76.67%
  Latency Distribution
     50%    1.85ms
     75%    2.31ms
     90%    3.05ms
     99%    9.03ms
  44627 requests in 3.01s, 7.02MB read
  Socket errors: connect 0, read 3, write 1, timeout 2
  Non-2xx or 3xx responses: 5
Requests/sec:  14826.25
Transfer/sec:      2.33MB
"""

WRK_SLOW = """\
Running 1m test @ http://127.0.0.1:40123/api/sleep?ms=20
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   347.44ms   20.11ms    1.02s    90.00%
    Req/Sec    89.10     10.00    100.00     70.00%
  Latency Distribution
     50%  812.00us
     75%  347.44ms
     90%    1.02s
     99%    1.50m
  5346 requests in 1.00m, 1.02MB read
Requests/sec:     89.03
Transfer/sec:     17.40KB
"""

WRK_NOTHING = """\
Running 1s test @ http://127.0.0.1:18555/api/sleep?ms=1500
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     0.00us    0.00us   0.00us    -nan%
    Req/Sec     0.00      0.00     0.00      -nan%
  Latency Distribution
     50%    0.00us
     75%    0.00us
     90%    0.00us
     99%    0.00us
  0 requests in 1.00s, 0.00B read
Requests/sec:      0.00
Transfer/sec:       0.00B
"""


# -- wrk output ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("812.00us", 0.812),
        ("1.85ms", 1.85),
        ("1.02s", 1020.0),
        ("1.50m", 90_000.0),
        ("2.00h", 7_200_000.0),
        (" 9.03ms ", 9.03),
    ],
)
def test_parse_time_ms_every_wrk_unit(text, ms):
    assert wrk.parse_time_ms(text) == pytest.approx(ms)


@pytest.mark.parametrize("text", ["", "12", "1.0 ms", "1.0ns", "-1ms", "ms"])
def test_parse_time_ms_rejects_what_wrk_does_not_print(text):
    with pytest.raises(ValueError):
        wrk.parse_time_ms(text)


def test_parse_wrk_numbers_and_errors():
    result = wrk.parse(WRK_WITH_ERRORS)
    assert result.rps == pytest.approx(14826.25)
    assert result.requests == 44627
    assert result.duration_s == pytest.approx(3.01)
    assert result.latency_ms == pytest.approx({"50": 1.85, "75": 2.31, "90": 3.05, "99": 9.03})
    assert result.socket_errors == {"connect": 0, "read": 3, "write": 1, "timeout": 2}
    assert result.non_2xx_3xx == 5
    assert result.errors == 11


def test_parse_wrk_mixed_units_and_no_error_lines():
    result = wrk.parse(WRK_SLOW)
    assert result.rps == pytest.approx(89.03)
    assert result.duration_s == pytest.approx(60.0)
    assert result.latency_ms == pytest.approx(
        {"50": 0.812, "75": 347.44, "90": 1020.0, "99": 90_000.0}
    )
    assert result.socket_errors == {}
    assert result.non_2xx_3xx == 0
    assert result.errors == 0


def test_parse_wrk_percentiles_come_from_the_distribution_not_the_thread_stats():
    # "Latency 2.19ms ..." (the average) must not be read as a percentile.
    text = WRK_WITH_ERRORS.replace("     50%    1.85ms\n", "")
    assert "50" not in wrk.parse(text).latency_ms


def test_parse_wrk_without_latency_flag_has_no_percentiles():
    head, _, rest = WRK_WITH_ERRORS.partition("  Latency Distribution\n")
    text = head + rest.split("     99%    9.03ms\n", 1)[1]
    result = wrk.parse(text)
    assert result.latency_ms == {}
    assert result.rps == pytest.approx(14826.25)


def test_parse_wrk_nothing_completed_has_no_latency():
    result = wrk.parse(WRK_NOTHING)
    assert result.requests == 0
    assert result.rps == 0.0
    assert result.latency_ms == {}


@pytest.mark.parametrize(
    "text",
    [
        "",
        "unable to connect to 127.0.0.1:18556 Connection refused\n",
        WRK_WITH_ERRORS.replace("Requests/sec:", "Requests/s:"),
        WRK_WITH_ERRORS.replace("44627 requests in", "requests in"),
    ],
)
def test_parse_wrk_rejects_other_output(text):
    with pytest.raises(ValueError):
        wrk.parse(text)


def test_upload_script_posts_one_mebibyte(tmp_path):
    request = SCENARIOS["upload"].request
    assert len(request.body) == 1048576
    body = tmp_path / "upload.body"
    text = wrk.script(request, body)
    assert 'wrk.method = "POST"' in text
    assert f'io.open("{body}", "rb")' in text and 'wrk.body = file:read("*a")' in text
    assert 'wrk.headers["Content-Type"] = "application/octet-stream"' in text


def test_a_plain_get_needs_no_script():
    assert not wrk.needs_script(SCENARIOS["hello"].request)
    assert wrk.needs_script(SCENARIOS["upload"].request)
