"""A pytest plugin that refuses every network connection except loopback.

Installed at configure time, so imports during collection are covered too.
Refused attempts are recorded in :data:`ATTEMPTS` so a test can assert that
nothing even tried to reach out.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

ATTEMPTS: list[str] = []
_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo
_installed = False


class NetworkBlocked(OSError):
    """Raised instead of opening a connection outside loopback."""


def _is_local(host: Any) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode()
    host = str(host)
    if host in ("localhost", "", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _check(sock: socket.socket, address: Any) -> None:
    if sock.family == getattr(socket, "AF_UNIX", None):
        return
    host = address[0] if isinstance(address, tuple) else address
    if not _is_local(host):
        ATTEMPTS.append(f"connect {address!r}")
        raise NetworkBlocked(f"network access outside loopback is refused in tests: {address!r}")


def _connect(self: socket.socket, address: Any) -> None:
    _check(self, address)
    _real_connect(self, address)


def _connect_ex(self: socket.socket, address: Any) -> int:
    _check(self, address)
    return _real_connect_ex(self, address)


def _getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if not _is_local(host):
        ATTEMPTS.append(f"resolve {host!r}")
        raise socket.gaierror(socket.EAI_NONAME, f"name resolution outside loopback is refused in tests: {host!r}")
    return _real_getaddrinfo(host, *args, **kwargs)


def install() -> None:
    global _installed
    if _installed:
        return
    socket.socket.connect = _connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = _getaddrinfo
    _installed = True


def uninstall() -> None:
    global _installed
    socket.socket.connect = _real_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _real_connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = _real_getaddrinfo
    _installed = False


def pytest_configure(config: Any) -> None:
    install()


def pytest_unconfigure(config: Any) -> None:
    uninstall()
