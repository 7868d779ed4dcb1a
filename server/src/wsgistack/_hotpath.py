"""The hot path's mode: the per-request modules compiled (Cython extension modules
built from these same ``.py`` files, typed by the ``.pxd`` files beside them), or
their Python source.

A wheel built with a C compiler holds both; Python's import system prefers the
extension. ``WSGISTACK_NO_EXTENSIONS=1`` in the environment forces the Python
source: ``install()`` (run by ``wsgistack/__init__.py``, before any of these
modules is imported) puts a finder first on ``sys.meta_path`` that loads them
from ``.py`` files only. ``mode()`` says which is in use.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from importlib.machinery import (
    SOURCE_SUFFIXES,
    ExtensionFileLoader,
    FileFinder,
    ModuleSpec,
    SourceFileLoader,
)
from types import ModuleType

# The modules of the per-request path (request parsing callbacks, environ,
# start_response, response head, send), compiled when the build could
# (server/setup.py compiles exactly these).
HOT_MODULES = (
    "wsgistack.http.parser",
    "wsgistack.http.response",
    "wsgistack.http.connection",
    "wsgistack.wsgi",
)
SWITCH = "WSGISTACK_NO_EXTENSIONS"


def forced_off(environ: Mapping[str, str] = os.environ) -> bool:
    """True when ``environ`` sets WSGISTACK_NO_EXTENSIONS to anything but "", "0"."""
    return environ.get(SWITCH, "") not in ("", "0")


class SourceOnly:
    """A meta path finder: the hot modules from their ``.py`` files, never an extension."""

    @staticmethod
    def find_spec(
        fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        """The spec of ``fullname``'s source file in the package's ``path`` (a list of
        directories), or None to let the other finders answer (any other module)."""
        if fullname not in HOT_MODULES or not path:
            return None
        for entry in path:
            spec = FileFinder(entry, (SourceFileLoader, SOURCE_SUFFIXES)).find_spec(fullname)
            if spec is not None:
                return spec
        return None


def install() -> None:
    """With WSGISTACK_NO_EXTENSIONS set, load the hot modules from source from now on."""
    if forced_off() and not any(isinstance(f, SourceOnly) for f in sys.meta_path):
        sys.meta_path.insert(0, SourceOnly())


def compiled(module: ModuleType) -> bool:
    """True if ``module`` was loaded from an extension module (compiled code)."""
    return isinstance(getattr(module, "__loader__", None), ExtensionFileLoader)


def mode() -> str:
    """The mode: "compiled" when every hot module is an extension module, else "python".

    Imports the hot modules (they are the server's own, imported anyway).
    """
    modules = [__import__(name, fromlist=["_"]) for name in HOT_MODULES]
    return "compiled" if all(compiled(m) for m in modules) else "python"
