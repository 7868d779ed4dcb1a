"""One engine with a thread count and the nginx in front of it, started, measured
with wrk scenario by scenario, and stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from loadtest.bench import nginx, pinning, processes, profile, sampling, wrk
from loadtest.bench.engines import HOST, Engine, engine_commands, engine_environment
from loadtest.bench.results import Run
from loadtest.bench.scenarios import Scenario, answer_ok, app_label
from loadtest.bench.settings import BenchError, Settings
from loadtest.bench.tools import Tools


def check_scenario(port: int, scenario: Scenario) -> None:
    """One request of ``scenario`` on ``port``, checked; BenchError if it is wrong."""
    request = scenario.request
    status, data = processes.request(port, request.method, request.path, request.body or None)
    if not answer_ok(scenario, status, data):
        raise BenchError(f"{scenario.name}: unexpected answer {status} {data[:120]!r}")


class Session:
    """One engine with the given worker and thread counts serving ``app`` (MODULE:NAME),
    and an nginx in front of it; with ``pins``, the engine pinned to one CPU and nginx
    and wrk to another."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        workers: int,
        threads: int,
        app: str,
        tools: Tools,
        tmp: Path,
        pins: pinning.Pinning | None = None,
    ) -> None:
        self.engine, self.settings, self.threads, self.tools = engine, settings, threads, tools
        self.workers, self.app, self.pins = workers, app, pins
        self.engine_cpu = pins.engine if pins else None  # None: not pinned
        self.load_cpu = pins.load if pins else None
        pinned = "pinned-" if pins else ""
        label = f"{engine.name}-{pinned}{workers}x{threads}-{app_label(app)}"
        self.dir = Path(tempfile.mkdtemp(prefix=f"{label}-", dir=tmp))
        self.dir.chmod(0o755)
        self.log = self.dir / "engine.log"
        self.procs: list[subprocess.Popen] = []
        self.nginx: subprocess.Popen | None = None
        self.port = 0  # nginx's
        self.engine_port = 0  # the (first) engine process's

    def __enter__(self) -> Session:
        try:
            self._start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _start(self) -> None:
        count = self.workers if self.engine.process_per_port else 1
        ports = [processes.free_port() for _ in range(count)]  # HTTP
        uwsgi = [processes.free_port()] if self.engine.upstream == "uwsgi" else []
        upstream = uwsgi or ports  # what nginx passes to: uWSGI's uwsgi-protocol socket
        base = {
            **os.environ,
            # wsgistack_demo, as /srv in the image; the checkout: loadtest.bench.apps
            "PYTHONPATH": f"{processes.REPO / 'app'}{os.pathsep}{processes.REPO}",
            "PYTHONUNBUFFERED": "1",
            "PROMETHEUS_MULTIPROC_DIR": str(self.dir / "metrics"),  # ours, as in the image
        }
        env = engine_environment(self.engine, base)
        if self.engine.name == "nginx-static":
            conf = nginx.static_config(self.dir, ports[0], self.workers)
            (self.dir / "static.conf").write_text(conf)
        argvs = engine_commands(
            self.engine,
            sys.executable,
            [*ports, *uwsgi],
            self.workers,
            self.threads,
            self.app,
            self.tools.nginx,
            self.dir,
        )
        for argv in argvs:
            self.procs.append(processes.spawn(argv, self.log, env, self.engine_cpu))
        self.engine_port = ports[0]
        for port in ports:
            processes.wait_until_answers(port, self.procs, self.log)
        self._wait_for_workers()
        self.port = processes.free_port()
        conf = self.dir / "nginx.conf"
        conf.write_text(nginx.proxy_config(self.dir, self.port, upstream, self.engine.upstream))
        nginx_log = self.dir / "nginx.log"
        self.nginx = processes.spawn(
            [self.tools.nginx, "-p", str(self.dir), "-c", str(conf), "-e", str(nginx_log)],
            nginx_log,
            cpu=self.load_cpu,
        )
        processes.wait_until_answers(self.port, [self.nginx, *self.procs], nginx_log)

    def _wait_for_workers(self) -> None:
        """Until every worker process is up (bounded): RSS is sampled per worker."""
        if self.engine.process_per_port:
            return
        deadline = time.monotonic() + processes.START_TIMEOUT
        while len(sampling.children([p.pid for p in self.procs])) < self.workers:
            if time.monotonic() > deadline:
                log = processes.tail(self.log)
                raise BenchError(f"{self.engine.name}: workers did not start:\n{log}")
            time.sleep(0.1)

    def __exit__(self, *exc: object) -> None:
        if self.nginx is not None:
            processes.stop(self.nginx, signal.SIGQUIT)  # graceful: closes the upstream connections
        for proc in self.procs:
            processes.stop(proc)

    def measure(self, scenario: Scenario, script: Path | None, round_no: int) -> Run:
        """One warm-up and one measured wrk run of ``scenario``, with wrk's Lua ``script``
        for it (wrk.script()) if it needs one."""
        port = self.engine_port if scenario.direct else self.port
        check_scenario(port, scenario)
        url = f"http://{HOST}:{port}{scenario.path}"
        options = ["-s", str(script)] if script else []
        if self.settings.warmup:
            self._wrk(url, options, self.settings.warmup)
        mains = [p.pid for p in self.procs]
        nginx_pids = [self.nginx.pid] if self.nginx else []
        workers = sampling.children(mains)
        last = round_no == self.settings.rounds
        when = profile.timing(self.engine.name, scenario.name, self.pins is not None)
        samples = self.dir / f"profile-{scenario.name}.txt"
        spy = self._profiler(workers, samples) if last and when == "during" else None
        with sampling.RssSampler(mains) as sampler:
            engine_cpu = sampling.tree_cpu_seconds(mains)
            nginx_cpu = sampling.tree_cpu_seconds(nginx_pids)
            client_cpu = sampling.children_cpu_seconds()
            result = wrk.parse(self._wrk(url, options, self.settings.duration))
            client_cpu = sampling.children_cpu_seconds() - client_cpu  # wrk: the only child reaped
            engine_cpu = sampling.tree_cpu_seconds(mains) - engine_cpu
            nginx_cpu = sampling.tree_cpu_seconds(nginx_pids) - nginx_cpu
        gone = sorted(set(workers) - set(sampling.children(mains)))
        if gone:  # the run's figures include the replacement's start
            print(
                f"bench: {self.engine.name} {scenario.name} round {round_no}: worker(s) "
                f"{', '.join(map(str, gone))} exited during the run; the engine's log is kept "
                "with the results (logs/)",
                file=sys.stderr,
            )
        if last and when == "after":  # an extra run: py-spy's CPU stays out of the figures
            spy = self._profiler(sampling.children(mains), samples)
            if spy is not None:
                self._wrk(url, options, self.settings.duration)
        if spy is not None:
            spy.wait(30)  # it stops by itself, within the run's seconds
        rss = self.engine.wsgi
        return Run(
            round=round_no,
            engine=self.engine.name,
            scenario=scenario.name,
            workers=self.workers,
            threads=self.threads,
            rps=result.rps,
            p50_ms=result.latency_ms.get("50"),
            p99_ms=result.latency_ms.get("99"),
            errors=result.errors,
            requests=result.requests,
            # nginx-static's memory is nginx's: not comparable, not shown
            peak_rss_worker_kib=max(sampler.peak.values()) if rss and sampler.peak else None,
            peak_rss_total_kib=(sampler.peak_total or None) if rss else None,
            engine_cpu_s=engine_cpu,
            nginx_cpu_s=nginx_cpu,
            client_cpu_s=client_cpu,
            pinned=self.pins is not None,
            profile=self._profile(samples) if spy is not None else None,
        )

    def _profiler(self, workers: list[int], out: Path) -> subprocess.Popen | None:
        """py-spy sampling the first of ``workers`` into ``out`` for the next wrk run (off
        the engine's CPU when pinned; with threads, the thread holding the GIL), or None:
        no worker, or no py-spy."""
        if not workers:
            return None
        executable = profile.py_spy()
        if executable is None:
            print("bench: py-spy not found: no profile of wsgistack", file=sys.stderr)
            return None
        seconds = self.settings.duration - 0.5  # inside the wrk run
        pin = pinning.affinity(self.load_cpu)
        return profile.start(executable, workers[0], seconds, out, pin, gil=self.threads > 1)

    @staticmethod
    def _profile(samples: Path) -> list[dict[str, object]] | None:
        """profile.self_time() of the ``samples`` _profiler() wrote, or None if it wrote none."""
        try:
            return profile.self_time(samples.read_text()) or None
        except OSError:
            return None

    def _wrk(self, url: str, options: list[str], seconds: int) -> str:
        argv = [self.tools.wrk, "-t1", f"-c{self.settings.connections}", f"-d{seconds}s",
                "--latency", "--timeout", "10s", *options, url]  # fmt: skip
        out = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            preexec_fn=pinning.affinity(self.load_cpu),
        )
        if out.returncode != 0:
            raise BenchError(f"wrk failed ({out.returncode}): {out.stderr.strip()[:300]}")
        return out.stdout
