"""The engines compared, and the command lines that start them on loopback."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from loadtest.bench.scenarios import Scenario

HOST = "127.0.0.1"
BASELINE = "gunicorn-sync"
THREADED_BASELINE = "gunicorn-gthread"


@dataclass(frozen=True)
class Engine:
    name: str
    label: str
    distribution: str | None  # the PyPI distribution it comes from, whose version is shown
    threaded: bool  # honours a thread count
    process_per_port: bool = False  # one process per worker, each on its own port (waitress)
    only: tuple[str, ...] | None = None  # the scenarios it can run (None: every one)
    # built from source when the bench installs it (requirements/bench-c.txt): when it
    # cannot be, the run says so and goes on without it
    compiled: bool = False
    upstream: str = "http"  # what nginx speaks to it: "http" (proxy_pass) or "uwsgi" (uwsgi_pass)
    # the environment variables it runs with on top of the session's (None: unset)
    environment: tuple[tuple[str, str | None], ...] = ()

    @property
    def wsgi(self) -> bool:
        """False for the nginx-static reference, which runs no Python at all."""
        return self.distribution is not None

    def runs(self, scenario: Scenario) -> bool:
        """True if this engine takes part in ``scenario``."""
        if self.only is not None and scenario.name not in self.only:
            return False
        return not (scenario.direct and self.process_per_port)


ENGINES: dict[str, Engine] = {
    e.name: e
    for e in (
        # as shipped: the compiled hot path, Prometheus metrics in multiprocess files
        Engine("wsgistack", "wsgistack", "wsgistack", True),
        # the same server on its hot path's Python source
        Engine(
            "wsgistack-python",
            "wsgistack (python hot path)",
            "wsgistack",
            True,
            environment=(("WSGISTACK_NO_EXTENSIONS", "1"),),
        ),
        # compiled, without the metrics files (prometheus-client's in-process values,
        # never exported) and without an access log (no engine here writes one): their cost
        Engine(
            "wsgistack-bare",
            "wsgistack (no metrics files, no access log)",
            "wsgistack",
            True,
            environment=(("PROMETHEUS_MULTIPROC_DIR", None),),
        ),
        Engine("gunicorn-sync", "gunicorn sync", "gunicorn", False),
        Engine("gunicorn-gthread", "gunicorn gthread", "gunicorn", True),
        Engine("waitress", "waitress", "waitress", True, process_per_port=True),
        Engine("granian", "granian (wsgi)", "granian", True),
        Engine("bjoern", "bjoern (C)", "bjoern", False, compiled=True),
        Engine("uwsgi", "uWSGI (C)", "uwsgi", True, compiled=True, upstream="uwsgi"),
        Engine(
            "nginx-static", "nginx static (ceiling)", None, False, only=("hello", "hello-direct")
        ),
    )
}


def engine_environment(engine: Engine, base: Mapping[str, str]) -> dict[str, str]:
    """The environment of ``engine``'s processes: ``base`` with its own variables."""
    env = dict(base)
    for name, value in engine.environment:
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def engine_commands(
    engine: Engine,
    python: str,
    ports: Sequence[int],
    workers: int,
    threads: int,
    app: str,
    nginx: str = "nginx",
    directory: Path = Path("."),
) -> list[list[str]]:
    """The argv of every process that makes up ``engine`` (one, or one per port),
    serving the WSGI app ``app`` (MODULE:NAME). ``ports[0]`` answers HTTP; uwsgi also
    gets ``ports[1]``, its uwsgi-protocol socket for nginx's ``uwsgi_pass``. ``nginx``
    and ``directory`` (where nginx.static_config() is written) serve nginx-static."""
    bind = f"{HOST}:{ports[0]}"
    if engine.name.startswith("wsgistack"):  # its variants differ in environment only
        return [
            [python, "-m", "wsgistack", "-b", bind, "-w", str(workers), "--threads", str(threads),
             "--keep-alive", "75", "--graceful-timeout", "5", "--log-level", "warning", app]
        ]  # fmt: skip
    if engine.name in ("gunicorn-sync", "gunicorn-gthread"):
        kind = ["-k", "sync"] if engine.name == "gunicorn-sync" else ["-k", "gthread"]
        if engine.name == "gunicorn-gthread":
            kind += ["--threads", str(threads)]
        return [
            [python, "-m", "gunicorn", "-b", bind, "-w", str(workers), *kind,
             "--keep-alive", "75", "--graceful-timeout", "5", "--log-level", "warning",
             "--no-control-socket", app]
        ]  # fmt: skip
    if engine.name == "waitress":
        return [
            [python, "-m", "waitress", f"--listen={HOST}:{port}", f"--threads={threads}",
             "--channel-timeout=120", app]
            for port in ports
        ]  # fmt: skip
    if engine.name == "granian":
        return [
            [python, "-m", "granian", "--interface", "wsgi", "--host", HOST,
             "--port", str(ports[0]), "--workers", str(workers),
             "--blocking-threads", str(threads), "--runtime-threads", "1",
             "--workers-kill-timeout", "5", "--log-level", "warning", app]
        ]  # fmt: skip
    if engine.name == "bjoern":  # no command line of its own: a pre-fork launcher
        return [[python, "-m", "loadtest.bench.bjoern_serve", bind, str(workers), app]]
    if engine.name == "uwsgi":
        # --http11-socket: uWSGI's HTTP socket with keep-alive (--http-socket closes
        # every connection); --socket: the uwsgi protocol, for nginx's uwsgi_pass
        uwsgi = str(Path(python).parent / "uwsgi")
        threading = ["--threads", str(threads)] if threads > 1 else []
        return [
            [uwsgi, "--master", "--processes", str(workers), *threading,
             "--http11-socket", bind, "--socket", f"{HOST}:{ports[1]}",
             "--module", app, "--need-app", "--die-on-term", "--disable-logging"]
        ]  # fmt: skip
    if engine.name == "nginx-static":
        return [[nginx, "-p", str(directory), "-c", str(directory / "static.conf"),
                 "-e", str(directory / "static-error.log")]]  # fmt: skip
    raise ValueError(f"unknown engine {engine.name!r}")
