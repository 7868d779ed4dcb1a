"""report.html in a real headless Chromium (Debian's; requirements/host-packages.txt),
opened from its file with the network blocked: nothing fails to load, nothing is logged
as an error, every plot is drawn, the tables sort on a click. Skipped without chromium,
except in CI."""

from __future__ import annotations

import copy
import io

import pytest
from PIL import Image

from loadtest import environment, html, report
from tests.support import in_ci
from tests.support.browser import Browser, find_chromium

from .test_load_html import THRESHOLDS
from .test_load_report import both_engines


@pytest.fixture(scope="module")
def chromium() -> str:
    found = find_chromium()
    if not found:
        if in_ci():
            pytest.fail("chromium is missing (requirements/host-packages.txt; make bootstrap)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return found


@pytest.fixture
def written(tmp_path):
    """A report folder as report.write leaves it, report.html with every section (the
    thresholds, stages and per-minute keys other parts of a run add)."""
    settings, results = both_engines()
    settings["environment"] = environment.describe()
    summary = copy.deepcopy(report.write(tmp_path / "report", settings, results))
    summary["thresholds"] = THRESHOLDS
    stage = {
        "stage": 1,
        "rate_rps": 10.0,
        "duration_seconds": 10.0,
        "requests": 100,
        "achieved_rps": 10.0,
        "latency_seconds": {"p50": 0.01, "p90": 0.01, "p99": 0.01, "p99.9": 0.01, "max": 0.01},
        "errors": 0,
    }
    summary["engines"]["wsgistack"] |= {"stages": [stage], "knee": None}
    summary["engines"]["gunicorn"]["per_minute"] = {
        "minute": [0],
        "throughput_rps": [10.0],
        "p50": [0.02],
        "p99": [0.02],
        "errors": [0],
    }
    figures = report.figures(settings, results)
    page = tmp_path / "report" / "report.html"
    page.write_text(html.render(summary, figures))
    return page, figures


def _rects(page, selector: str) -> list[dict]:
    """The boxes of the elements ``selector`` picks, in CSS pixels of the document."""
    return page.evaluate(
        f"Array.from(document.querySelectorAll({selector!r})).map(e => {{"
        " const r = e.getBoundingClientRect();"
        " return {x: r.x + scrollX, y: r.y + scrollY, width: r.width, height: r.height}; })"
    )


def _click_header(page, table: str, text: str) -> None:
    """Scroll the header ``text`` of ``table`` into view and click its middle."""
    box = page.evaluate(
        f"(() => {{ const th = Array.from(document.querySelectorAll({table + ' thead th'!r}))"
        f".find(h => h.textContent === {text!r}); th.scrollIntoView({{block: 'center'}});"
        " const r = th.getBoundingClientRect();"
        " return {x: r.x + r.width / 2, y: r.y + r.height / 2}; })()"
    )
    page.click(box["x"], box["y"])


def _column(page, table: str, index: int) -> list[str]:
    return page.evaluate(
        f"Array.from(document.querySelectorAll({table + ' tbody tr'!r}))"
        f".map(r => r.cells[{index}].textContent)"
    )


def test_the_report_opens_offline_and_draws_every_plot(chromium, written, tmp_path):
    path, figures = written
    with Browser.launch(tmp_path, chromium) as page:
        page.block_network()
        page.navigate(path.as_uri())
        assert page.requests() == [path.as_uri()]
        assert page.problems() == []
        assert page.evaluate("document.title").startswith("Load test: mixed")

        plots = _rects(page, "figure svg")
        assert len(plots) == len(figures) == 2
        for box in plots:
            assert box["width"] > 300 and box["height"] > 100, box
            shot = Image.open(io.BytesIO(page.screenshot(box))).convert("RGB")
            colours = shot.getcolors(maxcolors=1 << 20)
            background = max(colours)[1]
            inked = sum(n for n, colour in colours if colour != background)
            assert inked > 0.03 * shot.width * shot.height, "a blank plot"
            # The engines' lines are the only colour (axes and text are grey); antialiased,
            # so told by saturation, not the exact tab:blue or tab:orange.
            lines = sum(n for n, colour in colours if max(colour) - min(colour) > 60)
            assert lines > 500, "no line across the plot (only the legend's swatches?)"

        # A click on a header sorts its table; another, the other way.
        requests = "#requests table"
        names = _column(page, requests, 0)  # the scenario's order
        assert names != sorted(names) and names != sorted(names, reverse=True)
        _click_header(page, requests, "request")
        assert _column(page, requests, 0) == sorted(names)
        _click_header(page, requests, "request")
        assert _column(page, requests, 0) == sorted(names, reverse=True)
        # numbers as numbers, "-" last
        _click_header(page, "#engines table", "wsgistack")
        values = _column(page, "#engines table", 1)
        numbers = [float(v.split()[0]) for v in values if v != "-"]
        assert numbers == sorted(numbers) and "-" in values
        assert values[len(numbers) :] == ["-"] * (len(values) - len(numbers))
        assert page.problems() == []
        (tmp_path / "report.png").write_bytes(page.screenshot())  # for a person, on failure


def test_the_browser_sees_failed_loads_console_errors_and_exceptions(chromium, tmp_path):
    """What the report test asserts is absent is caught when present."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        '<!DOCTYPE html><img src="https://example.org/a.png">'
        '<script>console.error("boom"); throw new Error("broken");</script>'
    )
    with Browser.launch(tmp_path, chromium) as page:
        page.block_network()
        page.navigate(bad.as_uri())
        problems = page.problems()
    assert "https://example.org/a.png" in page.requests()
    assert any(p.startswith("failed load: https://example.org/a.png") for p in problems)
    assert "console.error: boom" in problems
    assert any(p.startswith("exception: Error: broken") for p in problems)
