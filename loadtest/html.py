"""report.html: the whole report of a load test in one file that needs no network to view.

The plots are inline SVG (matplotlib's SVG backend, text drawn as paths, so no
font is needed), the style sheet and the script are inline, and a Content
Security Policy (``default-src 'none'``) stops the browser from fetching
anything, should a future change add a link. The script only makes tables
sortable by a click on a header (again: reverse); without JavaScript the
tables read the same, unsorted. Every string from the summary is HTML-escaped.

Sections: the run's settings and the machine (``settings["environment"]``),
thresholds (k6-style checks, a PASSED/FAILED banner), the verdict and the
per-round ratios of two engines, the per-engine table (``report.table_rows``),
per-request latency, status codes and client error kinds, CPU and RSS per
container, stages with their knee and the per-minute series of a soak run
(when the summary has them), the notes report.md lists, and every figure.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from html import escape

from matplotlib.figure import Figure

from loadtest import report
from loadtest.generators import PERCENTILES

POLICY = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'"

STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 1.5em auto; max-width: 72em;
  padding: 0 1em; color: #1b1b1b; background: #fff; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; margin-top: 1.8em; border-bottom: 1px solid #ccc; }
h3 { font-size: 1.05em; }
table { border-collapse: collapse; margin: 0.6em 0; }
th, td { border: 1px solid #d0d0d0; padding: 0.2em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; white-space: nowrap; }
thead th { background: #f0f0f0; }
table.sortable thead th { cursor: pointer; user-select: none; }
table.sortable thead th[aria-sort="ascending"]::after { content: " \\25B2"; }
table.sortable thead th[aria-sort="descending"]::after { content: " \\25BC"; }
table.settings th { text-align: left; font-weight: normal; color: #555; }
table.settings td { text-align: left; }
tr.knee td { background: #fff2cc; }
.banner { font-size: 1.3em; font-weight: bold; padding: 0.5em 0.8em; border-radius: 4px; }
.passed { background: #dff0d8; color: #1e5b1e; }
.failed { background: #f8d7da; color: #7a1620; }
.none { background: #eee; color: #444; }
td.passed, td.failed { font-weight: bold; }
.note { border-left: 4px solid #d9822b; padding: 0.2em 0.8em; background: #fdf5ec; }
figure { margin: 1em 0; }
figure svg { display: block; max-width: 100%; height: auto; }
figcaption { color: #555; font-size: 0.9em; }
"""

# Click a header: sort by that column (numbers as numbers, "-" and empty cells last);
# click again: the other way.
SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  var headers = table.tHead.rows[0].cells;
  Array.prototype.forEach.call(headers, function (header, column) {
    header.tabIndex = 0;
    function sort() {
      var descending = header.getAttribute("aria-sort") === "ascending";
      Array.prototype.forEach.call(headers, function (h) { h.removeAttribute("aria-sort"); });
      header.setAttribute("aria-sort", descending ? "descending" : "ascending");
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      function key(row) {
        var text = row.cells[column].textContent.trim();
        var number = parseFloat(text);
        return text === "" || text === "-" ? null : isNaN(number) ? text : number;
      }
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (x === null || y === null) { return (x === null) - (y === null); }
        if (typeof x !== typeof y) { return typeof x === "number" ? -1 : 1; }
        var order = typeof x === "number" ? x - y : x.localeCompare(y);
        return descending ? -order : order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    }
    header.addEventListener("click", sort);
    header.addEventListener("keydown", function (event) {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); sort(); }
    });
  });
});
"""


def _e(value: object) -> str:
    """``value`` as text, HTML-escaped (quotes too: safe in attributes)."""
    return escape(str(value), quote=True)


def _table(header: list[str], rows: list[list[str]], sortable: bool = True) -> str:
    """A table of escaped text; ``rows``' first cell is the row's label."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    css = ' class="sortable"' if sortable else ""
    return f"<table{css}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _pairs(rows: list[tuple[str, object]]) -> str:
    """A two-column table of settings: name, value."""
    body = "".join(f'<tr><th scope="row">{_e(k)}</th><td>{_e(v)}</td></tr>' for k, v in rows)
    return f'<table class="settings"><tbody>{body}</tbody></table>'


def svg(figure: Figure, prefix: str) -> str:
    """``figure`` as an inline ``<svg>`` element: no XML prolog, DOCTYPE, comments or
    namespace declarations (the HTML parser supplies SVG's), and every id prefixed with
    ``prefix`` so several figures in one page do not share glyphs and clip paths."""
    out = io.StringIO()
    figure.savefig(
        out, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None}
    )
    text = out.getvalue()
    text = text[text.index("<svg") :]
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    text = re.sub(r'\s+xmlns(?::\w+)?="[^"]*"', "", text)
    text = text.replace('id="', f'id="{prefix}').replace('xlink:href="#', f'href="#{prefix}')
    return text.replace("url(#", f"url(#{prefix}").strip()


def _settings(settings: dict) -> str:
    servers = settings.get("wsgi_server", {})  # none for a TARGET outside the stack
    engines = ", ".join(
        f"{n} (WSGI_SERVER={servers[n]})" if n in servers else n for n in settings["engines"]
    )
    if settings["mode"] == "open":
        mode = f"open loop ({settings['generator']}, {settings['protocol']})"
    else:
        mode = f"closed loop ({settings['generator']}, HTTP/1.1)"
    rows: list[tuple[str, object]] = [
        ("scenario", settings["scenario"]),
        ("scenario file", settings["scenario_file"]),
        ("mode", mode),
        (
            "rate, req/s",
            "as fast as answered" if settings["rate_rps"] is None else f"{settings['rate_rps']:g}",
        ),
        ("duration per engine, s", f"{settings['duration_seconds']:g}"),
        ("rounds", f"{settings['rounds']} of {settings['round_seconds']:g} s each"),
        ("connections", settings["connections"]),
        ("engines", engines + (", interleaved" if len(settings["engines"]) > 1 else "")),
        ("target", settings["target"]),
    ]
    if "target_local" in settings:
        rows.append(
            (
                "target is the local stack",
                "yes"
                if settings["target_local"]
                else "no: Prometheus cross-checks and container figures skipped",
            )
        )
    if "proxy_limits" in settings:  # the local stack (not a TARGET outside it)
        rows += [
            ("compose project", settings["stack"]),
            ("nginx per-client limits", report._limits(settings["proxy_limits"])),
        ]
    rows += [
        ("started", settings["started"]),
        ("finished", settings["finished"]),
    ]
    machine = settings.get("environment")
    environment = (
        _pairs(
            [
                ("CPU", machine["cpu_model"]),
                ("CPUs usable", machine["cpus"]),
                ("kernel", machine["kernel"]),
                ("Python", machine["python"]),
            ]
        )
        if machine
        else "<p>Not recorded.</p>"
    )
    return (
        '<section id="settings"><h2>Settings</h2>'
        + _pairs(rows)
        + '</section><section id="environment"><h2>Environment</h2>'
        + environment
        + "</section>"
    )


def _observed(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:.4g} ms" if unit == "ms" else f"{value:.4f}"


def _thresholds(thresholds: dict | None) -> str:
    """The banner (PASSED, FAILED, no thresholds) and a row per check."""
    if not thresholds or thresholds.get("passed") is None:
        return (
            '<section id="thresholds"><h2>Thresholds</h2>'
            '<p class="banner none">no thresholds</p></section>'
        )
    passed = thresholds["passed"]
    banner = "PASSED" if passed else "FAILED"
    if not passed and not thresholds["enforced"]:
        banner += " (not enforced: FAIL_ON_THRESHOLD=0, the run exits 0)"
    rows = "".join(
        "<tr>"
        + "".join(
            f"<td>{_e(c)}</td>"
            for c in (
                check["engine"],
                check["metric"],
                check["expression"],
                check["source"],
                _observed(check["observed"], check["unit"]),
            )
        )
        + ('<td class="passed">pass</td>' if check["passed"] else '<td class="failed">FAIL</td>')
        + f"<td>{_e(check['message'])}</td></tr>"
        for check in thresholds["checks"]
    )
    head = "".join(
        f"<th>{h}</th>"
        for h in ("engine", "metric", "threshold", "source", "observed", "result", "message")
    )
    return (
        '<section id="thresholds"><h2>Thresholds</h2>'
        f'<p class="banner {"passed" if passed else "failed"}">{_e(banner)}</p>'
        f'<table class="sortable"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'
        "</section>"
    )


def _spread(s: dict | None) -> str:
    """median [min-max] of the per-round ratios, as report.md writes it."""
    if not s or s["median"] is None:
        return ""
    return f"{s['median']:.2f} [{s['min']:.2f}-{s['max']:.2f}]"


def _compared(summary: dict) -> dict | None:
    """The per-round ratios of the two engines (report.comparison), None for one engine."""
    names = summary["settings"]["engines"]
    return summary["comparison"][f"{names[0]}/{names[1]}"] if len(names) == 2 else None


def _comparison(summary: dict) -> str:
    """The verdict lines and every round's ratio (two engines only)."""
    settings = summary["settings"]
    names = settings["engines"]
    compared = _compared(summary)
    if compared is None:
        return ""
    lines = report.verdict(settings, compared).splitlines()
    items = "".join(
        "<li>"
        + re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", _e(line.removeprefix("- ")))
        + "</li>"
        for line in lines
    )
    per_round = max((len(s["per_round"]) for s in compared.values()), default=0)
    rows = [
        [what, _spread(compared[key])]
        + ["-" if r is None else f"{r:.2f}" for r in compared[key]["per_round"]]
        for key, what, _ in report.COMPARED
    ]
    first, second = (report.LABELS[n] for n in names)
    return (
        '<section id="verdict"><h2>Verdict</h2>'
        + (f"<ul>{items}</ul>" if items else "<p>No figure to compare.</p>")
        + f"<h3>{_e(first)} / {_e(second)}, round by round</h3>"
        + _table(
            ["figure", "median [min-max]"] + [f"round {k}" for k in range(1, per_round + 1)], rows
        )
        + "</section>"
    )


def _engines(summary: dict) -> str:
    """report.md's table: a column per engine, and the ratio's spread for two."""
    names = summary["settings"]["engines"]
    engines = summary["engines"]
    compared = _compared(summary)
    header = [""] + [report.LABELS[n] for n in names]
    if compared is not None:
        header.append(f"{report.LABELS[names[0]]} / {names[1]}, median [min-max] of rounds")
    columns = [report.table_rows(engines[n]) for n in names]
    rows = []
    for i, (label, _, key) in enumerate(columns[0]):
        row = [label] + [column[i][1] for column in columns]
        if compared is not None:
            row.append(_spread(compared.get(key)) if key else "")
        rows.append(row)
    return '<section id="engines"><h2>Per engine</h2>' + _table(header, rows) + "</section>"


def _requests(summary: dict) -> str:
    """Client latency per request of the scenario, every engine."""
    names = summary["settings"]["engines"]
    engines = summary["engines"]
    header = ["request"]
    for n in names:
        header += [f"{report.LABELS[n]} {h}" for h in ("requests", "errors", "p50 ms", "p99 ms")]
    rows = []
    for request in engines[names[0]]["client"]["by_request"]:
        row = [request]
        for n in names:
            entry = engines[n]["client"]["by_request"][request]
            latency = entry["latency_seconds"]
            row += [
                str(entry["requests"]),
                str(entry["errors"]),
                report._ms(latency["p50"]),
                report._ms(latency["p99"]),
            ]
        rows.append(row)
    return (
        '<section id="requests"><h2>Per request (client latency)</h2>'
        + _table(header, rows)
        + "</section>"
    )


def _statuses(summary: dict) -> str:
    """The server's answers by method and status (Prometheus, every round) and the
    client's errors by kind."""
    names = summary["settings"]["engines"]
    engines = summary["engines"]
    counted: dict[str, dict[str, int]] = {n: {} for n in names}
    for n in names:
        for r in engines[n]["rounds"]:
            for key, count in (r["server"] or {}).get("by_status", {}).items():
                counted[n][key] = counted[n].get(key, 0) + count
    keys = sorted({key for n in names for key in counted[n]})
    labels = [report.LABELS[n] for n in names]
    server = _table(
        ["method and status", *labels],
        [[k] + [str(counted[n].get(k, 0)) for n in names] for k in keys],
    )
    kinds = list(dict.fromkeys(k for n in names for k in engines[n]["client"]["errors"]))
    client = _table(
        ["error kind", *labels],
        [[k] + [str(engines[n]["client"]["errors"].get(k, 0)) for n in names] for k in kinds],
    )
    return (
        '<section id="status"><h2>Status codes</h2>'
        "<h3>Counted by the server (Prometheus)</h3>"
        + (server if keys else "<p>None counted.</p>")
        + "<h3>Client errors by kind</h3>"
        + client
        + "</section>"
    )


def _containers(summary: dict) -> str:
    """CPU seconds and peak RSS of every container, per engine (Docker's stats)."""
    names = summary["settings"]["engines"]
    engines = summary["engines"]
    services = sorted({s for n in names for s in engines[n]["containers"]})
    header = ["container"]
    for n in names:
        header += [f"{report.LABELS[n]} CPU, s", f"{report.LABELS[n]} peak RSS, MiB"]
    rows = []
    for service in services:
        row = [service]
        for n in names:
            usage = engines[n]["containers"].get(service)
            row += (
                [report._num(usage["cpu_seconds"], 2), report._mib(usage["peak_rss_bytes"])]
                if usage
                else ["-", "-"]
            )
        rows.append(row)
    return (
        '<section id="containers"><h2>Server side: CPU and memory per container</h2>'
        + (_table(header, rows) if rows else "<p>Not measured.</p>")
        + "</section>"
    )


def _stages(summary: dict) -> str:
    """Each engine's stages (a ramp), the knee's row marked; empty without stages."""
    parts = []
    for n in summary["settings"]["engines"]:
        engine = summary["engines"][n]
        if not engine.get("stages"):
            continue
        knee = engine.get("knee")
        keys = [*PERCENTILES, "max"]
        head = "".join(
            f"<th>{_e(h)}</th>"
            for h in [
                "stage",
                "rate, req/s",
                "duration, s",
                "requests",
                "achieved, req/s",
                *(f"{k} ms" for k in keys),
                "errors",
            ]
        )
        rows = ""
        for stage in engine["stages"]:
            cells = [
                str(stage["stage"]),
                f"{stage['rate_rps']:g}",
                f"{stage['duration_seconds']:g}",
                str(stage["requests"]),
                report._num(stage["achieved_rps"]),
                *(report._ms(stage["latency_seconds"].get(k)) for k in keys),
                str(stage["errors"]),
            ]
            marked = ' class="knee"' if knee and knee["stage"] == stage["stage"] else ""
            rows += f"<tr{marked}>" + "".join(f"<td>{_e(c)}</td>" for c in cells) + "</tr>"
        said = (
            f"The knee: stage {knee['stage']}, {knee['reason']}."
            if knee
            else "No knee: every stage kept its rate and latency."
        )
        parts.append(
            f"<h3>{_e(report.LABELS[n])}</h3><p>{_e(said)}</p>"
            f'<table class="sortable"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'
        )
    if not parts:
        return ""
    return '<section id="stages"><h2>Stages</h2>' + "".join(parts) + "</section>"


def _per_minute(summary: dict) -> str:
    """Each engine's per-minute series (soak mode); empty without one."""
    parts = []
    for n in summary["settings"]["engines"]:
        series = summary["engines"][n].get("per_minute")
        if not series:
            continue
        rows = [
            [
                str(minute),
                report._num(series["throughput_rps"][i]),
                report._ms(series["p50"][i]),
                report._ms(series["p99"][i]),
                report._num(series["errors"][i]),
            ]
            for i, minute in enumerate(series["minute"])
        ]
        parts.append(
            f"<h3>{_e(report.LABELS[n])}</h3>"
            + _table(["minute", "throughput, req/s", "p50 ms", "p99 ms", "errors"], rows)
        )
    if not parts:
        return ""
    return '<section id="per-minute"><h2>Per minute</h2>' + "".join(parts) + "</section>"


def _notes(summary: dict) -> str:
    found = report.notes(summary["settings"], summary["engines"])
    items = "".join(
        f'<p class="note"><strong>{_e(title)}</strong> {_e(text)}</p>' for title, text in found
    )
    return '<section id="notes"><h2>Notes</h2>' + (items or "<p>None.</p>") + "</section>"


def _figures(figures: Mapping[str, Figure]) -> str:
    parts = [
        f'<figure id="figure-{i}">{svg(figure, f"f{i}-")}<figcaption>{_e(name)}</figcaption>'
        "</figure>"
        for i, (name, figure) in enumerate(figures.items(), 1)
    ]
    return '<section id="plots"><h2>Plots</h2>' + "".join(parts) + "</section>"


def render(summary: dict, figures: Mapping[str, Figure]) -> str:
    """report.html for ``summary`` (what report.write puts in summary.json) and its
    ``figures`` (each drawn as inline SVG, in the order given)."""
    settings = summary["settings"]
    title = f"Load test: {settings['scenario']} ({settings['started']})"
    return "".join(
        [
            "<!DOCTYPE html>\n",
            '<html lang="en"><head><meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{POLICY}">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>",
            f"<h1>{_e(title)}</h1><p>{_e(settings['description'])}</p>",
            _thresholds(summary.get("thresholds")),
            _settings(settings),
            _comparison(summary),
            _engines(summary),
            _requests(summary),
            _statuses(summary),
            _containers(summary),
            _stages(summary),
            _per_minute(summary),
            _notes(summary),
            _figures(figures),
            f"<footer><p>{_e(report.SOURCES)}</p></footer>",
            f"<script>{SCRIPT}</script></body></html>\n",
        ]
    )
