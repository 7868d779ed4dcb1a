"""--threads 1 (the app inline in the event loop) and --threads N (a thread pool),
with slow and fast endpoints mixed, and accept back-pressure.

Slow requests are ``/hold``: they run until the test creates a release file,
so what is asserted is an order of events, never a duration.
"""

from __future__ import annotations

import re
import select
import signal
import time
from pathlib import Path

import pytest

from tests.support import wait_until
from tests.support.rawhttp import request


class Holds:
    """Starts /hold requests on their own connections and releases them."""

    def __init__(self, connect, target, folder: Path) -> None:
        self.connect, self.target, self.folder = connect, target, folder
        self.clients = []

    def start(self, name: str, wait: bool = True):
        client = self.connect(self.target)
        client.send(request(target=f"/hold?dir={self.folder}&name={name}"))
        self.clients.append(client)
        if wait:
            assert wait_until((self.folder / f"started-{name}").exists), f"hold {name} never ran"
        return client

    def release(self) -> list[int]:
        (self.folder / "release").touch()
        return [client.response().json()["pid"] for client in self.clients]


def answered_now(client, timeout: float = 0.3) -> bool:
    """True if the server has sent something on ``client`` within ``timeout`` s."""
    return bool(select.select([client.sock], [], [], timeout)[0])


@pytest.fixture(scope="module")
def inline(server_factory):
    return server_factory("--threads", "1", workers=1)


@pytest.fixture(scope="module")
def pooled(server_factory):
    return server_factory("--threads", "4", workers=1)


def test_inline_worker_serves_one_request_at_a_time(connect, inline, tmp_path):
    holds = Holds(connect, inline, tmp_path)
    holds.start("slow")
    fast = connect(inline)
    fast.send(request(target="/pid"))
    assert not answered_now(fast)  # the only worker is busy with the slow request
    [slow_pid] = holds.release()
    assert fast.response().json()["pid"] == slow_pid  # served after, by the same worker


def test_inline_keep_alive_and_pipelining(connect, inline):
    client = connect(inline)
    client.send(
        request(target="/echo?1") + request(target="/sleep?s=0.05") + request(target="/echo?3")
    )
    first = client.response().json()
    assert first["environ"]["QUERY_STRING"] == "1"
    assert first["wsgi"]["wsgi.multithread"] is False
    assert "pid" in client.response().json()
    assert client.response().json()["environ"]["QUERY_STRING"] == "3"


def test_threads_serve_fast_requests_while_slow_ones_run(connect, pooled, tmp_path):
    holds = Holds(connect, pooled, tmp_path)
    for name in ("a", "b", "c"):  # three of the four threads are held
        holds.start(name)
    for i in range(10):  # the fourth serves these, one connection each
        fast = connect(pooled)
        fast.send(request(target=f"/echo?fast={i}"))
        response = fast.response()
        assert response.json()["environ"]["QUERY_STRING"] == f"fast={i}"
        assert response.json()["wsgi"]["wsgi.multithread"] is True
    assert not any(answered_now(c, 0) for c in holds.clients)  # the slow ones still run
    assert len(set(holds.release())) == 1


def test_threads_keep_alive_connection_returns_to_the_loop(connect, pooled):
    client = connect(pooled)
    for i in range(5):  # each request may run on another thread
        client.send(request(target=f"/sleep?s=0.01&i={i}"))
        assert client.response().status == 200


def test_busy_worker_stops_accepting_so_the_other_takes_the_connection(
    connect, server_factory, tmp_path
):
    """-w 2 --threads 2: once a worker runs two holds, the third and fourth connections
    can only have been accepted by the other worker (a worker that accepted more than
    it can run would leave a hold waiting, and the test would time out on it)."""
    target = server_factory("--threads", "2", workers=2)
    holds = Holds(connect, target, tmp_path)
    for name in ("1", "2", "3", "4"):
        holds.start(name)  # each must start running
    pids = holds.release()
    assert sorted(pids.count(pid) for pid in set(pids)) == [2, 2]


def test_connections_accepted_before_their_request_are_shared_between_workers(
    connect, server_factory, tmp_path
):
    """-w 2 --threads 2: four connections opened at once, their requests sent a
    moment later (a client opening its pool, wrk's start). A worker holds a thread
    for each connection it accepted until its first request comes, so it takes two
    and leaves two to the other; taking more would leave a hold waiting behind the
    others (the test would time out on it)."""
    target = server_factory("--threads", "2", workers=2)
    clients = [connect(target) for _ in range(4)]
    time.sleep(0.3)  # accepted by now, with nothing to read
    for name, client in enumerate(clients):
        client.send(request(target=f"/hold?dir={tmp_path}&name={name}"))
    for name in range(4):
        assert wait_until((tmp_path / f"started-{name}").exists), f"hold {name} never ran"
    (tmp_path / "release").touch()
    pids = [client.response().json()["pid"] for client in clients]
    assert sorted(pids.count(pid) for pid in set(pids)) == [2, 2]


def test_busy_inline_worker_leaves_new_connections_to_the_others(connect, server_factory, tmp_path):
    target = server_factory("--threads", "1", workers=2)
    holds = Holds(connect, target, tmp_path)
    holds.start("slow")
    held_pid = int((tmp_path / "started-slow").read_text())
    for _ in range(5):
        fast = connect(target)
        fast.send(request(target="/pid"))
        assert fast.response().json()["pid"] != held_pid
    assert holds.release() == [held_pid]


@pytest.mark.parametrize("threads", ["1", "2"])
def test_request_waiting_on_a_busy_worker_is_not_closed_as_idle(
    connect, server_factory, tmp_path, threads
):
    """A keep-alive connection whose next request arrived while the worker was busy
    past --keep-alive is served, not closed as idle (a close would reset it)."""
    target = server_factory("--threads", threads, "--keep-alive", "1", workers=1)
    waiting = connect(target)
    waiting.send(request(target="/pid"))
    assert waiting.response().status == 200  # now idle, on the worker
    holds = Holds(connect, target, tmp_path)
    for i in range(int(threads)):
        holds.start(str(i))  # every thread of the only worker is busy
    waiting.send(request(target="/echo?waited"))  # arrives while nothing can serve it
    time.sleep(2.5)  # longer than --keep-alive plus the 1 s idle sweep
    holds.release()
    response = waiting.response()
    assert response.json()["environ"]["QUERY_STRING"] == "waited"


def test_hung_request_on_a_thread_is_timed_out(connect, server_factory):
    """--threads 2 --timeout 2: the event loop keeps running while a handler thread
    hangs in the app, but the worker beats as of its oldest request's start, so the
    master aborts it after --timeout, the request is logged, and a new worker serves."""
    target = server_factory("--threads", "2", "--timeout", "2", workers=1)
    hung = connect(target)
    hung.send(request(target="/sleep?s=30"))
    fast = connect(target)
    fast.send(request(target="/pid"))
    old_pid = fast.response().json()["pid"]  # the other thread still serves meanwhile
    assert hung.closed()  # no answer: the worker was aborted
    log = target.log()
    assert "WORKER TIMEOUT" in log
    assert re.search(r"worker \d+ timed out serving GET /sleep\?s=30", log), log
    client = connect(target)
    client.send(request(target="/pid"))
    assert client.response().json()["pid"] != old_pid


def test_stopping_worker_closes_its_listeners_so_new_connections_are_refused(
    connect, server_factory, tmp_path
):
    """SIGTERM: while a request is still in flight, a new connection is refused at
    once (the master and every worker closed their listening sockets) instead of
    waiting in a queue nobody accepts from, to be reset at exit."""
    target = server_factory("--threads", "2", workers=2)
    holds = Holds(connect, target, tmp_path)
    holds.start("in-flight")
    target.proc.send_signal(signal.SIGTERM)
    assert wait_until(lambda: "stopping (SIGTERM, graceful)" in target.log())

    def refused() -> bool:
        try:
            target.connect().close()
        except ConnectionRefusedError:
            return True
        return False

    assert wait_until(refused)
    assert not answered_now(holds.clients[0], 0)  # still in flight
    [_] = holds.release()
    assert target.proc.wait(20) == 0


def test_a_freed_thread_takes_waiting_requests_in_order_after_the_listen_queue(
    connect, server_factory, tmp_path
):
    """--threads 2, one worker, every thread holding a request: requests that came on
    its open keep-alive connections wait for a thread in arrival order, and a
    connection that waits in the listen queue goes before them (accept back-pressure
    must not starve it). A thread that finishes gives its connection back armed for
    its next request and runs what waits itself, so this is the order in which the
    waiting holds start as the running ones are released one by one; each connection
    then serves another request."""
    target = server_factory("--threads", "2", workers=1)
    clients = {name: connect(target) for name in ("a", "b", "c", "d")}
    for client in clients.values():  # accepted, served, idle: the worker holds all four
        client.send(request(target="/pid"))
        assert client.response().status == 200
    folders = {}
    for name in ("a", "b", "c", "d", "new"):
        folders[name] = tmp_path / name
        folders[name].mkdir()

    def hold(name: str, client) -> None:
        client.send(request(target=f"/hold?dir={folders[name]}&name={name}"))

    hold("a", clients["a"])
    hold("b", clients["b"])
    for name in ("a", "b"):
        assert wait_until((folders[name] / f"started-{name}").exists), f"hold {name} never ran"
    hold("c", clients["c"])  # read by the loop: waits for a thread
    hold("d", clients["d"])
    time.sleep(0.3)  # both read and waiting by now
    clients["new"] = connect(target)  # stays in the listen queue: no thread is free
    hold("new", clients["new"])
    time.sleep(0.3)
    started = lambda name: (folders[name] / f"started-{name}").exists()  # noqa: E731
    assert not any(started(name) for name in ("c", "d", "new"))

    order = []
    for running in ("a", "b", "new"):  # release one; exactly one waiting hold starts
        (folders[running] / "release").touch()
        assert clients[running].response().status == 200
        assert wait_until(
            lambda: sum(started(name) for name in ("c", "d", "new")) == len(order) + 1
        ), f"nothing started after {running} ended"
        order.extend(name for name in ("new", "c", "d") if started(name) and name not in order)
    for running in ("c", "d"):
        (folders[running] / "release").touch()
        assert clients[running].response().status == 200
    assert order == ["new", "c", "d"]
    for client in clients.values():  # each connection was given back for its next request
        client.send(request(target="/pid"))
        assert client.response().status == 200
