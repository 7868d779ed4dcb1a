"""The server exposed directly (no nginx in front), probed as an attacker
would with raw sockets: no flood of connections, descriptor shortage or
malformed message may take a worker down."""

from __future__ import annotations

import json
import os
import resource
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.server.conformance import RECORDER
from tests.support import ROOT, wait_until
from tests.support.process import server_environ
from tests.support.rawhttp import Client, request


def _start(tmp_path, *flags: str, nofile: int | None = None, app: str = RECORDER):
    """A one-worker server on a free port; (process, port, log path)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = tmp_path / "server.log"

    def limit() -> None:
        if nofile is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "wsgistack", app, "-w", "1", "-b", f"127.0.0.1:{port}",
             *flags],
            cwd=tmp_path if app != RECORDER else ROOT, env=server_environ(), stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=limit,
        )  # fmt: skip
    assert wait_until(lambda: " serving " in log.read_text(), 20), log.read_text()
    return process, port, log


def _get(port: int, target: str = "/echo", timeout: float = 5.0) -> int:
    """The status of GET ``target`` on a new connection."""
    client = Client(socket.create_connection(("127.0.0.1", port), timeout=timeout))
    try:
        client.send(request(target=target))
        return client.response().status
    finally:
        client.close()


def _stop(process) -> None:
    process.terminate()
    process.wait(30)


def test_out_of_descriptors_at_accept_pauses_accepting_instead_of_crashing(tmp_path):
    process, port, log = _start(tmp_path, nofile=64)
    try:
        flood = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(100)]
        assert wait_until(lambda: "EMFILE at accept" in log.read_text(), 10), log.read_text()
        for sock in flood:
            sock.close()
        assert wait_until(lambda: _get(port) == 200, 15)
        text = log.read_text()
        print(f"\n  {text.count('EMFILE at accept')} warning(s) for a flood of 100 connections")
        assert "Traceback" not in text and "crashed" not in text, text
        assert text.count("spawned worker") == 1  # the same worker throughout
        assert text.count("EMFILE at accept") == 1  # said once per interval
    finally:
        _stop(process)


def test_worker_connections_caps_what_a_worker_holds_open(tmp_path):
    process, port, log = _start(tmp_path, "--worker-connections", "5")
    try:
        idle = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(5)]
        time.sleep(0.5)  # accepted, each waiting for a request head
        waiting = socket.create_connection(("127.0.0.1", port), timeout=1.5)
        client = Client(waiting)
        client.send(request(target="/echo"))
        try:
            client.response()
            raise AssertionError("a sixth connection was served past --worker-connections 5")
        except TimeoutError:
            pass  # left in the listen queue
        idle.pop().close()
        waiting.settimeout(5)
        assert client.response().status == 200
        for sock in idle:
            sock.close()
        assert "Traceback" not in log.read_text()
    finally:
        _stop(process)


def _worker_pid(process) -> int:
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
    return int(children[0])


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.parametrize(
    ("start", "status"),
    [(b"3\r\nabc\r\n0\r\nX-Trailer: ", 431), (b"5;ext=", 400)],
    ids=["unfinished trailer field", "chunk extension"],
)
def test_an_endless_chunk_line_is_refused_at_once_with_bounded_memory(tmp_path, start, status):
    """48 MiB of one unfinished trailer field (or chunk extension): refused within
    the first read instead of buffered whole (it cost 75 MiB and 25 s of CPU)."""
    process, port, log = _start(tmp_path)
    try:
        worker = _worker_pid(process)
        rss, cpu = _rss_kib(worker), _cpu_seconds(worker)
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        client = Client(sock)
        client.send(b"POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" + start)
        sent = 0
        try:
            for _ in range(48 * 16):  # 48 MiB in 64 KiB pieces, at most
                sock.sendall(b"a" * 65536)
                sent += 65536
        except OSError:
            pass  # refused: the server closed the connection
        response = client.response("POST")
        client.close()
        grew, spent = (_rss_kib(worker) - rss) / 1024, _cpu_seconds(worker) - cpu
        mib = sent / 2**20
        print(f"\n  {status}: after {mib:.1f} MiB sent, RSS +{grew:.1f} MiB, CPU {spent:.2f} s")
        assert response.status == status
        assert grew < 16 and spent < 5  # generous: the old code took +74 MiB and 25 s
        assert _get(port) == 200  # the same worker serves on
        assert _worker_pid(process) == worker
    finally:
        _stop(process)


# -- slow clients: --timeout is for a stuck app, --client-timeout for a stuck client


def _bystander_after(port: int, seconds: float) -> int:
    """GET /sleep?s=3 on a new connection ``seconds`` from now: its status (0: cut)."""
    time.sleep(seconds)
    try:
        return _get(port, "/sleep?s=3", timeout=15)
    except (OSError, AssertionError):
        return 0


def test_a_client_that_never_reads_costs_its_connection_not_the_worker(tmp_path):
    """A streamed body to a client that never reads: the bystander's request, running
    past --timeout's count from the stuck one's start, still gets its 200."""
    process, port, log = _start(tmp_path, "--threads", "2", "--timeout", "4")
    try:
        stuck = socket.create_connection(("127.0.0.1", port), timeout=5)
        stuck.sendall(request(target="/stream?n=5000000"))  # ~70 MB it never reads
        assert _bystander_after(port, 2) == 200, log.read_text()
        assert "timed out" not in log.read_text()
        assert log.read_text().count("spawned worker") == 1
        stuck.close()
    finally:
        _stop(process)


def test_a_trickled_body_that_progresses_does_not_time_the_worker_out(tmp_path):
    """A body sent a byte every 1.5 s (each within --client-timeout): the request
    outlives --timeout, and neither it nor the bystander is cut."""
    process, port, log = _start(tmp_path, "--threads", "2", "--timeout", "4")
    try:
        slow = socket.create_connection(("127.0.0.1", port), timeout=15)
        client = Client(slow)
        client.send(request("POST", "/echo", [("Content-Length", "5")]))
        results = {}
        bystander = threading.Thread(target=lambda: results.update(b=_bystander_after(port, 2)))
        bystander.start()
        for byte in b"abcde":
            time.sleep(1.5)
            client.send(bytes([byte]))
        response = client.response("POST")
        bystander.join(20)
        client.close()
        assert response.status == 200 and json.loads(response.body)["body"] == "abcde"
        assert results["b"] == 200
        assert "timed out" not in log.read_text()
    finally:
        _stop(process)


DOWNLOAD_APP = """
def application(environ, start_response):
    start_response("200 OK", [("Content-Length", str(128 * 65536))])
    return (b"x" * 65536 for _ in range(128))
"""


def test_a_slow_but_steady_download_outlives_the_timeout(tmp_path):
    """8 MiB read at about 1 MiB/s by an inline worker with --timeout 3: it
    progresses, so it is served whole (it used to be killed at 3 s)."""
    (tmp_path / "download.py").write_text(DOWNLOAD_APP)
    process, port, log = _start(tmp_path, "--timeout", "3", app="download:application")
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.sendall(request(target="/"))
        received, started = 0, time.monotonic()
        while chunk := sock.recv(65536):
            received += len(chunk)
            time.sleep(len(chunk) / 2**20)  # about 1 MiB/s
            if received > 128 * 65536:
                break
        sock.close()
        elapsed = time.monotonic() - started
        print(f"\n  {received / 2**20:.1f} MiB in {elapsed:.1f} s with --timeout 3")
        assert received >= 128 * 65536  # the head and every byte of the body
        assert elapsed > 3 and "timed out" not in log.read_text()
    finally:
        _stop(process)


# -- inline mode (--threads 1): the loop never waits for one client -----------------

ONE_AT_A_TIME_APP = """
import threading, time

active, overlaps = [0], [0]

def _step():
    active[0] += 1
    if active[0] > 1:
        overlaps[0] += 1
    time.sleep(0.001)  # lets another thread in, were the app not one at a time
    active[0] -= 1

def application(environ, start_response):
    path = environ["PATH_INFO"]
    _step()
    if path == "/overlaps":
        body = str(overlaps[0]).encode()
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]
    if path == "/body":
        data = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Length", str(len(data)))])
        return [data]
    if path == "/body-thread":  # the body's length and the thread the app ran in
        data = environ["wsgi.input"].read()
        body = f"{len(data)} {threading.current_thread().name}".encode()
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]
    if path == "/big":
        def chunks():
            for _ in range(int(environ["QUERY_STRING"] or 2000)):
                _step()
                yield b"x" * 65536
        start_response("200 OK", [])
        return chunks()
    start_response("200 OK", [("Content-Length", "2")])
    return [b"ok"]
"""


def _quick_get(port: int, target: str = "/") -> tuple[int, float]:
    """(status, seconds) of GET ``target`` on a new connection (0: no answer in 10 s)."""
    started = time.monotonic()
    try:
        status = _get(port, target, timeout=10)
    except OSError:
        status = 0
    return status, time.monotonic() - started


def test_inline_a_client_that_never_reads_does_not_hold_up_the_others(tmp_path):
    """--threads 1: a response of 128 MiB to a client that reads nothing stalls in
    the loop's thread; it goes on in an offload thread, and bystanders are answered
    at once, not after --client-timeout."""
    (tmp_path / "one.py").write_text(ONE_AT_A_TIME_APP)
    process, port, log = _start(tmp_path, "--client-timeout", "20", app="one:application")
    try:
        stuck = socket.create_connection(("127.0.0.1", port), timeout=5)
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        stuck.sendall(request(target="/big"))
        time.sleep(0.5)
        answers = [_quick_get(port) for _ in range(3)]
        print(f"\n  bystanders: {[f'{seconds:.2f} s' for _, seconds in answers]}")
        assert [status for status, _ in answers] == [200, 200, 200], log.read_text()
        assert max(seconds for _, seconds in answers) < 5
        assert _get(port, "/overlaps") == 200
        stuck.close()
        assert "Traceback" not in log.read_text()
    finally:
        _stop(process)


def test_inline_a_trickled_body_waits_off_the_loop(tmp_path):
    """--threads 1: a body arriving a byte at a time is read by the loop for a second,
    then by an offload thread; bystanders are answered meanwhile, and the slow
    request gets its whole body."""
    (tmp_path / "one.py").write_text(ONE_AT_A_TIME_APP)
    process, port, log = _start(tmp_path, "--client-timeout", "20", app="one:application")
    try:
        slow = Client(socket.create_connection(("127.0.0.1", port), timeout=15))
        slow.send(request("POST", "/body", [("Content-Length", "4")]))
        answers = []
        for byte in b"abcd":
            time.sleep(0.5)
            slow.send(bytes([byte]))
            answers.append(_quick_get(port))
        response = slow.response("POST")
        assert (response.status, response.body) == (200, b"abcd")
        assert [status for status, _ in answers] == [200] * 4, log.read_text()
        assert max(seconds for _, seconds in answers) < 5
        # the connection came back to the loop: it serves the next request inline
        slow.send(request(target="/"))
        assert slow.response().status == 200
        slow.close()
    finally:
        _stop(process)


def _post_in_two_pieces(port: int, size: int, results: list) -> None:
    """POST /body-thread with a body of ``size`` bytes, its second half 0.3 s after
    the first (so the body is still arriving after the head); appends the answer."""
    client = Client(socket.create_connection(("127.0.0.1", port), timeout=15))
    try:
        half = size // 2
        client.send(request("POST", "/body-thread", [("Content-Length", str(size))]) + b"a" * half)
        time.sleep(0.3)
        client.send(b"b" * (size - half))
        response = client.response("POST")
        results.append((response.status, response.body.decode()))
    except OSError as exc:
        results.append((0, repr(exc)))
    finally:
        client.close()


def test_inline_bodies_arriving_quickly_are_read_by_the_loop_a_budget_at_a_time(tmp_path):
    """--threads 1: a body still arriving after its head, of at most 1 MiB, is read by
    the event loop itself (the app then runs in the loop's thread: no offload thread
    and its memory), at most 1 MiB of such bodies at once, the others waiting unread
    in their sockets; a longer body goes to an offload thread."""
    (tmp_path / "one.py").write_text(ONE_AT_A_TIME_APP)
    process, port, log = _start(tmp_path, app="one:application")
    try:
        results: list = []
        clients = [
            threading.Thread(target=_post_in_two_pieces, args=(port, 384 * 1024, results))
            for _ in range(8)
        ]
        for client in clients:
            client.start()
        for client in clients:
            client.join(30)
        print(f"\n  answers: {sorted(set(results))}")
        assert results == [(200, f"{384 * 1024} MainThread")] * 8, log.read_text()
        longer: list = []
        _post_in_two_pieces(port, 2 * 1024 * 1024, longer)
        assert longer == [(200, f"{2 * 1024 * 1024} app-0")]
        assert _get(port, "/overlaps") == 200
        assert "Traceback" not in log.read_text()
    finally:
        _stop(process)


UPLOAD_APP = """
def application(environ, start_response):
    size = 0
    while piece := environ["wsgi.input"].read(65536):
        size += len(piece)
    body = str(size).encode()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]
"""


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def _upload(port: int, size: int, count: int, answers: list) -> None:
    body = b"u" * size
    for _ in range(count):
        with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
            client = Client(sock)
            client.send(request("POST", "/", body=body))
            answers.append(client.response("POST").body)


def test_inline_concurrent_uploads_cost_about_one_body_of_memory(tmp_path):
    """--threads 1: 16 clients posting 1 MiB bodies at once, each read by the app in
    64 KiB pieces: the worker's peak RSS grows by about the one body the loop holds,
    as the pieces that arrived (measured +1.2 to +1.6 MiB; with a bytearray body and
    64 KiB first reads of the bodies waiting their turn, +3.9 to +4.5)."""
    (tmp_path / "upload.py").write_text(UPLOAD_APP)
    process, port, log = _start(tmp_path, app="upload:application")
    try:
        worker = _worker_pid(process)
        assert _get(port, "/") == 200
        before = _peak_rss_kib(worker)
        answers: list = []
        clients = [
            threading.Thread(target=_upload, args=(port, 1 << 20, 4, answers)) for _ in range(16)
        ]
        for client in clients:
            client.start()
        for client in clients:
            client.join(60)
        grew = (_peak_rss_kib(worker) - before) / 1024
        print(f"\n  peak RSS +{grew:.1f} MiB for 64 uploads of 1 MiB, 16 at a time")
        assert answers == [str(1 << 20).encode()] * 64, log.read_text()
        assert grew < 3
    finally:
        _stop(process)


def test_inline_slow_bodies_taking_the_room_in_turn_hold_up_a_quick_one_briefly(tmp_path):
    """--threads 1: five slow clients (1 MiB announced, half sent) would take the loop's
    room for bodies in turn, a second or two each; a quick body waiting behind them
    goes on in an offload thread after about two sweeps (1 s each) instead."""
    (tmp_path / "one.py").write_text(ONE_AT_A_TIME_APP)
    process, port, log = _start(tmp_path, "--client-timeout", "20", app="one:application")
    size = 1024 * 1024
    slow = [socket.create_connection(("127.0.0.1", port), timeout=20) for _ in range(5)]
    try:
        for sock in slow:
            sock.sendall(request("POST", "/body", [("Content-Length", str(size))]))
            sock.sendall(b"a" * (size // 2))
        time.sleep(0.2)
        answers: list = []
        started = time.monotonic()
        _post_in_two_pieces(port, 64 * 1024, answers)
        waited = time.monotonic() - started
        print(f"\n  the quick body was answered after {waited:.2f} s: {answers}")
        assert answers == [(200, f"{64 * 1024} app-{answers[0][1][-1]}")], log.read_text()
        assert waited < 4, log.read_text()
        for sock in slow:  # the slow ones end well too
            sock.sendall(b"b" * (size - size // 2))
            response = Client(sock).response("POST")
            assert (response.status, len(response.body)) == (200, size)
    finally:
        for sock in slow:
            sock.close()
        _stop(process)


def test_inline_a_stalled_response_resumes_whole_and_the_app_runs_one_at_a_time(tmp_path):
    """A response that stalled is sent on, byte for byte, then the connection serves its
    next request; meanwhile the app never ran in two threads at once."""
    (tmp_path / "one.py").write_text(ONE_AT_A_TIME_APP)
    process, port, log = _start(tmp_path, app="one:application")
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.sendall(request(target="/big?64") + request(target="/"))
        time.sleep(0.5)  # the socket buffers fill: the response stalls
        results = {}
        bystanders = threading.Thread(
            target=lambda: results.update(b=[_quick_get(port) for _ in range(20)])
        )
        bystanders.start()
        received = b""
        while received.count(b"ok") < 1 or not received.endswith(b"ok"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
            time.sleep(0.002)  # a slow reader
        bystanders.join(30)
        sock.close()
        head, _, rest = received.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        # 64 chunks of 64 KiB, chunked, then the pipelined request's answer
        assert rest.count(b"x" * 65536) == 64 and rest.endswith(b"\r\n\r\nok")
        assert [status for status, _ in results["b"]] == [200] * 20
        overlaps = Client(socket.create_connection(("127.0.0.1", port), timeout=5))
        overlaps.send(request(target="/overlaps"))
        assert overlaps.response().body == b"0"
        overlaps.close()
    finally:
        _stop(process)
