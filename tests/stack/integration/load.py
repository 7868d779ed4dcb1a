"""A steady, bounded load through nginx, counted request by request.

``run_load`` sends ``rate`` requests per second for ``duration`` seconds (an
open loop: each request has its start time on a fixed schedule, whether or not
earlier ones have answered), alternating ``GET /api/echo?i=N`` and
``POST /api/upload`` with a random body, and checks every answer belongs to its
request (the echoed ``i``, the body's SHA-256). Each request opens its own TLS
connection and closes it (``Connection: close``), as a new visitor would, so
the counts measure the stack (nginx, its keep-alive pool to the app, the app)
rather than the HTTP/1.1 race every keep-alive client meets when a server
closes an idle connection, which clients answer by retrying.

While the load runs, ``during`` (the fault) runs in the calling thread from
``fault_at`` seconds on; the load goes on until ``duration`` has passed and the
fault has returned, plus ``tail`` seconds, never longer than ``max_duration``.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx

OK = "ok"


@dataclass
class Outcome:
    """One request: when it started (seconds since the load began), how long it
    took (seconds), and ``kind``: "ok" or what went wrong ("status 502",
    "wrong body", or the httpx exception's class name such as "ConnectError")."""

    index: int
    method: str
    started: float
    duration: float
    kind: str
    hostname: str = ""  # the replica that answered (GET /api/echo only)


@dataclass
class LoadResult:
    """Every outcome, in request order, and the fault's start and end times."""

    outcomes: list[Outcome]
    fault_started: float | None = None
    fault_ended: float | None = None
    marks: dict[str, float] = field(default_factory=dict)

    def failures(self, method: str | None = None) -> list[Outcome]:
        return [o for o in self.outcomes if o.kind != OK and method in (None, o.method)]

    def counts(self) -> Counter:
        return Counter(o.kind for o in self.outcomes)

    def report(self, title: str) -> str:
        """One line: sent, succeeded, failed by kind, and failed GETs/POSTs."""
        counts = self.counts()
        failed = {kind: n for kind, n in sorted(counts.items()) if kind != OK}
        by_method = Counter(o.method for o in self.failures())
        slowest = max((o.duration for o in self.outcomes), default=0.0)
        return (
            f"{title}: sent {len(self.outcomes)}, succeeded {counts[OK]}, "
            f"failed {sum(failed.values())} {failed or ''} "
            f"(GET {by_method['GET']}, POST {by_method['POST']}); "
            f"slowest {slowest:.2f} s"
        )


def _one_request(client: httpx.Client, index: int, t0: float) -> Outcome:
    started_at = time.monotonic()
    method = "GET" if index % 2 == 0 else "POST"
    hostname = ""
    try:
        if method == "GET":
            response = client.get("/api/echo", params={"i": index})
            ok_body = response.status_code == 200 and response.json()["args"] == {"i": [str(index)]}
            if ok_body:
                hostname = response.json()["hostname"]
        else:
            body = os.urandom(1024 + index % 3072)
            response = client.post("/api/upload", content=body)
            ok_body = response.status_code == 200 and response.json() == {
                "bytes": len(body),
                "sha256": hashlib.sha256(body).hexdigest(),
            }
        if response.status_code != 200:
            kind = f"status {response.status_code}"
        else:
            kind = OK if ok_body else "wrong body"
    except httpx.HTTPError as exc:
        kind = type(exc).__name__
    except ValueError:  # a 200 whose body is not the JSON asked for
        kind = "wrong body"
    now = time.monotonic()
    return Outcome(index, method, started_at - t0, now - started_at, kind, hostname)


def run_load(
    base_url: str,
    ssl_context,
    *,
    rate: float = 100.0,
    duration: float = 20.0,
    during: Callable[[LoadResult], None] | None = None,
    fault_at: float = 5.0,
    tail: float = 3.0,
    max_duration: float = 90.0,
    timeout: float = 10.0,
) -> LoadResult:
    """Run the load (see the module docstring); returns every outcome.

    ``during`` receives the LoadResult so it can record ``marks`` (seconds
    since the start) for the test to compare outcomes with.
    """
    result = LoadResult(outcomes=[])
    done = threading.Event()
    limits = httpx.Limits(max_keepalive_connections=0, max_connections=256)
    client = httpx.Client(
        base_url=base_url,
        verify=ssl_context,
        timeout=timeout,
        limits=limits,
        headers={"Connection": "close"},
    )
    t0 = time.monotonic()
    result.marks["t0"] = t0

    def fault() -> None:
        time.sleep(fault_at)
        result.fault_started = time.monotonic() - t0
        try:
            during(result)
        finally:
            result.fault_ended = time.monotonic() - t0
            done.set()

    fault_thread = None
    if during is not None:
        fault_thread = threading.Thread(target=fault, name="fault", daemon=True)
        fault_thread.start()
    else:
        done.set()

    futures = []
    with client, ThreadPoolExecutor(max_workers=128, thread_name_prefix="load") as pool:
        index = 0
        while True:
            due = t0 + index / rate
            elapsed = due - t0
            if elapsed >= max_duration:
                break
            if elapsed >= duration and done.is_set():
                if result.fault_ended is None or elapsed >= result.fault_ended + tail:
                    break
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            futures.append(pool.submit(_one_request, client, index, t0))
            index += 1
        result.outcomes = [future.result() for future in futures]
    if fault_thread is not None:
        fault_thread.join(timeout=max_duration)
    return result
