"""Listening sockets: IPv4, IPv6, repeated -b, unix:PATH with --chmod-socket,
--backlog and --reuse-port."""

from __future__ import annotations

import shutil
import socket
import stat
import subprocess

import pytest

from tests.server.conformance import RECORDER
from tests.support.process import Server, free_port
from tests.support.rawhttp import Client, request


def has_ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


ipv6 = pytest.mark.skipif(not has_ipv6_loopback(), reason="this host has no IPv6 loopback (::1)")


def echo_env(server: Server, **kwargs) -> dict:
    client = Client(server.connect(**kwargs))
    try:
        client.send(request())
        return client.response().json()["environ"]
    finally:
        client.close()


@ipv6
def test_ipv6_bind(server_factory):
    server = server_factory(host="::1")
    env = echo_env(server)
    assert env["SERVER_NAME"] == "::1"
    assert env["SERVER_PORT"] == str(server.port)
    assert env["REMOTE_ADDR"] == "::1"


def test_repeated_bind_listens_on_every_address(server_factory):
    ports = [free_port(), free_port()]
    server = server_factory("-b", f"127.0.0.1:{ports[0]}", "-b", f"127.0.0.1:{ports[1]}")
    for port in ports:
        server.port = port
        assert echo_env(server)["SERVER_PORT"] == str(port)


@ipv6
def test_ipv4_and_ipv6_side_by_side(server_factory):
    port = free_port()
    server = server_factory("-b", f"127.0.0.1:{port}", "-b", f"[::1]:{port}")
    assert echo_env(server)["SERVER_NAME"] == "127.0.0.1"
    server.host = "::1"
    assert echo_env(server)["SERVER_NAME"] == "::1"


def test_unix_socket_with_mode(server_factory, tmp_path):
    path = tmp_path / "server.sock"
    server = server_factory("-b", f"unix:{path}", "--chmod-socket", "600")
    server.unix = str(path)
    assert stat.S_ISSOCK(path.stat().st_mode)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    env = echo_env(server)
    assert env["SERVER_NAME"] == str(path)
    assert env["SERVER_PORT"] == "0"
    assert env["REMOTE_ADDR"] == ""
    assert server.stop() == 0
    assert not path.exists()  # removed on exit


def test_stale_unix_socket_file_is_replaced(server_factory, tmp_path):
    path = tmp_path / "stale.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # the file stays, nobody listens: what a crash leaves behind
    server = server_factory("-b", f"unix:{path}")
    server.unix = str(path)
    assert echo_env(server)["SERVER_NAME"] == str(path)


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2)")
def test_backlog_is_the_listen_queue(server_factory):
    server = server_factory("--backlog", "37")
    out = subprocess.run(
        ["ss", "-Hltn", f"sport = :{server.port}"], capture_output=True, text=True, check=True
    ).stdout
    # for a listening socket, ss's Send-Q column is the backlog given to listen(2)
    assert out.split()[2] == "37", out


def test_reuse_port_lets_two_servers_share_a_port(server_factory):
    port = free_port()
    first = server_factory("-b", f"127.0.0.1:{port}", "--reuse-port")
    second = server_factory("-b", f"127.0.0.1:{port}", "--reuse-port")
    pids = set()
    for _ in range(40):  # the kernel spreads connections over both: see both answer
        client = Client(first.connect())
        client.send(request(target="/pid"))
        pids.add(client.response().json()["pid"])
        client.close()
        if len(pids) == 2:
            break
    assert len(pids) == 2
    assert second.stop() == 0


def test_without_reuse_port_a_taken_port_is_a_clear_error(server_factory, tmp_path):
    taken = server_factory()
    late = Server(RECORDER, [f"-b127.0.0.1:{taken.port}"], tmp_path / "late.log")
    late.start()
    assert late.proc.wait(30) == 1
    assert f"cannot listen on 127.0.0.1:{taken.port}" in late.log()
    assert "Traceback" not in late.log()
