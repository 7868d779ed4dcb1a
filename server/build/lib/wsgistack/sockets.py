"""Listening sockets: TCP (IPv4, IPv6) and Unix-domain, as ``--bind`` names them."""

from __future__ import annotations

import os
import socket
import stat


def bind(
    address: str, backlog: int, *, reuse_port: bool = False, chmod_socket: int = 0o660
) -> socket.socket:
    """A listening socket for HOST:PORT ([v6]:PORT for IPv6) or unix:PATH.

    A stale Unix socket file at PATH is replaced; its mode is set to
    ``chmod_socket``. Raises OSError (address in use, permission) with the
    address in the message.
    """
    if address.startswith("unix:"):
        path = address[len("unix:") :]
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        target: str | tuple[str, int] = path
    else:
        host, _, port = address.rpartition(":")
        host = host.strip("[]")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        target = (host, int(port))
    try:
        if sock.family == socket.AF_UNIX:
            if os.path.exists(path) and stat.S_ISSOCK(os.stat(path).st_mode):
                os.unlink(path)
            sock.bind(path)
            os.chmod(path, chmod_socket)
        else:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if sock.family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(target)
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"cannot listen on {address}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock
