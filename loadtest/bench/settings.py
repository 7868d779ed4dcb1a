"""The BENCH_* environment variables: settings, and the engines and scenarios chosen."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass


class BenchError(Exception):
    """Something the benchmark cannot go on without; the message says what."""


@dataclass(frozen=True)
class Settings:
    """What one run measures: seconds of each wrk run (``duration``) and of its warm-up,
    interleaved rounds, worker processes of every engine, threads per worker (``threads``
    for the scenarios without ``[bench] sleep_threads``, ``sleep_threads`` for those
    with it), wrk's connections, and whether the one-worker runs on one pinned CPU
    follow (``pinned``, BENCH_PINNED=0 or 1)."""

    duration: int = 3
    warmup: int = 1
    rounds: int = 3
    workers: int = 2
    threads: int = 1
    sleep_threads: int = 8
    connections: int = 32
    pinned: bool = True

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """Settings from BENCH_* variables; raises BenchError for a bad value."""
        values = {}
        for name, default in asdict(cls()).items():
            key = f"BENCH_{name.upper()}"
            raw = environ.get(key, "").strip()
            if not raw:
                values[name] = default
                continue
            try:
                value = int(raw)
            except ValueError:
                raise BenchError(f"{key} must be an integer, got {raw!r}") from None
            low = 0 if name in ("warmup", "pinned") else 1
            high = 1 if name == "pinned" else 3600
            if not low <= value <= high:
                raise BenchError(f"{key} must be between {low} and {high}, got {value}")
            values[name] = bool(value) if name == "pinned" else value
        return cls(**values)


_RENAMED = {"ours": "wsgistack"}  # names of wsgistack 0.1, refused


def names_from_env(environ: Mapping[str, str], key: str, known: Mapping[str, object]) -> list:
    """The comma-separated names in ``environ[key]`` (all of ``known`` when unset), in
    ``known``'s order; raises BenchError naming an unknown one."""
    raw = environ.get(key, "").strip()
    if not raw:
        return list(known.values())
    names = {n.strip() for n in raw.split(",") if n.strip()}
    renamed = sorted(names & _RENAMED.keys())
    if renamed:
        old = renamed[0]
        raise BenchError(f"{key}: {old!r} is now called {_RENAMED[old]!r}")
    unknown = sorted(names - set(known))
    if unknown or not names:
        raise BenchError(
            f"{key}: unknown {', '.join(unknown) or '(none)'}; choose from {', '.join(known)}"
        )
    return [value for name, value in known.items() if name in names]
