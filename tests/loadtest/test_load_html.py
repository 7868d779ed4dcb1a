"""report.html from made-up rounds (test_load_report's): every section, the strings from the
summary escaped, nothing fetched from anywhere, one inline SVG per figure. Nothing runs;
test_load_html_browser.py opens the file in Chromium."""

from __future__ import annotations

import copy
import re
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest

from loadtest import environment, html, report

from .test_load_report import both_engines

SECTIONS = {
    "thresholds",
    "settings",
    "environment",
    "engines",
    "requests",
    "status",
    "containers",
    "notes",
    "plots",
}


class Parsed(HTMLParser):
    """Every start tag with its attributes, and the text, of an HTML document."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)

    def ids(self, tag: str) -> list[str]:
        return [attrs["id"] for t, attrs in self.tags if t == tag and attrs.get("id")]


def built(folder: Path, engines: list[str]) -> tuple[dict, dict, str]:
    """(summary, figures, report.html) as report.write makes them for ``engines``, the
    run's machine in the settings."""
    settings, results = both_engines()
    settings["environment"] = environment.describe()
    settings["engines"] = engines
    results = [r for r in results if r.engine in engines]
    summary = report.write(folder, settings, results)
    return summary, report.figures(settings, results), (folder / "report.html").read_text()


@pytest.fixture(scope="module")
def one(tmp_path_factory) -> tuple[dict, dict, str]:
    return built(tmp_path_factory.mktemp("one"), ["wsgistack"])


@pytest.fixture(scope="module")
def two(tmp_path_factory) -> tuple[dict, dict, str]:
    return built(tmp_path_factory.mktemp("two"), ["wsgistack", "gunicorn"])


THRESHOLDS = {
    "enforced": True,
    "passed": False,
    "checks": [
        {
            "engine": "wsgistack",
            "metric": "http_req_duration",
            "expression": "p(95)<200",
            "source": "client",
            "observed": 10.0,
            "limit": 200.0,
            "unit": "ms",
            "passed": True,
            "message": "p(95) 10 ms < 200 ms",
        },
        {
            "engine": "wsgistack",
            "metric": "http_req_failed",
            "expression": "rate<0.01",
            "source": "prometheus",
            "observed": 0.25,
            "limit": 0.01,
            "unit": "rate",
            "passed": False,
            "message": "rate 0.25 is not < 0.01 <by 0.24>",
        },
    ],
}


def test_one_engine_has_every_section_and_no_comparison(one):
    summary, _, text = one
    page = Parsed(text)
    assert set(page.ids("section")) == SECTIONS
    assert "no thresholds" in text
    settings = dict(re.findall(r'<th scope="row">([^<]*)</th><td>([^<]*)</td>', text))
    assert settings["scenario"] == "mixed"
    assert settings["mode"] == "open loop (h2load (nghttp2), h2)"
    assert settings["scenario file"].endswith("loadtest/scenarios/mixed.toml")
    assert settings["finished"] == "2023-11-14T22:14:00+00:00"
    assert settings["rate, req/s"] == "10"
    assert settings["duration per engine, s"] == "20"
    assert settings["rounds"] == "2 of 10 s each"
    assert settings["connections"] == "6"
    assert settings["engines"] == "wsgistack (WSGI_SERVER=wsgistack)"
    assert settings["target"] == "https://proxy:8443"
    assert settings["nginx per-client limits"] == (
        "100000r/s (burst 100000), 65535 requests in progress"
    )
    machine = summary["settings"]["environment"]
    assert settings["CPU"] == html._e(machine["cpu_model"])
    assert settings["Python"] == machine["python"]
    assert "/ gunicorn" not in text
    # the per-engine table: report.md's rows
    assert "<tr><td>latency p50, ms</td><td>10</td></tr>" in text
    assert "<tr><td>app</td><td>2.00</td><td>64.0</td></tr>" in text  # CPU s, RSS MiB


def test_two_engines_show_the_verdict_and_the_ratios_with_their_spread(two):
    _, _, text = two
    assert "verdict" in Parsed(text).ids("section")
    assert (
        "<li>latency p50: wsgistack is 0.50x gunicorn (median of 2 rounds, range 0.50-0.50): "
        "<strong>wsgistack</strong> is better in every round</li>"
    ) in text
    assert "<tr><td>latency p50, ms</td><td>10</td><td>20</td><td>0.50 [0.50-0.50]</td></tr>" in (
        text
    )
    assert "<tr><td>latency p50</td><td>0.50 [0.50-0.50]</td><td>0.50</td><td>0.50</td></tr>" in (
        text
    )
    # per request: requests, errors, p50, p99 of each engine
    assert (
        "<tr><td>hello</td><td>34</td><td>0</td><td>10</td><td>10</td>"
        "<td>34</td><td>0</td><td>20</td><td>20</td></tr>"
    ) in text
    # status codes, the server's over both rounds, and the client's error kinds
    assert "<tr><td>POST 200</td><td>60</td><td>60</td></tr>" in text
    assert "<tr><td>http_429</td><td>0</td><td>0</td></tr>" in text
    assert "<p>None.</p></section>" in text  # no notes


def test_every_string_from_the_summary_is_escaped(tmp_path):
    settings, results = both_engines()
    settings["description"] = "<script>alert('x')</script> & more"
    results[0].client["generator_messages"] = {"<img src=x>": 'said "<b>no</b>"'}
    summary = report.write(tmp_path, settings, results)
    summary["thresholds"] = THRESHOLDS
    text = html.render(summary, {"a <b>": report.figures(settings, results)["latency.png"]})
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; more" in text
    assert text.count("<script>") == 1  # the report's own
    assert "<strong>&lt;img src=x&gt; failed</strong>" in text
    assert "said &quot;&lt;b&gt;no&lt;/b&gt;&quot;" in text
    assert "rate 0.25 is not &lt; 0.01 &lt;by 0.24&gt;" in text
    assert "<figcaption>a &lt;b&gt;</figcaption>" in text
    assert "<b>" not in text and "<img" not in text


# What a page loads: scripts, stylesheets, images, frames, CSS url()s and imports.
LOADED = re.compile(
    r"\b(?:src|href|action|data|poster)\s*=\s*[\"']?([^\"'\s>]+)"
    r"|url\(\s*[\"']?([^\"')]+)"
    r"|@import\s+[\"']([^\"']+)",
    re.I,
)


def test_nothing_is_fetched_from_anywhere(two):
    summary, _, text = two
    loaded = {next(g for g in m.groups() if g) for m in LOADED.finditer(text)}
    assert loaded and all(url.startswith("#f") for url in loaded), loaded  # in-page only
    # The only URL at all is the target's, as text.
    assert set(re.findall(r"[a-z][a-z0-9+.-]*://[^\s<\"']*", text, re.I)) == {
        summary["settings"]["target"]
    }
    assert "default-src 'none'" in text  # and the browser would refuse anything else
    assert "@font-face" not in text


def test_one_inline_svg_per_figure_and_no_id_twice(two):
    summary, figures, text = two
    page = Parsed(text)
    assert [t for t, _ in page.tags].count("svg") == len(figures) == 2
    assert page.ids("figure") == ["figure-1", "figure-2"]
    assert "<figcaption>throughput.png</figcaption>" in text
    assert "<?xml" not in text and "<!-- " not in text
    ids = Counter(attrs["id"] for _, attrs in page.tags if attrs.get("id"))
    assert not [i for i, n in ids.items() if n > 1]
    referenced = {
        ref.lstrip("#")
        for ref in re.findall(r'href="(#[^"]+)"|url\((#[^)]+)\)', text)
        for ref in ref
    } - {""}
    assert referenced and referenced <= set(ids)  # every use and clip path finds its target
    three = dict(figures, extra=figures["latency.png"])
    assert html.render(summary, three).count("<svg") == 3


@pytest.mark.parametrize(
    ("passed", "enforced", "banner"),
    [
        (True, True, '<p class="banner passed">PASSED</p>'),
        (False, True, '<p class="banner failed">FAILED</p>'),
        (False, False, "FAILED (not enforced: FAIL_ON_THRESHOLD=0, the run exits 0)"),
        (None, True, '<p class="banner none">no thresholds</p>'),
    ],
)
def test_the_thresholds_banner_and_their_checks(two, passed, enforced, banner):
    summary = {**two[0], "thresholds": {**THRESHOLDS, "passed": passed, "enforced": enforced}}
    text = html.render(summary, {})
    assert banner in text
    if passed is not None:
        assert (
            "<tr><td>wsgistack</td><td>http_req_failed</td><td>rate&lt;0.01</td>"
            '<td>prometheus</td><td>0.2500</td><td class="failed">FAIL</td>'
        ) in text
        assert '<td>10 ms</td><td class="passed">pass</td>' in text


def test_stages_mark_the_knee_and_a_soak_run_shows_its_minutes(two):
    summary, _, text = copy.deepcopy(two)
    assert "stages" not in Parsed(text).ids("section")
    assert "per-minute" not in Parsed(text).ids("section")
    latency = {"p50": 0.01, "p90": 0.02, "p99": 0.05, "p99.9": 0.08, "max": 0.1}
    summary["engines"]["wsgistack"]["stages"] = [
        {
            "stage": k,
            "rate_rps": 50.0 * k,
            "duration_seconds": 30.0,
            "requests": 1500 * k,
            "achieved_rps": 50.0 * k if k < 3 else 120.0,
            "latency_seconds": latency,
            "errors": 0,
        }
        for k in (1, 2, 3)
    ]
    summary["engines"]["wsgistack"]["knee"] = {"stage": 3, "reason": "achieved 120 of 150 req/s"}
    summary["engines"]["gunicorn"]["stages"] = summary["engines"]["wsgistack"]["stages"][:1]
    summary["engines"]["gunicorn"]["knee"] = None
    summary["engines"]["gunicorn"]["per_minute"] = {
        "minute": [0, 1],
        "throughput_rps": [99.5, 100.0],
        "p50": [0.002, None],
        "p99": [0.02, None],
        "errors": [0, 3],
    }
    text = html.render(summary, {})
    assert {"stages", "per-minute"} <= set(Parsed(text).ids("section"))
    assert "The knee: stage 3, achieved 120 of 150 req/s." in text
    assert "No knee: every stage kept its rate and latency." in text
    assert (
        '<tr class="knee"><td>3</td><td>150</td><td>30</td><td>4500</td><td>120.0</td>'
        "<td>10</td><td>20</td><td>50</td><td>80</td><td>100</td><td>0</td></tr>"
    ) in text
    assert text.count('class="knee"') == 1
    assert "<tr><td>1</td><td>100.0</td><td>-</td><td>-</td><td>3</td></tr>" in text


def test_the_notes_are_report_md_s(tmp_path):
    settings, results = both_engines()
    results[0].server["requests"] = 90
    results[1].client["send_seconds"] = 14.0
    results[2].client["timed_out"] = True
    results[3].client["errors"]["http_429"] = 5
    summary = report.write(tmp_path, settings, results)
    text = (tmp_path / "report.html").read_text()
    markdown = (tmp_path / "report.md").read_text()
    found = report.notes(settings, summary["engines"])
    assert [title for title, _ in found] == [
        "Count mismatch",  # wsgistack, round 1
        "Cut at the time limit",  # wsgistack, round 2
        "The generator fell behind the rate",  # gunicorn, round 1
        "nginx refused 5 requests with 429",  # gunicorn, round 2
    ]
    for title, details in found:
        assert f"**{title}** {details}" in markdown
        assert f'<p class="note"><strong>{html._e(title)}</strong> {html._e(details)}</p>' in text


def test_a_closed_loop_run_says_so(two):
    summary = copy.deepcopy(two[0])
    summary["settings"] |= {"mode": "closed", "generator": "wrk", "rate_rps": None}
    text = html.render(summary, {})
    assert '<th scope="row">mode</th><td>closed loop (wrk, HTTP/1.1)</td>' in text
    assert '<th scope="row">rate, req/s</th><td>as fast as answered</td>' in text


def test_a_target_outside_the_stack_has_no_server_side(tmp_path):
    """TARGET=: the rounds have no Prometheus figures and the settings no nginx limits;
    both reports say so instead of failing."""
    settings, results = both_engines()
    settings |= {"engines": ["target"], "target": "https://staging.example.org"}
    settings |= {"target_local": False, "tls_verified": True}
    del settings["proxy_limits"], settings["wsgi_server"]
    results = [r for r in results if r.engine == "wsgistack"]
    for r in results:
        r.engine, r.server, r.containers = "target", {}, {}
    summary = report.write(tmp_path, settings, results)
    assert summary["engines"]["target"]["server"] is None
    page = Parsed((tmp_path / "report.html").read_text())
    text = " ".join(page.text)
    assert "no: Prometheus cross-checks and container figures skipped" in text
    assert "nginx per-client limits" not in text
    markdown = (tmp_path / "report.md").read_text()
    assert "against https://staging.example.org, its TLS certificate verified" in markdown
    assert "| requests counted by the server (Prometheus) | - |" in markdown
