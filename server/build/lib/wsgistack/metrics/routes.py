"""The http_route label's budget: the first ``MAX_ROUTES`` distinct route
templates are labels, any other folds into ``OTHER``.

The budget is shared by every process that writes to the metrics directory
(``PROMETHEUS_MULTIPROC_DIR``): the routes admitted so far are lines of the
file ``routes.txt`` there, read and appended under an exclusive ``flock``, so
the cap holds for the whole directory, across workers, their recycling
(``--max-requests``), reloads and restarts (the file stays, as the counters
do). A process asks the file only for a route it has not seen: the usual
request finds its route in the process's own set. Without the directory the
budget is per process.
"""

from __future__ import annotations

import fcntl
import os

MAX_ROUTES = 100  # distinct http_route values in the metrics directory; more fold into OTHER
FILE_NAME = "routes.txt"
_REFUSED_MAX = 4096  # routes remembered as refused (bounded too)

_admitted: set[str] = set()
_refused: set[str] = set()


def admit(route: str) -> bool:
    """True if ``route`` is (or now becomes) one of the first MAX_ROUTES routes."""
    if route in _admitted:
        return True
    if route in _refused or "\n" in route or "\r" in route:
        return False
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        ok = _admit_shared(os.path.join(directory, FILE_NAME), route)
    else:
        ok = len(_admitted) < MAX_ROUTES
        if ok:
            _admitted.add(route)
    if not ok and len(_refused) < _REFUSED_MAX:
        _refused.add(route)
    return ok


def _admit_shared(path: str, route: str) -> bool:
    with open(path, "a+", encoding="utf-8") as shared:
        fcntl.flock(shared, fcntl.LOCK_EX)  # released when the file closes
        shared.seek(0)
        known = set(shared.read().splitlines())
        if route not in known and len(known) < MAX_ROUTES:
            shared.write(route + "\n")
            known.add(route)
    _admitted.update(known)  # what the others admitted: no file read for them later
    return route in known
