"""Shared by the documentation tests: the repository root, the page generator
(docs/scripts/gen_pages.py, the mkdocs hook) and one strict build of the site."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def load_gen_pages():
    """docs/scripts/gen_pages.py as a module (it is not in a package)."""
    path = ROOT / "docs" / "scripts" / "gen_pages.py"
    spec = importlib.util.spec_from_file_location("gen_pages", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_site(site_dir: Path) -> subprocess.CompletedProcess:
    """`mkdocs build --strict` of the repository's mkdocs.yml into site_dir."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml")]
        + ["--site-dir", str(site_dir)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="session")
def gen_pages():
    return load_gen_pages()


@pytest.fixture(scope="session")
def built_site(tmp_path_factory) -> Path:
    """The site, built once per session with --strict (a warning fails the build)."""
    site = tmp_path_factory.mktemp("docs") / "site"
    result = build_site(site)
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stderr}"
    return site
