"""The host tools (nginx, wrk) and Python packages a run needs, installed or checked,
and the versions it reports."""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from loadtest.bench.engines import Engine
from loadtest.bench.settings import BenchError


@dataclass
class Tools:
    nginx: str
    wrk: str


def find_tool(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin:/sbin")


def install_missing() -> None:
    """apt-get install what is missing of nginx-light and wrk (root on Debian only)."""
    wanted = (("nginx", "nginx-light"), ("wrk", "wrk"))
    missing = [package for tool, package in wanted if not find_tool(tool)]
    if not missing:
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return  # check_setup() then says what is missing
    print(f"bench: installing {' '.join(missing)} (apt-get)", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    apt = ["apt-get", "-o", "DPkg::Lock::Timeout=300", "-qq"]  # others may hold the lock
    install = [*apt, "install", "-y", "--no-install-recommends", *missing]
    if subprocess.run(install, env=env, stdout=subprocess.DEVNULL).returncode != 0:
        subprocess.run([*apt, "update"], env=env, check=False)
        subprocess.run(install, env=env, stdout=subprocess.DEVNULL, check=False)


def check_setup(engines: Sequence[Engine]) -> Tools:
    """The tools and Python packages this run needs; BenchError listing what is missing."""
    problems = []
    nginx, wrk = find_tool("nginx"), find_tool("wrk")
    if not nginx or not wrk:
        what = " and ".join(t for t, p in (("nginx", nginx), ("wrk", wrk)) if not p)
        problems.append(
            f"{what} not found: apt-get install nginx-light wrk "
            "(or run `python -m loadtest.bench --install-missing` as root)"
        )
    modules = sorted({e.module for e in engines if e.module} | {"httptools", "prometheus_client"})
    absent = [m for m in modules if importlib.util.find_spec(m) is None]
    if absent:
        problems.append(
            f"Python packages missing in {sys.executable}: {', '.join(absent)} — run "
            "`make bench` (it creates .venv-bench), or: python3 -m venv .venv-bench && "
            ".venv-bench/bin/pip install -r requirements/bench.txt && "
            ".venv-bench/bin/python -m loadtest.bench"
        )
    if not Path("/proc/self/status").exists():
        problems.append("no /proc: this benchmark runs on Linux only")
    if problems:
        raise BenchError("setup incomplete:\n  - " + "\n  - ".join(problems))
    return Tools(nginx=nginx, wrk=wrk)  # type: ignore[arg-type]


def versions(tools: Tools, engines: Sequence[Engine]) -> dict[str, str]:
    """Versions of Python, the engines' distributions, nginx and wrk."""
    found = {"python": sys.version.split()[0]}
    for engine in engines:
        if engine.module:
            with contextlib.suppress(importlib.metadata.PackageNotFoundError):
                found[engine.module] = importlib.metadata.version(engine.module)
    out = subprocess.run([tools.nginx, "-v"], capture_output=True, text=True, timeout=10)
    found["nginx"] = (out.stderr or out.stdout).strip().rpartition("/")[2]
    out = subprocess.run([tools.wrk, "-v"], capture_output=True, text=True, timeout=10)
    match = re.search(r"wrk (\S+)", out.stdout + out.stderr)
    found["wrk"] = match.group(1).rpartition("/")[2] if match else "?"
    return found
