"""The real app under uvicorn on 127.0.0.1 (a free port), in a thread, for the stream and browser tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import uvicorn
from fastapi import FastAPI

from inspector.config import Settings, StationConfig, StorageConfig
from inspector.detect.base import Detector
from inspector.pipeline import build_pipeline
from inspector.store.keys import Role, create_key
from inspector.types import Detections, Frame
from station.sources import FrameSource
from station.sources.synthetic import BenchSchedule, SyntheticBenchSource
from tests.api.conftest import one_pass, served_app, small_camera
from tests.station.standin import StandinBench


class BoxDetector:
    """A detector stand-in: the item where the frame differs from the empty bench, and one scratch in it."""

    def __init__(self, empty: np.ndarray, class_names: Sequence[str]) -> None:
        self._empty = empty.astype(np.int16)
        self._names = tuple(class_names)

    @property
    def model_version(self) -> str:
        return "box-detector"

    @property
    def class_names(self) -> tuple[str, ...]:
        return self._names

    def detect(self, frames: Sequence[Frame]) -> list[Detections]:
        out = []
        for f in frames:
            diff = np.abs(f.image.astype(np.int16) - self._empty).max(axis=2) > 30
            ys, xs = np.nonzero(diff)
            if len(xs) < 200:
                out.append(Detections.empty(self._names))
                continue
            x1, y1, x2, y2 = float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())
            sx, sy = x1 + (x2 - x1) / 3, y1 + 3 * (y2 - y1) / 4
            out.append(
                Detections(
                    xyxy=np.array([[x1, y1, x2, y2], [sx, sy - 4, sx + (x2 - x1) / 3, sy + 12]], np.float32),
                    confidence=np.array([0.93, 0.71], np.float32),
                    class_id=np.array([0, 1], np.int64),
                    class_names=self._names,
                )
            )
        return out


def synthetic_bench(seed: int = 0, labels: bool = True) -> Any:
    """The real synthetic engine's bench when it is there, else the stand-in."""
    try:
        from inspector.data.synth import Bench  # type: ignore[attr-defined]
    except ImportError:
        return StandinBench(seed, labels=labels)
    return Bench(seed, size=(640, 480))


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@dataclass
class LiveServer:
    app: FastAPI
    settings: Settings
    url: str = ""
    keys: dict[str, str] = field(default_factory=dict)
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    def start(self, timeout: float = 60.0) -> LiveServer:
        sock = free_socket()
        port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", lifespan="on", timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the app did not start")
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{port}"
        with self.app.state.store.db.write() as s:
            for role in Role:
                _, self.keys[role.value] = create_key(s, role, f"test {role.value}")
        return self

    def h(self, role: str = "operator") -> dict[str, str]:
        return {"X-API-Key": self.keys[role]}

    def client(self, role: str = "operator") -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.h(role), timeout=30.0)

    def stop(self) -> None:
        self.app.state.station_closing.set()  # end the live view and long polls
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(20)


def station_settings(tmp_path: Path, *, fps: float = 15.0, **station: Any) -> Settings:
    return Settings(
        storage=StorageConfig(data_dir=tmp_path / "data"),
        camera=small_camera(fps=fps),
        detector=one_pass(),
        station=StationConfig(**station),
    )


def station_server(
    tmp_path: Path,
    *,
    schedule: BenchSchedule,
    fps: float = 15.0,
    detector: Detector | None = None,
    seed: int = 0,
    sources: list[FrameSource] | None = None,
    **station: Any,
) -> LiveServer:
    """The real app (store, keys, pipeline, page) with the synthetic bench as its camera."""
    settings = station_settings(tmp_path, fps=fps, **station)
    bench = synthetic_bench(seed)
    if detector is None:
        from inspector.labelmap import default_labelmap

        detector = BoxDetector(bench.empty(), default_labelmap().names)
    pipeline = build_pipeline(settings, detector=detector)
    app = served_app(settings, pipeline)
    app.state.station_sources = sources or [
        SyntheticBenchSource("cam0", seed=seed, fps=fps, schedule=schedule, bench=bench)
    ]
    return LiveServer(app, settings).start()


def drift_yesterday(server: LiveServer) -> str:
    """Yesterday, three inspections of the grade today has least of: the drift banner shows. Returns that grade."""
    import json
    from collections import Counter
    from datetime import UTC, datetime, timedelta

    from inspector.store import inspections as repo

    today = httpx.get(server.url + "/v1/inspections?limit=50", headers=server.h(), timeout=10).json()["items"]
    assert today
    mix = Counter(i["grade"]["level"] for i in today)
    rare = min(("A", "B", "C", "D"), key=lambda g: mix.get(g, 0))
    server.settings.feedback.drift.min_inspections = 1
    with server.app.state.store.db.write() as s:
        for i in range(3):
            body = json.loads(json.dumps({k: v for k, v in today[0].items() if k not in ("decisions", "final")}))
            body["id"] = f"00000000-0000-4000-8000-{i:012d}"
            body["created_at"] = (datetime.now(UTC) - timedelta(days=1)).isoformat()
            body["grade"]["level"] = rare
            repo.save_inspection(
                s, body, images=[], source="test", request_hash="x", created_by=None, idempotency_key=None
            )
    return rare


def readme_png(page: Any, target: Path, width: int = 1024, colors: int = 128) -> None:
    """The whole page as a small palette PNG for the docs (full size is too heavy for the README)."""
    from PIL import Image

    target.parent.mkdir(exist_ok=True)
    raw = target.with_suffix(".raw.png")
    page.screenshot(path=str(raw), full_page=True)
    with Image.open(raw) as img:
        small = img.convert("RGB").resize((width, round(img.height * width / img.width)), Image.Resampling.LANCZOS)
        small.quantize(colors=colors).save(target, optimize=True)
    raw.unlink()
