"""How the compatibility apps are served: inside ``wsgiref.validate.validator``.

The validator checks both sides of PEP 3333 on every request (the server's
environ, ``start_response`` and ``wsgi.input``; the framework's status, headers
and iterable) and raises ``AssertionError`` on a violation; its warnings are
made errors here too. Either lands in the server's error log, which the
fixture checks when the server stops.

One known deviation is let through, for Flask only (``sized_reads``): Werkzeug
calls ``wsgi.input.read()`` with no size when the server sets
``wsgi.input_terminated``, and PEP 3333 has only ``read(size)``, so the
validator raises; ``test_werkzeug_reads_wsgi_input_without_a_size`` proves it
still does.
"""

from __future__ import annotations

import warnings
from wsgiref.validate import WSGIWarning, validator

warnings.simplefilter("error", WSGIWarning)
READ_SIZE = 65536  # bytes per read(size) when the app asked for everything


def validated(app):
    """``app`` (a WSGI callable) wrapped in the standard library's PEP 3333 validator."""
    return validator(app)


class _SizedReads:
    """A ``wsgi.input`` that serves ``read()`` (no size) by ``read(size)`` calls to the end."""

    def __init__(self, stream) -> None:
        self.stream = stream

    def read(self, size: int | None = -1) -> bytes:
        if size is not None and size >= 0:
            return self.stream.read(size)
        parts = []
        while chunk := self.stream.read(READ_SIZE):
            parts.append(chunk)
        return b"".join(parts)

    def readline(self, *args) -> bytes:
        return self.stream.readline(*args)

    def readlines(self, *args) -> list[bytes]:
        return self.stream.readlines(*args)

    def __iter__(self):
        return iter(self.stream)


def sized_reads(app):
    """``app`` seeing a ``wsgi.input`` whose ``read()`` is made of PEP 3333 ``read(size)`` calls."""

    def with_sized_reads(environ, start_response):
        environ["wsgi.input"] = _SizedReads(environ["wsgi.input"])
        return app(environ, start_response)

    return with_sized_reads
