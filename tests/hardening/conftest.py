"""Hardening fixtures: the real app in-process, and the real ``inspector serve`` in a subprocess.

Every test under this folder carries the ``hardening`` marker. The in-process
app reuses the API suite's detector and keys; the subprocess server is the
command an operator runs, on a data folder under tmp_path and a loopback port,
so it can be killed with SIGKILL and its memory read from /proc.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from inspector.detect.base import Detector
from inspector.pipeline import build_pipeline
from tests.api.conftest import Api, add_keys, detector, make_settings, served_app

__all__ = ["detector"]

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).resolve().is_relative_to(HERE):
            item.add_marker(pytest.mark.hardening)


@pytest.fixture(scope="module")
def module_api(tmp_path_factory: pytest.TempPathFactory, detector: Detector) -> Iterator[Api]:
    """One real app (real pipeline, SQLite under tmp_path) for a whole module."""
    tmp = tmp_path_factory.mktemp("hardening")
    settings = make_settings(tmp)
    app = served_app(settings, build_pipeline(settings, detector=detector))
    with TestClient(app) as client:
        yield Api(app=app, client=client, settings=settings, keys=add_keys(app))


# ------------------------------------------------------------ subprocess server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(**extra: str) -> dict[str, str]:
    """The environment of a served station: no cameras, one model thread, quick webhook retries."""
    env = dict(os.environ)
    env.update(
        {
            "INSPECTOR_STATION__ENABLED": "false",
            "INSPECTOR_DETECTOR__THREADS": "1",
            "INSPECTOR_DETECTOR__IMGSZ": "320",
            "INSPECTOR_WEBHOOKS__BASE_DELAY_S": "0.05",
            "INSPECTOR_WEBHOOKS__MAX_DELAY_S": "0.3",
            "INSPECTOR_WEBHOOKS__POLL_INTERVAL_S": "0.05",
            "INSPECTOR_WEBHOOKS__TIMEOUT_S": "2",
            "INSPECTOR_WEBHOOKS__ALLOW_PRIVATE_URLS": "true",
            "INSPECTOR_THREADS": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


@dataclass
class Served:
    """``inspector serve`` in a subprocess; its stdout and stderr are collected in ``log``."""

    data_dir: Path
    env: dict[str, str]
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    log: bytearray = field(default_factory=bytearray)
    _reader: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120.0) -> Served:
        self.port = free_port()
        cmd = [
            sys.executable,
            "-c",
            "from inspector.cli import main; main()",
            "serve",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
        ]
        self.proc = subprocess.Popen(
            cmd, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
        )
        self._reader = threading.Thread(target=self._read, args=(self.proc,), daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}:\n{self.text()}")
            try:
                r = httpx.get(f"{self.url}/v1/health", timeout=2)
                if r.status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the server did not answer within {timeout} s:\n{self.text()}")

    def _read(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for line in iter(proc.stdout.readline, b""):
            self.log.extend(line)

    def text(self) -> str:
        return self.log.decode("utf-8", "replace")

    def bootstrap_keys(self) -> dict[str, str]:
        """The admin and operator keys the first start wrote to the data folder."""
        keys = {}
        for line in (self.data_dir / "bootstrap-keys.txt").read_text().splitlines():
            if line and not line.startswith("#"):
                role, _id, key = line.split()
                keys[role] = key
        return keys

    def vm_hwm_kib(self) -> int:
        """Peak resident set size of the server process (VmHWM), in KiB."""
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise AssertionError("no VmHWM in /proc status")

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, nothing is flushed."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        if self._reader is not None:
            self._reader.join(5)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()
        if self._reader is not None:
            self._reader.join(5)


def create_key(data_dir: Path, role: str, env: dict[str, str]) -> str:
    """A new key from the real command line."""
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from inspector.cli import main; main()",
            "keys",
            "create",
            "--role",
            role,
            "--data-dir",
            str(data_dir),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return out.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One ``inspector serve`` process for a whole module."""
    server = Served(data_dir=tmp_path_factory.mktemp("served") / "data", env=server_env()).start()
    yield server
    server.stop()


@pytest.fixture
def served_factory(tmp_path: Path) -> Iterator[Any]:
    """Start servers on a data folder under tmp_path; every one still running is stopped at the end."""
    started: list[Served] = []

    def start(data_dir: Path | None = None, **env: str) -> Served:
        s = Served(data_dir=data_dir or tmp_path / "data", env=server_env(**env)).start()
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()
