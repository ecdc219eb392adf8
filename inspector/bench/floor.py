"""The overhead floor: the least any pipeline behind this API could add to the forward pass.

Bare HTTP (an empty route, :mod:`inspector.bench.bare`), the JPEG decode and the barest
durable write of the upload, each measured alone.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from inspector.bench.api import unique_jpeg
from inspector.bench.processes import free_port, stop
from inspector.bench.speed import time_backends
from inspector.bench.subject import Subject
from inspector.bench.timing import percentiles, time_calls


def http_floor(image: bytes, n: int) -> dict[str, Any]:
    """Sequential POSTs of the bench upload to an empty route, timed as the API path is."""
    import httpx

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "inspector.bench", "bare-server", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                if httpx.get(f"{base}/v1/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("the bare HTTP server did not start")
            time.sleep(0.2)
        with httpx.Client(base_url=base, timeout=60) as client:
            count = [0]

            def post() -> None:
                count[0] += 1
                view = unique_jpeg(image, count[0])
                client.post("/v1/inspections", files=[("images", ("view.jpg", view, "image/jpeg"))]).raise_for_status()

            return percentiles(time_calls(post, n))
    finally:
        stop(proc)


def durable_write_floor(image: bytes, folder: Path, n: int) -> dict[str, Any]:
    """Keeping an upload so that a crash loses nothing, at its barest.

    The image to a temporary name, fsynced, renamed, its folder fsynced; then one row in
    SQLite (WAL, synchronous=FULL) committed. The store does this and more for every view.
    """
    folder.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(folder / "floor.db", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, path TEXT, body TEXT)")
    count = [0]

    def write() -> None:
        count[0] += 1
        final = folder / f"{count[0]}.jpg"
        tmp = final.with_suffix(".tmp")
        with tmp.open("wb") as f:
            f.write(image)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(final)
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO t (path, body) VALUES (?, ?)", (str(final), "{}" * 200))
        db.execute("COMMIT")

    try:
        return percentiles(time_calls(write, n))
    finally:
        db.close()


def floor_beside(timed: dict[str, Any], backend: str, image: bytes, work: Path, n: int) -> dict[str, Any]:
    """:func:`overhead_floor` against the decode and forward pass of a ``detectors`` run that timed ``backend``."""
    return {
        "backend": backend,
        **overhead_floor(
            image,
            work,
            n,
            decode_ms=timed["_decode_for_model_p50_ms"],
            forward_ms=timed[backend]["forward_p50_ms"],
        ),
    }


def overhead_floor(image: bytes, work: Path, n: int, *, decode_ms: float, forward_ms: float) -> dict[str, Any]:
    """The least overhead any pipeline behind this API could have: bare HTTP + decode + durable write.

    Each part is measured alone, so their sum is a lower bound on the API path's time beyond
    the forward pass; set against the 25% target it shows what the target allows.
    """
    http = http_floor(image, n)
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        write = durable_write_floor(image, Path(tmp), n)
    total = round(http["p50_ms"] + decode_ms + write["p50_ms"], 2)
    return {
        "http_p50_ms": http["p50_ms"],
        "decode_p50_ms": decode_ms,
        "durable_write_p50_ms": write["p50_ms"],
        "floor_ms": total,
        "forward_p50_ms": forward_ms,
        "floor_ratio": round(total / forward_ms, 3),
        "allowed_ms_at_25_percent": round(0.25 * forward_ms, 2),
        "http": http,
        "durable_write": write,
    }


def measure_again(subject: Subject, backend: str, image: bytes, n: int) -> dict[str, Any] | None:
    """The floor beside ``backend``'s decode and forward pass timed again just before it, or None if that failed.

    This host's speed drifts within a run, and a ratio of figures taken minutes apart measures the drift.
    """
    again = time_backends(subject, [backend], n)
    if "error" in again:
        return None
    return floor_beside(again, backend, image, subject.work, n)
