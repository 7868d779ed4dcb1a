"""The report of a load test: report.html, summary.json, report.md and PNG plots, in one
folder.

report.html is the one file a person opens (loadtest.html: settings, tables,
plots inline); summary.json holds everything (seconds, bytes, requests/s) for
machines; report.md is the table for a terminal or a pull request;
throughput.png and latency.png show each engine over its measured time, both
engines on the same axes; a ramp adds stages.png (offered and achieved rate, p99 per
stage, the knee marked) and a soak per_minute.png. Plots use matplotlib's Agg canvas
(no display needed).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from loadtest import analysis, html, target
from loadtest.generators import PERCENTILES, Responses
from loadtest.runner import Round

LABELS = {"wsgistack": "wsgistack", "gunicorn": "gunicorn", target.ENGINE: "target"}
COLORS = {"wsgistack": "tab:blue", "gunicorn": "tab:orange", target.ENGINE: "tab:green"}
# Compared per round, wsgistack / gunicorn: (key, what, True if higher is better).
COMPARED = (
    ("throughput_rps", "throughput", True),
    ("latency_p50_seconds", "latency p50", False),
    ("latency_p99_seconds", "latency p99", False),
    ("server_latency_p99_seconds", "server p99 (histogram)", False),
    ("app_cpu_seconds_per_request", "app CPU per request", False),
    ("app_peak_rss_bytes", "app peak RSS", False),
)
OVERRUN_NOTED = 1.0  # seconds a stage's generators may run past its planned end unremarked


def round_metrics(result: Round) -> dict[str, float | None]:
    """The compared figures of one round (see COMPARED)."""
    client, app = result.client, result.containers.get("app", {})
    cpu = app.get("cpu_seconds")
    return {
        "throughput_rps": client["throughput_rps"],
        "latency_p50_seconds": client["latency_seconds"]["p50"],
        "latency_p99_seconds": client["latency_seconds"]["p99"],
        "server_latency_p99_seconds": result.server.get("latency_p99_seconds"),
        "app_cpu_seconds_per_request": cpu / client["requests"]
        if cpu is not None and client["requests"]
        else None,
        "app_peak_rss_bytes": app.get("peak_rss_bytes"),
    }


def engine_summary(rounds: list[Round], p99_limit_seconds: float | None = None) -> dict:
    """One engine over all its rounds: counts add up; client latency percentiles are over
    every answered request of every round; the server's p99 is the median of the rounds';
    CPU seconds add up, peak RSS is the largest. ``server`` is None when the rounds have
    no server side (a TARGET outside the stack)."""
    client_rounds = [r.client for r in rounds]
    requests = sum(c["requests"] for c in client_rounds)
    duration = sum(c["duration_seconds"] for c in client_rounds)
    errors: dict[str, int] = {}
    for c in client_rounds:
        for kind, n in c["errors"].items():
            errors[kind] = errors.get(kind, 0) + n
    merged = Responses.concat([r.responses for r in rounds])
    ok = merged.status > 0
    client = {
        "requests": requests,
        "offered": sum(c["offered"] for c in client_rounds)
        if rounds[0].plan.mode == "open"
        else None,
        "errors": errors,
        "errors_total": sum(errors.values()),
        "duration_seconds": duration,
        "throughput_rps": requests / duration if duration else None,
        "latency_seconds": analysis.latency_summary(merged.latency[ok]),
        "by_request": {
            name: {
                "requests": sum(c["by_request"][name]["requests"] for c in client_rounds),
                "errors": sum(c["by_request"][name]["errors"] for c in client_rounds),
                "latency_seconds": analysis.latency_summary(
                    merged.latency[ok & (merged.kind == i)]
                ),
            }
            for i, name in enumerate(client_rounds[0]["by_request"])
        },
    }
    servers = [r.server for r in rounds]
    return {
        "client": client,
        "server": _server_summary(servers, duration) if all(servers) else None,
        **_containers_summary(rounds, requests),
        "rounds": [
            {
                "round": r.index,
                "folder": str(r.folder),
                "client": r.client,
                "server": r.server or None,
                "containers": r.containers,
                "metrics": round_metrics(r),
            }
            for r in rounds
        ],
    } | stage_results(rounds, p99_limit_seconds)


def _server_summary(servers: list[dict], duration: float) -> dict:
    """The rounds' server sides together (see engine_summary)."""
    server_requests = sum(s["requests"] for s in servers)
    all_counted = sum(sum(s["by_status"].values()) for s in servers)
    counted_5xx = sum(
        n for s in servers for key, n in s["by_status"].items() if key.split()[-1].startswith("5")
    )
    restarts = [s["worker_restarts"] for s in servers if s["worker_restarts"] is not None]
    return {
        "requests": server_requests,
        "request_rate_rps": server_requests / duration if duration else None,
        "ratio_5xx": counted_5xx / all_counted if all_counted else None,
        "latency_p99_seconds": analysis.spread([s["latency_p99_seconds"] for s in servers])[
            "median"
        ],
        "worker_restarts": sum(restarts) if restarts else None,
    }


def _containers_summary(rounds: list[Round], requests: int) -> dict:
    """Docker's stats of the rounds together, and the app's CPU per request."""
    containers: dict[str, dict] = {}
    for service in sorted({service for r in rounds for service in r.containers}):
        usages = [r.containers.get(service) for r in rounds]
        cpu = [u["cpu_seconds"] if u else None for u in usages]
        containers[service] = {  # CPU only when every round has it
            "cpu_seconds": None if None in cpu else sum(cpu),
            "peak_rss_bytes": max(u["peak_rss_bytes"] for u in usages if u),
        }
    app_cpu = containers.get("app", {}).get("cpu_seconds")
    return {
        "containers": containers,
        "app_cpu_seconds_per_request": app_cpu / requests if app_cpu and requests else None,
    }


def stage_results(rounds: list[Round], p99_limit_seconds: float | None) -> dict:
    """A ramp's ``stages`` (analysis.stage_summary of each, in order; a ramp runs in one
    round) and its ``knee`` (analysis.knee, with the scenario's p(99) threshold in
    seconds, if any); {} for a scenario without stages."""
    stages = [analysis.stage_summary(run) for r in rounds for run in r.totals.get("stages", [])]
    if not stages:
        return {}
    return {"stages": stages, "knee": analysis.knee(stages, p99_limit_seconds)}


def minute_series(result: Round) -> dict[str, list]:
    """A soak round's per-minute series (analysis.per_minute) over its whole planned minutes,
    from its first request sent."""
    responses = result.responses
    t0 = float((responses.end - responses.latency).min()) if len(responses) else 0.0
    return analysis.per_minute(responses, t0, int(result.plan.duration // 60))


def comparison(results: list[Round], first: str, second: str) -> dict:
    """Per-round ratios first / second of every COMPARED figure: median, min, max, rounds."""
    by_round: dict[int, dict[str, Round]] = {}
    for r in results:
        by_round.setdefault(r.index, {})[r.engine] = r
    pairs = [(p[first], p[second]) for _, p in sorted(by_round.items()) if len(p) == 2]
    out = {}
    for key, _, _ in COMPARED:
        ratios = [analysis.ratio(round_metrics(a)[key], round_metrics(b)[key]) for a, b in pairs]
        out[key] = {**analysis.spread(ratios), "per_round": ratios}
    return out


def verdict(settings: dict, compared: dict) -> str:
    """One sentence per key figure: which engine is better, by how much, and how sure."""
    first, second = (LABELS[e] for e in settings["engines"])
    keys = ["throughput_rps"] if settings["mode"] == "closed" else []
    keys += ["latency_p50_seconds", "latency_p99_seconds", "app_cpu_seconds_per_request"]
    lines = []
    for key in keys:
        what, higher_better = next((w, h) for k, w, h in COMPARED if k == key)
        s = compared[key]
        if s["median"] is None:
            continue
        better = (s["median"] > 1) == higher_better
        if s["min"] < 1 < s["max"]:
            judgement = "no consistent difference"
        else:
            judgement = f"**{first if better else second}** is better in every round"
        lines.append(
            f"- {what}: {first} is {s['median']:.2f}x {second} "
            f"(median of {s['rounds']} rounds, range {s['min']:.2f}-{s['max']:.2f}): {judgement}"
        )
    return "\n".join(lines)


# -- the table -------------------------------------------------------------------


def _ms(seconds: float | None) -> str:
    """Milliseconds to three significant digits, without an exponent."""
    if seconds is None:
        return "-"
    ms = seconds * 1000
    return f"{ms:.0f}" if ms >= 100 else f"{ms:.3g}"


def _num(value: float | int | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}"


def _mib(value: int | None) -> str:
    return "-" if value is None else f"{value / 2**20:.1f}"


def _errors(client: dict) -> str:
    kinds = ", ".join(f"{k} {n}" for k, n in client["errors"].items() if n)
    return f"{client['errors_total']}" + (f" ({kinds})" if kinds else "")


def _limits(limits: dict[str, str]) -> str:
    """nginx's per-client limits in words, from RATE_LIMIT, RATE_LIMIT_BURST, CONN_LIMIT."""
    return (
        f"{limits.get('RATE_LIMIT', '?')} (burst {limits.get('RATE_LIMIT_BURST', '?')}), "
        f"{limits.get('CONN_LIMIT', '?')} requests in progress"
    )


def _where(settings: dict) -> str:
    """Where the load went: the stack's nginx and its limits, or a TARGET outside it."""
    if not settings.get("target_local", True):
        verified = {True: ", its TLS certificate verified", False: ", TLS not verified"}
        return (
            f"against {settings['target']}{verified.get(settings.get('tls_verified'), '')}, "
            "outside the stack: client figures only (no Prometheus cross-check, no Docker stats "
            "of the server)"
        )
    return (
        f"through nginx ({settings['target']}) on compose project `{settings['stack']}`, "
        f"its per-client limits for the run: {_limits(settings['proxy_limits'])}"
    )


SERVICES = ("app", "proxy", "prometheus", "nginx-exporter", "loadgen")


def table_rows(engine: dict) -> list[tuple[str, str, str | None]]:
    """(row label, value, COMPARED key or None) for one engine's summary; the same rows
    for every engine ("-" where a figure is missing)."""
    client, containers = engine["client"], engine["containers"]
    server = engine["server"] or dict.fromkeys(
        ("requests", "request_rate_rps", "ratio_5xx", "latency_p99_seconds", "worker_restarts")
    )
    latency = client["latency_seconds"]
    rows = [
        ("requests answered (client)", str(client["requests"]), None),
        ("errors (client)", _errors(client), None),
        ("throughput, req/s", _num(client["throughput_rps"]), "throughput_rps"),
    ]
    for key in [*PERCENTILES, "max"]:
        compared = {"p50": "latency_p50_seconds", "p99": "latency_p99_seconds"}.get(key)
        rows.append((f"latency {key}, ms", _ms(latency[key]), compared))
    rows += [
        ("requests counted by the server (Prometheus)", _num(server["requests"]), None),
        ("server request rate, req/s", _num(server["request_rate_rps"]), None),
        ("server 5xx ratio", _num(server["ratio_5xx"], 4), None),
        (
            "server p99 (histogram), ms",
            _ms(server["latency_p99_seconds"]),
            "server_latency_p99_seconds",
        ),
        ("worker restarts", _num(server["worker_restarts"]), None),
        (
            "app CPU per request, ms",
            _ms(engine["app_cpu_seconds_per_request"]),
            "app_cpu_seconds_per_request",
        ),
    ]
    for service in SERVICES:
        usage = containers.get(service, {"cpu_seconds": None, "peak_rss_bytes": None})
        rows.append((f"{service} CPU, s", _num(usage["cpu_seconds"], 2), None))
        rows.append(
            (
                f"{service} peak RSS, MiB",
                _mib(usage["peak_rss_bytes"]),
                "app_peak_rss_bytes" if service == "app" else None,
            )
        )
    return rows


def threshold_lines(outcome: dict) -> list[str]:
    """report.md's Thresholds section: the outcome, then every check (``outcome``:
    summary["thresholds"], from thresholds.evaluate); none without thresholds."""
    if outcome["passed"] is None:
        return []
    checks = outcome["checks"]
    failed = sum(not c["passed"] for c in checks)
    if not failed:
        result = f"**Passed**: all {len(checks)} checks."
    elif outcome["enforced"]:
        result = f"**Failed**: {failed} of {len(checks)} checks (`make load` exits 99)."
    else:
        result = (
            f"**Failed**: {failed} of {len(checks)} checks, not enforced "
            "(`FAIL_ON_THRESHOLD=0`: `make load` exits 0)."
        )
    lines = ["## Thresholds", "", result, ""]
    if not outcome["cross_checked"]:
        lines += ["Prometheus cross-checks skipped: the target is not the local stack.", ""]
    lines += ["| engine | threshold | source | result | observed |", "|---|---|---|---|---|"]
    for c in checks:
        lines.append(
            f"| {c['engine']} | `{c['metric']}` `{c['expression']}` | "
            f"{'Prometheus' if c['source'] == 'prometheus' else 'client'} | "
            f"{'passed' if c['passed'] else '**failed**'} | {c['message']} |"
        )
    return [*lines, ""]


SOURCES = (
    "Client figures are the generator's; server figures come from Prometheus "
    "(the app's request counter and duration histogram between a scrape just before "
    "each round and the first one after it, without the probe routes /healthz and "
    "/readyz); CPU and RSS from Docker's stats."
)


def notes(settings: dict, engines: dict) -> list[tuple[str, str]]:
    """What the reader must know before trusting the figures, per engine and round:
    (headline, details) of each count mismatch, 429s from nginx, failed generator, round
    cut at the time limit, and generator that fell behind its rate."""
    found = []
    for n in settings["engines"]:
        for r in engines[n]["rounds"]:
            where = f"({n}, round {r['round']})"
            check = r["server"]
            if (
                check
                and abs(check["client_requests"] - check["requests"]) > check["count_tolerance"]
            ):
                found.append(
                    (
                        "Count mismatch",
                        f"{where}: the client got {check['client_requests']} answers, "
                        f"the server counted {check['requests']}.",
                    )
                )
            limited = r["client"]["errors"].get("http_429", 0)
            if limited:
                found.append(
                    (
                        f"nginx refused {limited} requests with 429",
                        f"{where}: the generator, one client address, went past the "
                        "per-client limits above (LOAD_RATE_LIMIT, LOAD_RATE_LIMIT_BURST, "
                        "LOAD_CONN_LIMIT raise them); these requests never reached the app.",
                    )
                )
            for process, message in r["client"]["generator_messages"].items():
                found.append((f"{process} failed", f"{where}: {message}"))
            if r["client"]["timed_out"]:
                found.append(("Cut at the time limit", f"{where}."))
            send = r["client"].get("send_seconds")
            if send is not None and send > settings["round_seconds"] * 1.05 + 1:
                found.append(
                    (
                        "The generator fell behind the rate",
                        f"{where}: it took {send:.1f} s to send what was planned for "
                        f"{settings['round_seconds']:g} s, so latency percentiles understate "
                        "the wait (coordinated omission).",
                    )
                )
    return found


def markdown(settings: dict, engines: dict, compared: dict | None, outcome: dict) -> str:
    """report.md: what ran, the thresholds' outcome (summary["thresholds"]), the verdict
    (two engines), the table, the plots."""
    names = settings["engines"]
    if settings.get("stages"):
        steps = ", ".join(
            f"{s['rate_rps']:g} req/s for {s['duration_seconds']:g} s" for s in settings["stages"]
        )
        how = (
            f"open loop in {len(settings['stages'])} stages, {steps} (h2load, "
            f"{settings['protocol']}, {settings['connections']} connections)"
        )
    elif settings["mode"] == "open":
        how = (
            f"open loop at {settings['rate_rps']:g} req/s (h2load, {settings['protocol']}, "
            f"{settings['connections']} connections)"
        )
    else:
        how = f"closed loop (wrk, HTTP/1.1, {settings['connections']} connections)"
    lines = [
        f"# Load test: {settings['scenario']} ({settings['started']})",
        "",
        f"{settings['description']}",
        "",
        f"{how}, {settings['duration_seconds']:g} s per engine in {settings['rounds']} "
        f"round(s) of {settings['round_seconds']:g} s"
        + (", interleaved" if len(names) > 1 and settings["rounds"] > 1 else "")
        + f"; {_where(settings)}.",
        "",
    ]
    lines += threshold_lines(outcome)
    if compared is not None:
        lines += ["## Verdict", "", verdict(settings, compared), ""]
    header = "| | " + " | ".join(LABELS[n] for n in names)
    rule = "|---|" + "---:|" * len(names)
    if compared is not None:
        header += f" | {LABELS[names[0]]} / {names[1]}, median [min-max] of rounds"
        rule += "---:|"
    lines += [header + " |", rule]
    rows = [table_rows(engines[n]) for n in names]
    for i, (label, _, key) in enumerate(rows[0]):
        cells = [row[i][1] for row in rows]
        if compared is not None:
            s = compared.get(key) if key else None
            cells.append(
                f"{s['median']:.2f} [{s['min']:.2f}-{s['max']:.2f}]"
                if s and s["median"] is not None
                else ""
            )
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    if len(engines[names[0]]["client"]["by_request"]) > 1:
        lines += ["", "### Per request (client latency, ms)", ""]
        lines.append(
            "| request | "
            + " | ".join(f"{LABELS[n]} p50 | {LABELS[n]} p99" for n in names)
            + " | requests |"
        )
        lines.append("|---|" + "---:|---:|" * len(names) + "---:|")
        for request in engines[names[0]]["client"]["by_request"]:
            cells = []
            for n in names:
                entry = engines[n]["client"]["by_request"][request]["latency_seconds"]
                cells += [_ms(entry["p50"]), _ms(entry["p99"])]
            count = engines[names[0]]["client"]["by_request"][request]["requests"]
            lines.append(f"| {request} | " + " | ".join(cells) + f" | {count} |")
    if "stages" in engines[names[0]]:
        lines += stages_markdown(names, engines)
    if "per_minute" in engines[names[0]]:
        lines += per_minute_markdown(names, engines)
    lines += [
        "",
        "![throughput](throughput.png)",
        "",
        "![latency](latency.png)",
        "",
        SOURCES,
    ]
    lines += [f"\n**{title}** {text}" for title, text in notes(settings, engines)]
    return "\n".join(lines) + "\n"


def stages_markdown(names: list[str], engines: dict) -> list[str]:
    """report.md's lines on a ramp: per stage the offered rate and each engine's achieved
    rate, p99 and errors, the knee marked; and the stages that ran past their end."""
    header = "| stage | offered, req/s | duration, s |"
    rule = "|---:|---:|---:|"
    for n in names:
        header += f" {LABELS[n]} achieved, req/s | {LABELS[n]} p99, ms | {LABELS[n]} errors |"
        rule += "---:|---:|---:|"
    lines = ["", "### Stages", "", header, rule]
    knees = {n: engines[n]["knee"] for n in names}
    for i, stage in enumerate(engines[names[0]]["stages"]):
        at_knee = [LABELS[n] for n in names if knees[n] and knees[n]["stage"] == stage["stage"]]
        label = f"{stage['stage']}" + (f" **knee** ({', '.join(at_knee)})" if at_knee else "")
        cells = [label, f"{stage['rate_rps']:g}", f"{stage['duration_seconds']:g}"]
        for n in names:
            ours = engines[n]["stages"][i]
            cells += [
                _num(ours["achieved_rps"]),
                _ms(ours["latency_seconds"]["p99"]),
                str(ours["errors"]),
            ]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    for n in names:
        knee = knees[n]
        lines.append(
            f"- knee, {LABELS[n]}: "
            + (
                f"stage {knee['stage']}, {knee['reason']}"
                if knee
                else f"none: every stage achieved its offered rate within "
                f"{analysis.KNEE_SHORTFALL:.0%}"
            )
        )
    for n in names:
        stages = engines[n]["stages"]
        for i, stage in enumerate(stages):
            if stage["started"] is None or stage["finished"] is None:
                continue
            late = stage["finished"] - stage["started"] - stage["duration_seconds"]
            if late > OVERRUN_NOTED:
                beside = (
                    f" while stage {i + 2} ran, adding to its load (stage {i + 2} started on "
                    "schedule all the same)"
                    if i + 1 < len(stages)
                    else ""
                )
                lines.append(
                    f"\n**Stage {stage['stage']} ran {late:.1f} s past its planned end** "
                    f"({LABELS[n]}): its requests were still being sent or answered{beside}."
                )
    return lines + ["", "![stages](stages.png)"]


def per_minute_markdown(names: list[str], engines: dict) -> list[str]:
    """report.md's per-minute table of a soak: throughput, p50, p99, errors per engine."""
    header, rule = "| minute |", "|---:|"
    for n in names:
        header += f" {LABELS[n]} req/s | {LABELS[n]} p50, ms | {LABELS[n]} p99, ms |"
        header += f" {LABELS[n]} errors |"
        rule += "---:|---:|---:|---:|"
    lines = ["", "### Per minute (soak)", "", header, rule]
    for m in engines[names[0]]["per_minute"]["minute"]:
        cells = [str(m)]
        for n in names:
            series = engines[n]["per_minute"]
            if m >= len(series["minute"]):
                cells += ["-"] * 4
                continue
            cells += [
                _num(series["throughput_rps"][m]),
                _ms(series["p50"][m]),
                _ms(series["p99"][m]),
                str(series["errors"][m]),
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines + ["", "![per minute](per_minute.png)"]


# -- the plots -------------------------------------------------------------------


def _joined(results: list[Round], engine: str, key: str, length: int) -> np.ndarray:
    """The engine's per-second ``key`` over its rounds in order, each padded to ``length``."""
    values = []
    for r in sorted((r for r in results if r.engine == engine), key=lambda r: r.index):
        series = [math.nan if v is None else v for v in r.series.get(key, [])][:length]
        values += series + [math.nan] * (length - len(series))
    return np.array(values, dtype=float)


def figures(settings: dict, results: list[Round]) -> dict[str, Figure]:
    """throughput.png and latency.png: per-second series of each engine, rounds end to end
    (dotted lines mark the round boundaries), the engines on the same axes."""
    length = max((len(r.series.get("t", [])) for r in results), default=1) or 1
    names = settings["engines"]
    boundaries = [length * k for k in range(1, settings["rounds"])]
    title = f"{settings['scenario']}: "
    throughput = Figure(figsize=(10, 4.5), dpi=100, layout="constrained")
    ax = throughput.add_subplot()
    for n in names:
        y = _joined(results, n, "throughput", length)
        ax.plot(np.arange(len(y)), y, color=COLORS[n], label=LABELS[n], linewidth=1.2)
    ax.set(
        title=title + "throughput (responses per second, client side)",
        xlabel="seconds of load (rounds end to end)",
        ylabel="responses / s",
    )
    ax.set_ylim(bottom=0)
    latency = Figure(figsize=(10, 4.5), dpi=100, layout="constrained")
    bx = latency.add_subplot()
    for n in names:
        for key, style in (("p50", "-"), ("p99", "--")):
            y = _joined(results, n, key, length) * 1000
            mask = ~np.isnan(y)
            bx.plot(
                np.arange(len(y))[mask],
                y[mask],
                style,
                color=COLORS[n],
                label=f"{LABELS[n]} {key}",
                linewidth=1.2,
            )
    bx.set(
        title=title + "latency per second (client side: p50 solid, p99 dashed)",
        xlabel="seconds of load (rounds end to end)",
        ylabel="ms (log scale)",
        yscale="log",
    )
    for axis in (ax, bx):
        for x in boundaries:
            axis.axvline(x, color="grey", linestyle=":", linewidth=0.8)
        axis.grid(True, alpha=0.3)
        axis.legend(loc="upper right", fontsize="small")
    out = {"throughput.png": throughput, "latency.png": latency}
    limit = settings.get("p99_limit_seconds")
    staged = {n: stage_results([r for r in results if r.engine == n], limit) for n in names}
    if all(staged.values()):
        out["stages.png"] = stages_figure(settings, staged)
    if settings.get("soak"):
        minutes = {n: minute_series(next(r for r in results if r.engine == n)) for n in names}
        out["per_minute.png"] = per_minute_figure(settings, minutes)
    return out


def stages_figure(settings: dict, staged: dict[str, dict]) -> Figure:
    """stages.png: per stage the offered rate and each engine's achieved rate (top) and
    p99 (bottom, log scale); a dashed line at each engine's knee."""
    figure = Figure(figsize=(10, 6), dpi=100, layout="constrained")
    ax, bx = figure.subplots(2, 1, sharex=True)
    first = next(iter(staged.values()))["stages"]
    x = [s["stage"] for s in first]
    ax.plot(x, [s["rate_rps"] for s in first], "k--", marker="s", label="offered")
    for n, results in staged.items():
        stages = results["stages"]
        ax.plot(
            x,
            [s["achieved_rps"] for s in stages],
            marker="o",
            color=COLORS[n],
            label=f"{LABELS[n]} achieved",
        )
        p99 = np.array([_nan(s["latency_seconds"]["p99"]) for s in stages]) * 1000
        mask = ~np.isnan(p99)
        bx.plot(np.array(x)[mask], p99[mask], marker="o", color=COLORS[n], label=f"{LABELS[n]} p99")
        knee = results["knee"]
        if knee:
            for axis, label in ((ax, f"{LABELS[n]} knee: stage {knee['stage']}"), (bx, "_knee")):
                axis.axvline(knee["stage"], color=COLORS[n], linestyle="--", label=label)
    ax.set(
        title=f"{settings['scenario']}: offered and achieved rate per stage (client side)",
        ylabel="requests / s",
    )
    ax.set_ylim(bottom=0)
    bx.set(
        title="latency p99 per stage",
        xlabel="stage (offered req/s)",
        ylabel="ms (log scale)",
        yscale="log",
    )
    bx.set_xticks(x, [f"{s['stage']}\n{s['rate_rps']:g}/s" for s in first])
    for axis in (ax, bx):
        axis.grid(True, alpha=0.3)
        axis.legend(loc="upper left", fontsize="small")
    return figure


def per_minute_figure(settings: dict, minutes: dict[str, dict]) -> Figure:
    """per_minute.png: a soak's answers per second (top) and p50/p99 latency (bottom, log
    scale) per minute, each engine's."""
    figure = Figure(figsize=(10, 6), dpi=100, layout="constrained")
    ax, bx = figure.subplots(2, 1, sharex=True)
    for n, series in minutes.items():
        ax.plot(
            series["minute"], series["throughput_rps"], marker=".", color=COLORS[n], label=LABELS[n]
        )
        for key, style in (("p50", "-"), ("p99", "--")):
            y = np.array([_nan(v) for v in series[key]]) * 1000
            mask = ~np.isnan(y)
            bx.plot(
                np.array(series["minute"])[mask],
                y[mask],
                style,
                marker=".",
                color=COLORS[n],
                label=f"{LABELS[n]} {key}",
            )
    ax.set(
        title=f"{settings['scenario']}: answers per second, per minute of the soak (client side)",
        ylabel="responses / s",
    )
    top = max((max(s["throughput_rps"], default=0) for s in minutes.values()), default=0)
    ax.set_ylim(0, 1.15 * top or 1)  # room above a flat line
    bx.xaxis.set_major_locator(MaxNLocator(integer=True))
    bx.set(
        title="latency per minute (p50 solid, p99 dashed)",
        xlabel="minute of load",
        ylabel="ms (log scale)",
        yscale="log",
    )
    for axis in (ax, bx):
        axis.grid(True, alpha=0.3)
        axis.legend(loc="upper right", fontsize="small")
    return figure


def _nan(value: float | None) -> float:
    return math.nan if value is None else value


def plotted_series(figure: Figure) -> dict[str, int]:
    """{label: number of points} of every labelled line on the figure's axes."""
    return {
        line.get_label(): len(line.get_xdata())
        for axis in figure.axes
        for line in axis.get_lines()
        if not line.get_label().startswith("_")
    }


def write(folder: Path, settings: dict, results: list[Round], outcome: dict | None = None) -> dict:
    """Write report.html, summary.json, report.md, throughput.png and latency.png into
    ``folder``; returns the summary. ``outcome``: the thresholds' (thresholds.evaluate);
    None when they were not evaluated, which summary["thresholds"] records as no
    thresholds."""
    folder.mkdir(parents=True, exist_ok=True)
    names = settings["engines"]
    limit = settings.get("p99_limit_seconds")
    engines = {n: engine_summary([r for r in results if r.engine == n], limit) for n in names}
    compared = comparison(results, names[0], names[1]) if len(names) == 2 else None
    if settings.get("soak"):
        for n in names:
            engines[n]["per_minute"] = minute_series(next(r for r in results if r.engine == n))
    if outcome is None:
        outcome = {"enforced": False, "passed": None, "checks": []}
    summary = {"settings": settings, "thresholds": outcome, "engines": engines, "plots": {}}
    if compared is not None:
        summary["comparison"] = {f"{names[0]}/{names[1]}": compared}
    drawn = figures(settings, results)
    for name, figure in drawn.items():
        figure.savefig(folder / name)
        summary["plots"][name] = {"series": plotted_series(figure)}
    (folder / "summary.json").write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n")
    (folder / "report.md").write_text(markdown(settings, engines, compared, outcome))
    (folder / "report.html").write_text(html.render(summary, drawn))
    return summary
