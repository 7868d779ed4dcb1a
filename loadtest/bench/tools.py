"""The host tools (nginx, wrk) and Python packages a run needs, installed or checked,
and the versions it reports. The C servers (bjoern, uWSGI) are built from source: with
``--install-missing`` their build packages first (Debian: a compiler, Python's and
libev's headers), then their pins from requirements/bench-c.txt; one that cannot be
installed is left out of the run, which says so."""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from loadtest.bench.engines import Engine
from loadtest.bench.processes import REPO
from loadtest.bench.settings import BenchError

C_SERVERS = REPO / "requirements" / "bench-c.txt"  # pins of the engines built from source
# what building them needs: {Debian package: whether it is there, from what it installs}
BUILD_PACKAGES = {
    "build-essential": lambda: find_tool("cc"),
    "python3-dev": lambda: Path(sysconfig.get_paths()["include"], "Python.h").exists(),
    "libev-dev": lambda: Path("/usr/include/ev.h").exists(),  # bjoern's event loop
}
NEEDS = {"bjoern": ("build-essential", "python3-dev", "libev-dev"),
         "uwsgi": ("build-essential", "python3-dev")}  # fmt: skip


@dataclass
class Tools:
    nginx: str
    wrk: str


def find_tool(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin:/sbin")


def pins(path: Path = C_SERVERS) -> dict[str, str]:
    """{distribution: version} of a requirements file's ``name==version`` lines."""
    found = {}
    for line in path.read_text().splitlines():
        name, sep, version = line.partition("#")[0].strip().partition("==")
        if sep:
            found[name.lower()] = version
    return found


def installed(distribution: str) -> str | None:
    """The installed version of ``distribution`` in this Python, or None."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def install_missing(engines: Sequence[Engine]) -> dict[str, str]:
    """apt-get install what is missing of nginx-light and wrk and, for the C servers
    among ``engines`` not installed at their pinned version, of their build packages
    (root on Debian only); then pip-install those servers into this Python, each on
    its own. Returns {engine name: the last line of pip's error} for those that failed."""
    build = [
        e for e in engines if e.compiled and installed(e.distribution) != pins()[e.distribution]
    ]
    wanted = {"nginx-light": find_tool("nginx"), "wrk": find_tool("wrk")}
    for engine in build:
        wanted |= {package: BUILD_PACKAGES[package]() for package in NEEDS[engine.name]}
    _apt_install([package for package, found in wanted.items() if not found])
    failed = {}
    for engine in build:
        requirement = f"{engine.distribution}=={pins()[engine.distribution]}"
        print(f"bench: building {requirement} (pip)", file=sys.stderr)
        pip = [sys.executable, "-m", "pip", "install", "--quiet", requirement]
        out = subprocess.run(pip, capture_output=True, text=True)
        if out.returncode != 0:
            failed[engine.name] = (out.stderr.strip().splitlines() or ["?"])[-1]
    return failed


def _apt_install(missing: Sequence[str]) -> None:
    """apt-get install ``missing`` (root on Debian only; otherwise check_setup() says
    what is missing)."""
    if not missing or os.geteuid() != 0 or not shutil.which("apt-get"):
        return
    print(f"bench: installing {' '.join(missing)} (apt-get)", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    apt = ["apt-get", "-o", "DPkg::Lock::Timeout=300", "-qq"]  # others may hold the lock
    install = [*apt, "install", "-y", "--no-install-recommends", *missing]
    if subprocess.run(install, env=env, stdout=subprocess.DEVNULL).returncode != 0:
        subprocess.run([*apt, "update"], env=env, check=False)
        subprocess.run(install, env=env, stdout=subprocess.DEVNULL, check=False)


def left_out(engines: Sequence[Engine], failed: Mapping[str, str]) -> dict[str, str]:
    """{engine name: one line saying why} for each C server among ``engines`` that is
    not installed (the run goes on without it); ``failed``: install_missing()'s errors."""
    found = {}
    for e in engines:
        if not e.compiled or installed(e.distribution) is not None:
            continue
        requirement = f"{e.distribution}=={pins()[e.distribution]}"
        if e.name in failed:
            found[e.name] = f"{e.name} left out: pip install {requirement} failed: {failed[e.name]}"
        else:
            found[e.name] = (
                f"{e.name} left out: {requirement} not installed (it needs "
                f"{' '.join(NEEDS[e.name])}; `make bench` as root installs them)"
            )
    return found


def check_setup(engines: Sequence[Engine]) -> Tools:
    """The tools and Python packages this run needs (the C servers aside: see
    left_out()); BenchError listing what is missing."""
    problems = []
    nginx, wrk = find_tool("nginx"), find_tool("wrk")
    if not nginx or not wrk:
        what = " and ".join(t for t, p in (("nginx", nginx), ("wrk", wrk)) if not p)
        problems.append(
            f"{what} not found: apt-get install nginx-light wrk "
            "(or run `python -m loadtest.bench --install-missing` as root)"
        )
    modules = sorted({e.distribution for e in engines if e.distribution and not e.compiled})
    modules += ["httptools", "prometheus_client"]
    absent = sorted(m for m in modules if importlib.util.find_spec(m) is None)
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
        if engine.distribution:
            with contextlib.suppress(importlib.metadata.PackageNotFoundError):
                found[engine.distribution] = importlib.metadata.version(engine.distribution)
    out = subprocess.run([tools.nginx, "-v"], capture_output=True, text=True, timeout=10)
    found["nginx"] = (out.stderr or out.stdout).strip().rpartition("/")[2]
    out = subprocess.run([tools.wrk, "-v"], capture_output=True, text=True, timeout=10)
    match = re.search(r"wrk (\S+)", out.stdout + out.stderr)
    found["wrk"] = match.group(1).rpartition("/")[2] if match else "?"
    return found
