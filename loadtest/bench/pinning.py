"""The pinned runs' CPUs: the engine on one CPU, nginx and wrk on another
(``os.sched_setaffinity``, what ``taskset -c`` does), so that one CPU is the engine's
whole budget and its CPU time per request is not shared with its load generator."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Pinning:
    """CPU numbers: ``engine`` for the engine's processes, ``load`` for nginx and wrk."""

    engine: int
    load: int


def plan(available: Iterable[int]) -> Pinning | None:
    """The engine on the highest of the ``available`` CPUs (CPU 0 takes most of the
    interrupts), nginx and wrk on the next lower; None with fewer than two CPUs."""
    cpus = sorted(available)
    if len(cpus) < 2:
        return None
    return Pinning(engine=cpus[-1], load=cpus[-2])


def affinity(cpu: int | None) -> Callable[[], None] | None:
    """A ``preexec_fn`` for subprocess that pins the child (and what it forks) to ``cpu``;
    None for no pinning."""
    if cpu is None:
        return None

    def pin() -> None:
        os.sched_setaffinity(0, {cpu})

    return pin
