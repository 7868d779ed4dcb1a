"""Docker stats to CPU seconds and peak RSS per round; engine names; what a proxy that
did not start logged. No Docker here."""

from __future__ import annotations

import pytest

from loadtest import stack
from loadtest.stack import Sample, Sampler


def test_engine_names_map_to_wsgi_server_values():
    assert stack.ENGINES == {"wsgistack": "wsgistack", "gunicorn": "gunicorn"}


class LoggedContainer:
    def __init__(self, log: str) -> None:
        self.log = log

    def logs(self, tail: int) -> bytes:
        return "\n".join(self.log.splitlines()[-tail:]).encode()


@pytest.mark.parametrize(
    ("log", "error"),
    [
        (
            "upstreams: app -> 10.0.0.3:8000\n"
            "nginx: [emerg] connection limit must be less 65536 in https.conf:25\n"
            "nginx: configuration file /etc/nginx/nginx.conf test failed\n",
            "nginx: [emerg] connection limit must be less 65536 in https.conf:25",
        ),
        (
            "entrypoint: RATE_LIMIT must look like 200r/s or 600r/m, got 'fast'\n\n",
            "entrypoint: RATE_LIMIT must look like 200r/s or 600r/m, got 'fast'",
        ),
        ("starting\nsomething else went wrong\n", "something else went wrong"),
        ("", "no log"),
    ],
)
def test_a_proxy_that_did_not_start_is_explained_by_its_last_error(monkeypatch, log, error):
    compose_stack = stack.Stack.__new__(stack.Stack)  # no Docker: only the log is read
    monkeypatch.setattr(compose_stack, "container", lambda service: LoggedContainer(log))
    assert compose_stack._last_error("proxy") == error


def sampler_with(samples: list[Sample]) -> Sampler:
    sampler = Sampler(stack=None)
    sampler.samples = samples
    return sampler


def test_cpu_is_interpolated_at_the_round_edges():
    samples = [Sample(t, "app", "a", int(t * 1e9), 100 + t) for t in (0.0, 1.0, 2.0, 3.0)]
    usage = sampler_with(samples).usage(0.5, 2.5)
    assert usage["app"]["cpu_seconds"] == pytest.approx(2.0)
    assert usage["app"]["peak_rss_bytes"] == 103  # the reading just after the end counts


def test_only_the_container_running_at_the_end_counts():
    old = [Sample(t, "app", "old", 10**12, 999) for t in (0.0, 1.0)]
    new = [Sample(t, "app", "new", int((t - 2) * 1e9), 5) for t in (2.0, 3.0, 4.0)]
    usage = sampler_with(old + new).usage(2.5, 3.5)
    assert usage["app"] == {"cpu_seconds": pytest.approx(1.0), "peak_rss_bytes": 5}


def test_a_generator_counts_from_its_start_and_a_round_without_samples_has_no_cpu():
    samples = [
        Sample(1.0, "loadgen", "g", int(0.4e9), 7),
        Sample(5.0, "app", "a", 10, 1),
        Sample(6.0, "app", "a", 20, 1),
    ]
    usage = sampler_with(samples).usage(0.0, 2.0)
    assert usage["loadgen"]["cpu_seconds"] == pytest.approx(0.4)
    assert "app" not in usage  # its first reading came after the round


def test_cpu_before_the_first_sample_is_unknown():
    samples = [Sample(t, "proxy", "p", int(t * 1e9), 1) for t in (1.0, 2.0)]
    assert sampler_with(samples).usage(0.5, 1.5)["proxy"]["cpu_seconds"] is None
