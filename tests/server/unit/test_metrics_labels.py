"""Bounded labels and metric-file naming (server.metrics, server.multiprocess), in-process."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from wsgistack.metrics import files as multiprocess
from wsgistack.metrics import instruments as metrics
from wsgistack.metrics import routes

from tests.support import ROOT


@pytest.fixture
def fresh_routes(monkeypatch):
    """A process that has admitted no route yet, with no metrics directory."""
    monkeypatch.setattr(routes, "_admitted", set())
    monkeypatch.setattr(routes, "_refused", set())
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)


@pytest.mark.parametrize(
    ("environ", "label"),
    [
        ({metrics.ROUTE_ENVIRON_KEY: "/users/<int:id>"}, "/users/<int:id>"),
        ({metrics.ROUTE_ENVIRON_KEY: "api/items/<slug:slug>/"}, "api/items/<slug:slug>/"),
        ({}, "_OTHER"),  # the app set nothing: an unknown path, or an app that doesn't tell
        ({metrics.ROUTE_ENVIRON_KEY: ""}, "_OTHER"),
        ({metrics.ROUTE_ENVIRON_KEY: None}, "_OTHER"),
        ({metrics.ROUTE_ENVIRON_KEY: b"/bytes"}, "_OTHER"),
        ({"PATH_INFO": "/users/42"}, "_OTHER"),  # never the raw path
    ],
)
def test_route_label(fresh_routes, environ, label):
    assert metrics.route_label(environ) == label


def test_routes_past_the_limit_fold_into_other(fresh_routes, monkeypatch):
    monkeypatch.setattr(routes, "MAX_ROUTES", 3)
    labels = [metrics.route_label({metrics.ROUTE_ENVIRON_KEY: f"/r{n}"}) for n in range(5)]
    assert labels == ["/r0", "/r1", "/r2", "_OTHER", "_OTHER"]
    assert metrics.route_label({metrics.ROUTE_ENVIRON_KEY: "/r1"}) == "/r1"  # known ones stay


def test_the_route_budget_is_shared_by_the_whole_metrics_directory(
    fresh_routes, monkeypatch, tmp_path
):
    """Workers, their replacements and a reload's new generation share one budget:
    a fresh process (empty sets) sees what the others admitted."""
    monkeypatch.setattr(routes, "MAX_ROUTES", 3)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    assert [routes.admit(f"/a{n}") for n in range(2)] == [True, True]
    monkeypatch.setattr(routes, "_admitted", set())  # another process: a recycled worker
    monkeypatch.setattr(routes, "_refused", set())
    assert routes.admit("/b") and not routes.admit("/c")  # 3 in the directory: full
    assert routes.admit("/a0")  # admitted by the first process: still a label
    assert (tmp_path / "routes.txt").read_text().splitlines() == ["/a0", "/a1", "/b"]


@pytest.mark.parametrize(("method", "label"), [("GET", "GET"), ("PURGE", "_OTHER")])
def test_method_label(method, label):
    assert metrics.method_label(method) == label


def test_identity_is_the_pid_until_named_and_only_in_the_process_that_named_it(monkeypatch):
    monkeypatch.setattr(multiprocess, "_identity", None)
    assert multiprocess.process_identity() == str(os.getpid())
    multiprocess.set_identity(multiprocess.worker_identity(3))
    assert multiprocess.process_identity() == "worker3"
    monkeypatch.setattr(multiprocess, "_identity", (os.getpid() + 1, "worker3"))  # as after fork
    assert multiprocess.process_identity() == str(os.getpid())


def test_a_child_forked_after_naming_has_its_own_pid_as_identity(monkeypatch):
    monkeypatch.setattr(multiprocess, "_identity", None)
    multiprocess.set_identity("master")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report and leave at once, without pytest's teardown
        os.write(write, multiprocess.process_identity().encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        child_identity = pipe.read().decode()
    os.waitpid(pid, 0)
    assert child_identity == str(pid)
    assert multiprocess.process_identity() == "master"


@pytest.mark.parametrize("name", ["", "worker_3"])
def test_identities_that_would_break_file_names_are_refused(name):
    with pytest.raises(ValueError, match="identity"):
        multiprocess.set_identity(name)


def test_wipe_dir_drops_gauges_and_keeps_totals(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "metrics"))
    multiprocess.wipe_dir()  # creates it
    kept = ["counter_worker0.db", "histogram_worker0.db", "counter_1234.db"]
    for name in [*kept, "gauge_livesum_worker0.db", "gauge_livemax_master.db", "gauge_all_9.db"]:
        (tmp_path / "metrics" / name).write_bytes(b"")
    multiprocess.wipe_dir()
    assert sorted(path.name for path in (tmp_path / "metrics").iterdir()) == sorted(kept)


# Runs in a fresh interpreter: instruments must be created after install_identities().
_VALUES_SCRIPT = """
import os, sys, threading
from wsgistack.metrics import files as multiprocess
multiprocess.set_identity("master")
multiprocess.install_identities()
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.multiprocess import MultiProcessCollector

done = Counter("done", "d")
busy = Gauge("busy", "b", multiprocess_mode="livesum")
took = Histogram("took", "t", buckets=(0.5, 1.0))


def work():
    for _ in range(1000):
        busy.inc()
        done.inc()
        took.observe(0.25)
        busy.dec()


threads = [threading.Thread(target=work) for _ in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
pid = os.fork()
if pid == 0:  # a worker: its own files from its first update on
    multiprocess.set_identity("worker1")
    done.inc(5)
    took.observe(0.75)
    os._exit(0)
os.waitpid(pid, 0)
done.inc(2)  # the parent's files again
registry = CollectorRegistry()
MultiProcessCollector(registry)
for name, labels in [
    ("done_total", {}), ("busy", {}), ("took_count", {}), ("took_sum", {}),
    ("took_bucket", {"le": "0.5"}), ("took_bucket", {"le": "1.0"}),
]:
    print(name, labels.get("le", ""), registry.get_sample_value(name, labels))
print(" ".join(sorted(os.listdir(os.environ["PROMETHEUS_MULTIPROC_DIR"]))))
"""


def test_updates_from_threads_and_forked_workers_are_exact_in_their_own_files(tmp_path):
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", _VALUES_SCRIPT],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.splitlines()
    assert out[:-1] == [
        "done_total  8007.0",
        "busy  0.0",
        "took_count  8001.0",
        "took_sum  2000.75",
        "took_bucket 0.5 8000.0",
        "took_bucket 1.0 8001.0",
    ]
    assert out[-1] == (
        "counter_master.db counter_worker1.db gauge_livesum_master.db "
        "gauge_livesum_worker1.db histogram_master.db histogram_worker1.db"
    )
