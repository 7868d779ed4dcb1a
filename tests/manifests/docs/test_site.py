"""The documentation site builds with `mkdocs build --strict`, loads nothing
from the network, and shows its home page with the navigation in a headless
Chromium (Debian's; requirements/host-packages.txt)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
import yaml
from PIL import Image

from .conftest import ROOT


def _nav_titles(nav) -> list[str]:
    titles = []
    for entry in nav:
        if isinstance(entry, dict):
            for title, value in entry.items():
                titles.append(title)
                if isinstance(value, list):
                    titles += _nav_titles(value)
    return titles


NAV = _nav_titles(yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"])


def test_the_site_builds_strictly_with_every_page(built_site):
    for page in (
        "index.html",
        "server-reference.html",
        "metrics.html",
        "load-testing.html",
        "benchmark-results.html",
        "changelog.html",
    ):
        assert (built_site / page).is_file(), page
    assert "--limit-request-body" in (built_site / "server-reference.html").read_text()
    assert "wsgi_server_worker_restarts_total" in (built_site / "metrics.html").read_text()
    # the root CHANGELOG.md, included
    assert "Upgrading an existing clone" in (built_site / "changelog.html").read_text()
    load = (built_site / "load-testing.html").read_text()
    for figure in (ROOT / "docs" / "load").glob("*.png"):
        assert f'src="load/{figure.name}"' in load, figure.name
        assert (built_site / "load" / figure.name).is_file()


# What a page loads: scripts, stylesheets, icons, images, frames, CSS url()s.
_LOADED = re.compile(
    r"<(?:script|img|iframe|source|embed)\b[^>]*\bsrc=[\"']([^\"']+)"
    r"|<link\b[^>]*\bhref=[\"']([^\"']+)"
    r"|url\(\s*[\"']?([^\"')]+)"
    r"|@import\s+[\"']([^\"']+)",
    re.I,
)


def test_the_built_site_loads_nothing_from_the_network(built_site):
    remote = []
    for path in built_site.rglob("*"):
        if path.suffix not in (".html", ".css"):
            continue
        for match in _LOADED.finditer(path.read_text(errors="replace")):
            url = next(group for group in match.groups() if group)
            if re.match(r"(?:[a-z][a-z0-9+.-]*:)?//", url, re.I):
                remote.append(f"{path.relative_to(built_site)}: {url}")
    assert not remote, "\n".join(remote)


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is missing (requirements/host-packages.txt; make bootstrap)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return found


def _headless(tmp_path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1280,900",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=90,
        cwd=tmp_path,
    )


def test_the_home_page_in_a_headless_browser(built_site, tmp_path):
    home = (built_site / "index.html").as_uri()
    shot = tmp_path / "home.png"
    result = _headless(tmp_path, f"--screenshot={shot}", home)
    assert shot.is_file(), result.stderr[-2000:]
    image = Image.open(shot).convert("RGB")
    assert image.size == (1280, 900)
    assert len(image.getcolors(maxcolors=1 << 16) or range(1 << 16)) > 50, "a blank page"
    # The navigation, at the left: text on the background, not an empty column.
    nav = image.crop((20, 90, 260, 600))
    background = max(nav.getcolors(maxcolors=1 << 16))[1]
    inked = sum(count for count, colour in nav.getcolors(maxcolors=1 << 16) if colour != background)
    assert inked > 0.02 * nav.width * nav.height, "the navigation column is blank"
    # The header bar is the theme's colour, so the stylesheet loaded.
    assert image.getpixel((640, 10)) != (255, 255, 255), "no header bar: the CSS did not load"

    dom = _headless(tmp_path, "--dump-dom", home).stdout
    primary = dom[dom.index("md-nav--primary") :]
    links = {" ".join(text.split()) for text in re.findall(r"md-ellipsis\">([^<]+)<", primary)}
    missing = [title for title in NAV if title not in links and title != "Observability"]
    assert not missing, f"navigation entries missing from the home page: {missing}"
    assert "Server reference" in links
