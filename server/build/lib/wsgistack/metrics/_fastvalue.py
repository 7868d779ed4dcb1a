"""A cheaper ``inc`` for prometheus-client's multiprocess value — the one place
wsgistack touches prometheus-client's private fields.

Why: the library's multiprocess value asks for the process identity on every
update, to reopen its files after a fork. That check is a fifth of an
instrument update's cost, and a request makes five updates. The subclass built
here runs it only on a value's first update after the identity may have
changed (``files.set_identity``, a fork); the update itself stays the
library's: add, then ``MmapedDict.write_value`` into the same file.

Private fields used: ``_value``, ``_timestamp``, ``_file`` (whose
``write_value(key, value, timestamp)`` is called) and ``_key``, as in
prometheus-client 0.20 to 0.26. The users' own requirements may pin another
release, so each value checks at creation that it has them; if one is missing,
every value takes the library's own ``inc`` (the public path, just slower) and
the error log says so once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

_PRIVATE_FIELDS = ("_value", "_timestamp", "_file", "_key")
log = logging.getLogger("wsgistack.error")


def fast_value_class(library: type, generation: Callable[[], object]) -> type:
    """prometheus-client's multiprocess value class ``library`` with a cheaper ``inc``.

    ``generation()`` returns an object that changes whenever the process
    identity may have changed. Every method runs under one lock (the app's
    threads share the values), outside the library's own.
    """
    lock = threading.Lock()
    state = {"fast": True, "warned": False}

    # mypy cannot check a base class only known at run time (a parameter)
    class MmapedValue(library):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            with lock:
                super().__init__(*args, **kwargs)
                self._generation = generation()
                if state["fast"] and not _has_private_fields(self):
                    state["fast"] = False
                    log.warning(
                        "prometheus-client %s lacks the fields wsgistack's fast metric "
                        "updates use (%s): using its public update path",
                        _library_version(),
                        ", ".join(_PRIVATE_FIELDS),
                    )

        def inc(self, amount: float) -> None:
            with lock:
                current = generation()
                if not state["fast"] or self._generation is not current:
                    super().inc(amount)  # checks the identity, reopens the files if new
                    self._generation = current
                    return
                self._value += amount
                self._timestamp = 0.0
                self._file.write_value(self._key, self._value, 0.0)

        def set(self, value: float, timestamp: float | None = None) -> None:
            with lock:
                super().set(value, timestamp)

        def get(self) -> float:
            with lock:
                return float(super().get())

    return MmapedValue


def _has_private_fields(value: object) -> bool:
    return all(hasattr(value, name) for name in _PRIVATE_FIELDS) and callable(
        getattr(value._file, "write_value", None)  # type: ignore[attr-defined]
    )


def _library_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("prometheus-client")
    except PackageNotFoundError:
        return "(unknown version)"
