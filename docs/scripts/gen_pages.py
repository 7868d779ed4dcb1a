"""The documentation pages written from the code and the data: the server's settings,
its metrics, and the published benchmark run.

An mkdocs hook (``hooks:`` in mkdocs.yml), so ``mkdocs build`` alone writes them:
``on_files`` adds them to the site as generated pages, never as files in docs/.

- ``server-reference.md``: every setting of ``wsgistack.config.SETTINGS`` (flags,
  environment variables, config-file name, default, meaning) and the command line's
  other options, read from the server's own argument parser.
- ``metrics.md``: every instrument of ``wsgistack.metrics.instruments``, read in a
  subprocess (importing the module installs the server's metrics-file identities in
  prometheus-client, which the mkdocs process must not get), with
  ``PROMETHEUS_MULTIPROC_DIR`` unset so no metrics file is written.
- ``benchmark-results.md``: the published ``make bench`` run, ``docs/benchmark/results.json``
  (a ``reports/bench-<time>/results.json``), rendered by ``loadtest.bench.table``:
  the same text ``make bench`` printed, under the run's date, commit and machine.

``python docs/scripts/gen_pages.py OUTDIR`` writes the pages to OUTDIR, to read them.
The tests in tests/manifests/docs/ import this module.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVER_SRC = ROOT / "server" / "src"
SCRIPT = "docs/scripts/gen_pages.py"

SERVER_REFERENCE = "server-reference.md"
METRICS = "metrics.md"
BENCHMARK_RESULTS = "benchmark-results.md"
BENCHMARK_JSON = ROOT / "docs" / "benchmark" / "results.json"


def _cell(text: str) -> str:
    """Text for a Markdown table cell: pipes and emphasis markers escaped."""
    return " ".join(text.split()).replace("|", r"\|").replace("*", r"\*").replace("<", "&lt;")


def _help(text: str) -> str:
    return _cell(text.strip().rstrip(".").strip())


def _config_module():
    if str(SERVER_SRC) not in sys.path:
        sys.path.insert(0, str(SERVER_SRC))
    from wsgistack import config

    return config


def _invocation(flags: tuple[str, ...], metavar: str | None) -> str:
    """``-b``, ``--bind ADDRESS``: the metavar once, after the last flag."""
    shown = [f"`{flag}`" for flag in flags[:-1]]
    shown.append(f"`{flags[-1]} {metavar}`" if metavar else f"`{flags[-1]}`")
    return ", ".join(shown)


# The reference pages: no table of contents beside them (their tables want the
# width), and names in their tables stay on one line (docs/assets/extra.css).
_WIDE = ["---", "hide:", "  - toc", "---", ""]
_TABLE_START = '<div class="reference" markdown>'
_TABLE_END = "</div>"


def server_reference() -> str:
    """The Server reference page (Markdown), from ``wsgistack.config``."""
    config = _config_module()
    lines = [
        *_WIDE,
        "# Server reference",
        "",
        '!!! note "Generated"',
        f"    Generated from `server/src/wsgistack/config.py` by `{SCRIPT}` when the site "
        "is built; do not edit. A setting is added or changed in the settings table "
        "(`SETTINGS`), which `wsgistack --help` reads too.",
        "",
        "`wsgistack [options] APP_MODULE` (or `python -m wsgistack`). Each setting is read "
        "from, highest first: its flag, its environment variable, a Python config file "
        "given with `-c` (or `"
        + config.ENV_PREFIX
        + "CONFIG`) whose top-level names are settings (`workers = 4`), and the default. "
        "[Server behaviour](server.md) says how the settings act together.",
        "",
        "## Settings",
        "",
        _TABLE_START,
        "",
        "| flag | environment variable<br>config-file name | default | meaning |",
        "|---|---|---|---|",
    ]
    for setting in config.SETTINGS:
        if setting.flags:
            flags = _invocation(setting.flags, None if setting.switch else setting.metavar)
            if setting.repeatable:
                flags += " (repeatable)"
        else:
            flags = f"`{setting.metavar}` (positional)"
        env = ", ".join(f"`{name}`" for name in setting.env)
        shown = setting.describe_default()
        default = f"`{shown}`" if shown else "none: required"
        names = f"{env}<br>file: `{setting.name}`"
        lines.append(f"| {flags} | {names} | {default} | {_help(setting.help)} |")
    lines += [
        "",
        _TABLE_END,
        "",
        "## Other options",
        "",
        _TABLE_START,
        "",
        "| flag | environment | meaning |",
        "|---|---|---|",
    ]
    in_table = {flag for setting in config.SETTINGS for flag in setting.flags}
    for action in config._parser()._actions:
        if not action.option_strings or set(action.option_strings) & in_table:
            continue
        metavar = action.metavar if action.nargs != 0 else None
        env = f"`{config.ENV_PREFIX}CONFIG`" if action.dest == "config" else ""
        lines.append(
            f"| {_invocation(tuple(action.option_strings), metavar)} | {env} "
            f"| {_help(action.help or '')} |"
        )
    lines += [
        "",
        _TABLE_END,
        "",
        "A bad value, an unknown flag or a flag missing its value exits with status 2 and "
        "one line naming the setting; `--check-config` exits 0 once the app imports, "
        "1 if it does not.",
        "",
    ]
    return "\n".join(lines)


# Run with PROMETHEUS_MULTIPROC_DIR unset: every instrument, as JSON.
_READ_INSTRUMENTS = """
import json
from prometheus_client.metrics import MetricWrapperBase
from wsgistack.metrics import instruments

found = []
for obj in vars(instruments).values():
    if isinstance(obj, MetricWrapperBase):
        found.append({
            "name": obj._name,
            "type": obj._type,
            "labels": list(obj._labelnames),
            "help": obj._documentation,
            "buckets": [b for b in getattr(obj, "_upper_bounds", []) if b != float("inf")],
            "multiprocess_mode": getattr(obj, "_multiprocess_mode", None),
        })
print(json.dumps(found))
"""


def instruments() -> list[dict]:
    """The server's Prometheus instruments: name, type, labels, help, buckets."""
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SERVER_SRC), env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-c", _READ_INSTRUMENTS],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"reading wsgistack.metrics.instruments failed:\n{result.stderr}")
    return json.loads(result.stdout)


def exported_name(instrument: dict) -> str:
    """The family name as the exporter serves it: counters get ``_total``."""
    return instrument["name"] + ("_total" if instrument["type"] == "counter" else "")


def _seconds(value: float) -> str:
    return f"{value * 1000:g} ms" if value < 1 else f"{value:g} s"


_GAUGE_MODES = {
    "livesum": "summed over the live processes",
    "livemax": "the largest value of the live processes",
    "liveall": "one series per live process",
    "all": "one series per process",
    "sum": "summed over every process",
    "max": "the largest value of every process",
    "min": "the smallest value of every process",
}


def metrics_reference() -> str:
    """The Metrics page (Markdown), from ``wsgistack.metrics.instruments``."""
    lines = [
        *_WIDE,
        "# Metrics",
        "",
        '!!! note "Generated"',
        "    Generated from `server/src/wsgistack/metrics/instruments.py` by "
        f"`{SCRIPT}` when the site is built; do not edit.",
        "",
        "What the server's exporter serves at `:9100/metrics` (Prometheus job `app`), "
        "every worker of a replica aggregated. [Observability](observability.md) has "
        "nginx's metrics, the recording rules, alerts and the dashboard.",
        "",
        _TABLE_START,
        "",
        "| metric | type | labels | meaning |",
        "|---|---|---|---|",
    ]
    for instrument in instruments():
        labels = ", ".join(f"`{label}`" for label in instrument["labels"]) or "—"
        meaning = _help(instrument["help"])
        if instrument["type"] == "histogram":
            buckets = instrument["buckets"]
            meaning += (
                f"; {len(buckets)} buckets, {_seconds(buckets[0])} … {_seconds(buckets[-1])}; "
                "series `_bucket`, `_sum` and `_count`"
            )
        elif instrument["type"] == "gauge" and instrument["multiprocess_mode"] in _GAUGE_MODES:
            meaning += f"; {_GAUGE_MODES[instrument['multiprocess_mode']]}"
        lines.append(
            f"| `{exported_name(instrument)}` | {instrument['type']} | {labels} | {meaning} |"
        )
    lines += ["", _TABLE_END, ""]
    return "\n".join(lines)


def benchmark_results(path: Path = BENCHMARK_JSON) -> str:
    """The Benchmark results page (Markdown), from a ``make bench`` results.json."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from loadtest.bench import results, table
    from loadtest.bench.settings import Settings

    meta, runs = results.read(path)
    settings = [  # BENCH_PINNED=1, not True
        f"BENCH_{name.upper()}={int(value) if isinstance(value, bool) else value}"
        for name, value in meta["settings"].items()
    ]
    settings += [
        f"BENCH_ENGINES={','.join(meta['engines'])}",
        f"BENCH_SCENARIOS={','.join(meta['scenarios'])}",
    ]
    report = table.render_markdown(meta, runs).partition("\n")[2]  # without its heading
    relative = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    lines = [
        *_WIDE,
        "# Benchmark results",
        "",
        '!!! note "Generated"',
        f"    Generated from `{relative}` by `{SCRIPT}` when the site is built; do not "
        "edit. A run is published by copying its `reports/bench-<time>/results.json` there.",
        "",
        f"The published `make bench` run: started {meta['started']} at commit "
        f"`{meta['commit']}`, {meta['seconds']:g} s in all, as",
        "",
        "```sh",
        " ".join(settings) + " make bench",
        "```",
        "",
    ]
    defaults = Settings()
    ran = meta["settings"]
    if ran["rounds"] < defaults.rounds or ran["duration"] < defaults.duration:
        lines += [
            f"A short run (the defaults are {defaults.rounds} rounds of {defaults.duration} s): "
            "it shows the format; its figures are noisier than a default run's.",
            "",
        ]
    lines += [
        "[Benchmark](benchmark.md) says what runs and how to read the table; only the "
        "ratios mean something beyond this machine and run. What `make bench` printed:",
        "",
        report,
    ]
    return "\n".join(lines)


def pages() -> dict[str, str]:
    """Every generated page: its path under docs/ -> its Markdown."""
    return {
        SERVER_REFERENCE: server_reference(),
        METRICS: metrics_reference(),
        BENCHMARK_RESULTS: benchmark_results(),
    }


# -- mkdocs hooks -----------------------------------------------------------------


def on_config(config):
    """Snippets (the Changelog page) read from the repository root, wherever mkdocs runs."""
    snippets = config.mdx_configs.setdefault("pymdownx.snippets", {})
    snippets["base_path"] = [str(ROOT)]
    return config


def on_files(files, config):
    from mkdocs.structure.files import File

    for src_uri, content in pages().items():
        files.append(File.generated(config, src_uri, content=content))
    return files


def on_serve(server, config, builder):
    """`make docs-serve` rebuilds when the code the pages come from changes."""
    server.watch(str(SERVER_SRC / "wsgistack"))
    server.watch(str(ROOT / "CHANGELOG.md"))
    server.watch(str(ROOT / "loadtest" / "bench"))
    return server


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: python {SCRIPT} OUTDIR")
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for name, text in pages().items():
        (out / name).write_text(text)
        print(out / name)
