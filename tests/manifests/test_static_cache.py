"""Which static names count as fingerprinted (a year, `immutable`): the regex of
nginx/templates/static-cache.conf.template against the names the docs give
(docs/configuration.md). nginx's PCRE and Python's re read this pattern alike;
tests/stack/integration/test_compression.py checks the headers nginx sends."""

from __future__ import annotations

import re

import pytest

from tests.support import ROOT

TEMPLATE = ROOT / "nginx/templates/static-cache.conf.template"


def fingerprinted(path: str) -> bool:
    (pattern,) = re.findall(
        r'^\s*"~([^"]+)"\s+"public, max-age=31536000, immutable";', TEMPLATE.read_text(), re.M
    )
    return re.search(pattern, path) is not None


@pytest.mark.parametrize(
    "path",
    [
        "/static/app.3f9a2c1b.css",
        "/static/main-5d41402abc4b2a76.js",
        "/static/app.3f9a2c1b.js.map",
        "/static/admin/css/style.5d41402abc4b.css",  # Django's ManifestStaticFilesStorage
        "/static/noise.169c90dfb55e.png",  # the demo's
    ],
)
def test_content_hashed_names_are_fingerprinted(path):
    assert fingerprinted(path)


@pytest.mark.parametrize(
    "path",
    [
        "/static/style.css",
        "/static/app.3f9a2c1.css",  # 7 digits
        "/static/index-BxS2f8aK.js",  # not hex (Vite's)
        "/static/app.3F9A2C1B.css",  # upper case
        "/static/deadbeefcafe.css",  # no separator before it: a word
        "/static/v-3f9a2c1b/app.css",  # in a folder's name, not the file's
        "/static/app.3f9a2c1b",  # no extension after it
    ],
)
def test_other_names_are_not(path):
    assert not fingerprinted(path)
