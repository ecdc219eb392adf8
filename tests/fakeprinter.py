"""A raw-port label printer on 127.0.0.1 for tests: it takes each connection's bytes and records them."""

from __future__ import annotations

import contextlib
import socket
import threading
import time


def unused_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (until a test starts a printer there)."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port: int = probe.getsockname()[1]
    return port


class FakePrinter:
    """Reads each connection until the sender closes its side, then closes, like a printer on port 9100."""

    def __init__(self, port: int = 0) -> None:
        self.sock = socket.create_server(("127.0.0.1", port))  # SO_REUSEADDR: a port just used is free again
        self.port: int = self.sock.getsockname()[1]
        self.labels: list[bytes] = []
        self._arrived = threading.Condition()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:  # closed
                return
            data = b""
            with conn:
                conn.settimeout(10)
                try:
                    while chunk := conn.recv(65536):
                        data += chunk
                except OSError:
                    continue
            with self._arrived:
                self.labels.append(data)
                self._arrived.notify_all()

    def wait_for(self, n: int, timeout: float = 10.0) -> list[bytes]:
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.labels) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"the printer expected {n} labels, got {len(self.labels)}")
                self._arrived.wait(left)
            return list(self.labels)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept
        self.sock.close()
        self._thread.join(5)
