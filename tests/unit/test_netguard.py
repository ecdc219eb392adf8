from __future__ import annotations

import socket
import threading

import pytest

from tests import netguard


def test_outside_connection_is_refused() -> None:
    before = len(netguard.ATTEMPTS)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        with pytest.raises(netguard.NetworkBlocked):
            s.connect(("93.184.216.34", 80))
    finally:
        s.close()
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo("example.com", 443)
    assert len(netguard.ATTEMPTS) == before + 2
    del netguard.ATTEMPTS[before:]


def test_loopback_is_allowed() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    t = threading.Thread(target=lambda: server.accept()[0].close())
    t.start()
    with socket.create_connection(("localhost", port), timeout=5):
        pass
    t.join(5)
    server.close()
