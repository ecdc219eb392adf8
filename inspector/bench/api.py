"""The API round trip as the WMS sees it: ``inspector serve`` under uvicorn, one request at a time and under load."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from inspector.bench.machine import peak_rss_mb
from inspector.bench.processes import free_port, stop
from inspector.bench.subject import Subject
from inspector.bench.timing import p50, percentiles, time_calls


def wait_ready(base: str, data_dir: Path, proc: subprocess.Popen[bytes], timeout: float = 180.0) -> str:
    """A bootstrap key of a starting ``inspector serve``, once ``/v1/ready`` answers 200 with it."""
    import httpx

    deadline = time.time() + timeout
    while time.time() < deadline:
        keys = data_dir / "bootstrap-keys.txt"
        if keys.is_file():
            for line in keys.read_text().splitlines():
                if "operator" in line or "admin" in line:
                    key = line.split()[-1]
                    try:
                        r = httpx.get(f"{base}/v1/ready", headers={"X-API-Key": key}, timeout=5)
                        if r.status_code == 200:
                            return key
                    except httpx.HTTPError:
                        pass
        if proc.poll() is not None:
            raise RuntimeError("the server exited during start-up")
        time.sleep(0.5)
    raise RuntimeError(f"the server did not become ready in {timeout:.0f} s")


class Server:
    """``inspector serve`` in a subprocess on loopback, with its own data folder."""

    def __init__(self, data_dir: Path, backend: str, threads: int, imgsz: int, *, camera: bool = True) -> None:
        self.port = free_port()
        self.data_dir = data_dir
        env = dict(
            os.environ,
            INSPECTOR_THREADS=str(threads),
            INSPECTOR_DETECTOR__BACKEND=backend,
            INSPECTOR_DETECTOR__THREADS=str(threads),
            INSPECTOR_DETECTOR__IMGSZ=str(imgsz),
            INSPECTOR_STATION__ENABLED="true" if camera else "false",
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "inspector", "serve", "--port", str(self.port), "--data-dir", str(data_dir)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.base = f"http://127.0.0.1:{self.port}"
        self.key = wait_ready(self.base, data_dir, self.proc)

    def peak_rss_mb(self) -> float:
        return peak_rss_mb(self.proc.pid)

    def close(self) -> None:
        stop(self.proc)


@contextmanager
def serving(subject: Subject, backend: str, *, camera: bool) -> Iterator[Server]:
    """A :class:`Server` for the subject's model on a fresh data folder, stopped and removed afterwards."""
    with tempfile.TemporaryDirectory(dir=subject.work) as tmp:
        server = Server(Path(tmp) / "data", backend, subject.threads, subject.imgsz, camera=camera)
        try:
            yield server
        finally:
            server.close()


def unique_jpeg(jpeg: bytes, i: int) -> bytes:
    """The same picture with a numbered JPEG comment: other bytes, so every request stores a new file.

    Identical uploads are stored once (content addressing), which would leave the image
    write and its fsyncs out of every request after the first.
    """
    text = f"inspector bench {i}".encode()
    return jpeg[:2] + b"\xff\xfe" + (len(text) + 2).to_bytes(2, "big") + text + jpeg[2:]


def api_latency(server: Server, image: bytes, n: int, item: dict[str, Any] | None = None) -> dict[str, Any]:
    """Sequential POSTs: client-side latency, and the median of each stage the server reports in ``timings_ms``.

    ``item`` goes with each view as the WMS would send it: its category picks the family's anomaly model.
    """
    import httpx

    stages: dict[str, list[float]] = {}
    with httpx.Client(base_url=server.base, headers={"X-API-Key": server.key}, timeout=60) as client:
        count = [0]

        def post() -> None:
            count[0] += 1
            view = unique_jpeg(image, count[0])
            form = {"item": json.dumps(item)} if item else None
            r = client.post("/v1/inspections", files=[("images", ("view.jpg", view, "image/jpeg"))], data=form)
            r.raise_for_status()
            for k, v in (r.json().get("timings_ms") or {}).items():
                stages.setdefault(k, []).append(float(v))

        samples = time_calls(post, n)
    return {
        "sequential": percentiles(samples),
        "server_stages_p50_ms": {k: p50(v) for k, v in sorted(stages.items())},
    }


def load_test(
    server: Server, image: bytes, clients: int, seconds: float, item: dict[str, Any] | None = None
) -> dict[str, Any]:
    """``clients`` threads post for ``seconds``; every 2xx must be stored exactly once."""
    import httpx

    lat: list[float] = []
    errors: list[str] = []
    ids: list[str] = []
    lock = threading.Lock()
    stop_at = time.time() + seconds

    def worker(k: int) -> None:
        with httpx.Client(base_url=server.base, headers={"X-API-Key": server.key}, timeout=120) as client:
            i = 0
            while time.time() < stop_at:
                i += 1
                t = time.perf_counter()
                try:
                    r = client.post(
                        "/v1/inspections",
                        files=[("images", ("view.jpg", unique_jpeg(image, 1_000_000 * (k + 1) + i), "image/jpeg"))],
                        data={"item": json.dumps({**(item or {}), "rma": f"LOAD-{k}-{i}"})},
                        headers={"Idempotency-Key": f"load-{k}-{i}"},
                    )
                    ms = (time.perf_counter() - t) * 1000
                    with lock:
                        if r.status_code in {200, 201}:
                            lat.append(ms)
                            ids.append(r.json()["id"])
                        else:
                            errors.append(str(r.status_code))
                except httpx.HTTPError as exc:
                    with lock:
                        errors.append(type(exc).__name__)

    t0 = time.time()
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.time() - t0
    stored = len(stored_ids(server.base, server.key, "LOAD-") & set(ids))
    out = percentiles(lat) if lat else {"n": 0}
    return {
        **out,
        "clients": clients,
        "seconds": round(wall, 1),
        "ok": len(lat),
        "errors": len(errors),
        "error_kinds": sorted(set(errors)),
        "stored": stored,
        "lost": len(set(ids)) - stored,
        "duplicated_ids": len(ids) - len(set(ids)),
        "throughput_per_s": round(len(lat) / wall, 2),
    }


def stored_ids(base: str, key: str, rma_prefix: str) -> set[str]:
    """The ids of every stored inspection whose RMA starts with ``rma_prefix``, read back page by page."""
    import httpx

    seen: set[str] = set()
    with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=60) as client:
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 200}
            if cursor:
                params["cursor"] = cursor
            page = client.get("/v1/inspections", params=params).json()
            for item in page["items"]:
                if str((item.get("item") or {}).get("rma", "")).startswith(rma_prefix):
                    seen.add(item["id"])
            cursor = page.get("next_cursor")
            if not cursor:
                return seen


def served_anomaly(server: Server) -> str | None:
    """The anomaly check of ``/v1/ready``: which anomaly model the timed server scores items with, if any."""
    import httpx

    r = httpx.get(f"{server.base}/v1/ready", headers={"X-API-Key": server.key}, timeout=5)
    check = (r.json().get("checks") or {}).get("anomaly") or {}
    return str(check.get("detail")) if check else None


def measure(subject: Subject, backend: str, image: bytes, n: int, load_seconds: float) -> dict[str, Any]:
    """The server without a camera (nothing else competes for the cores): latency, 8 clients' load, peak RSS."""
    with serving(subject, backend, camera=False) as server:
        out: dict[str, Any] = {"backend": backend, "camera": False, "anomaly": served_anomaly(server)}
        out.update(api_latency(server, image, n, subject.item))
        out["item"] = subject.item
        out["load"] = load_test(server, image, 8, load_seconds, subject.item)
        out["server_peak_rss_mb"] = server.peak_rss_mb()
    return out
