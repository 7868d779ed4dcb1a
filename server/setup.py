"""The wsgistack wheel's compiled hot path (the metadata is pyproject.toml's).

The per-request modules (``wsgistack._hotpath.HOT_MODULES``) are compiled with
Cython from their own ``.py`` source, typed by the ``.pxd`` files beside them
(Cython's pure Python mode), into extension modules shipped next to that source.
Without Cython, or when the C compiler is missing or fails, the build goes on
without them: the installed server then runs the same modules as Python
(``hot path: python``). WSGISTACK_NO_EXTENSIONS=1 at build time builds none.
"""

from __future__ import annotations

import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

# wsgistack._hotpath.HOT_MODULES, as source files (setup.py cannot import the package)
HOT_SOURCES = [
    "src/wsgistack/http/parser.py",
    "src/wsgistack/http/response.py",
    "src/wsgistack/http/connection.py",
    "src/wsgistack/wsgi.py",
]


class OptionalBuildExt(build_ext):
    """build_ext that warns and builds nothing instead of failing the install."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # no compiler, no headers: CCompilerError, PlatformError, ...
            self._skip(exc)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:  # one failed compile: the Python source serves
            self._skip(exc)

    @staticmethod
    def _skip(exc: Exception) -> None:
        print(
            f"wsgistack: building the compiled hot path failed ({exc}); "
            "the server runs as pure Python (hot path: python)",
            file=sys.stderr,
        )


def extensions() -> list[Extension]:
    """The extension modules to build: none without Cython or when switched off."""
    if os.environ.get("WSGISTACK_NO_EXTENSIONS", "") not in ("", "0"):
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        print("wsgistack: Cython is not installed; hot path: python", file=sys.stderr)
        return []
    return cythonize(
        HOT_SOURCES,
        compiler_directives={"language_level": "3"},
        quiet=True,
    )


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
