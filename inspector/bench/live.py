"""The bench station as shipped: the live view's frames per second, and the API beside the running camera."""

from __future__ import annotations

import time
from typing import Any

from inspector.bench.api import Server, api_latency, serving
from inspector.bench.subject import Subject


def live_fps(server: Server, seconds: float = 6.0) -> float:
    """Frames per second of the operator page's MJPEG live view, as a browser receives them."""
    import httpx

    frames = 0
    t0 = time.time()
    with httpx.stream("GET", f"{server.base}/station/stream.mjpg", headers={"X-API-Key": server.key}, timeout=30) as r:
        buf = b""
        for chunk in r.iter_bytes():
            buf += chunk
            frames += buf.count(b"\xff\xd9")
            buf = buf[-1:]
            if time.time() - t0 > seconds:
                break
    return round(frames / (time.time() - t0), 2)


def measure(subject: Subject, backend: str, image: bytes, n: int) -> dict[str, Any]:
    """Camera, live view and capture trigger running, and the API beside them: latency, fps, peak RSS."""
    with serving(subject, backend, camera=True) as server:
        # after the API requests: the first seconds of a fresh server (model warm-up, the trigger's
        # first captures) are not the station's steady state
        out: dict[str, Any] = {"with_camera": api_latency(server, image, n, subject.item)["sequential"]}
        out["live_fps"] = live_fps(server)
        out["server_with_camera_peak_rss_mb"] = server.peak_rss_mb()
    return out
