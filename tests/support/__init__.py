"""What the test packages share, imported by package path (never as a
top-level module): ``from tests.support import ROOT, wait_until``.

Here: ROOT, ``in_ci()``, ``wait_until()`` and ``load_script()``. Modules:

* ``rawhttp``: requests as bytes, the one response parser (h11), a raw-socket
  client, and raw exchanges over TLS or inside a container;
* ``process``: free ports and real ``python -m wsgistack`` processes
  (``Server``) for the conformance and framework tests;
* ``dockerhost``: whether Docker answers, for the stack tests' fixtures;
* ``browser``: a headless Chromium driven over the DevTools protocol (pages
  opened offline, their console, exceptions and failed loads, screenshots).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import TypeVar

ROOT = Path(__file__).resolve().parents[2]  # the repository

T = TypeVar("T")


def in_ci() -> bool:
    """Whether this runs in CI (CI=true), where a test that cannot run must fail, not skip."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def wait_until(predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.02) -> T:
    """Call ``predicate`` every ``interval`` seconds until it returns a true value
    or ``timeout`` seconds have passed; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def load_script(relative: str, name: str) -> ModuleType:
    """The Python script at ROOT/``relative`` (not in a package) as the module
    ``name``, registered in sys.modules (dataclasses look their module up there)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / relative)
    assert spec is not None and spec.loader is not None, relative
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
