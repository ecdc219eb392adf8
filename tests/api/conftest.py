"""API test fixtures: a real SQLite file under tmp_path, a real detector, the real pipeline.

The detector is the registry's active model when one is promoted (the default
model); without one, an untrained YOLOv8n with the station's labelmap saved to
a temporary .pt, run at confidence 0 so that it does return boxes. Either way
the whole real pipeline (rubric grading, policy disposition) runs behind it.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image

from inspector.api.app import create_app
from inspector.config import Settings, StationConfig, StorageConfig, WebhookConfig
from inspector.detect.base import Detector, DetectorError
from inspector.pipeline import InspectionPipeline, build_pipeline
from inspector.store.keys import Role, create_key

pytestmark = pytest.mark.api


@pytest.fixture(scope="session")
def detector(tmp_path_factory: pytest.TempPathFactory) -> Detector:
    from inspector.config import DetectorConfig
    from inspector.detect import load_detector
    from inspector.registry import resolve_weights

    try:
        weights, version = resolve_weights(None)
    except DetectorError:
        weights, version = _untrained_weights(tmp_path_factory.mktemp("model") / "untrained.pt"), None
        return load_detector(DetectorConfig(confidence=0.0, imgsz=320, threads=2), weights, version)
    return load_detector(DetectorConfig(threads=2), weights, version)


def _untrained_weights(path: Path) -> Path:
    from ultralytics import YOLO
    from ultralytics.nn.tasks import DetectionModel

    from inspector.labelmap import default_labelmap

    names = default_labelmap().names
    model = YOLO("yolov8n.yaml", task="detect")
    model.model = DetectionModel("yolov8n.yaml", nc=len(names), verbose=False)
    model.model.names = dict(enumerate(names))
    model.save(str(path))
    return path


def make_settings(tmp_path: Path, **server: Any) -> Settings:
    return Settings(
        storage=StorageConfig(data_dir=tmp_path / "data"),
        station=StationConfig(enabled=False),
        webhooks=WebhookConfig(base_delay_s=0.05, max_delay_s=0.2, poll_interval_s=0.05, timeout_s=2.0),
        server=server,
    )


@dataclass
class Api:
    """A running app with one key per role."""

    app: FastAPI
    client: TestClient
    settings: Settings
    keys: dict[str, str] = field(default_factory=dict)

    def h(self, role: str = "admin", **extra: str) -> dict[str, str]:
        return {"X-API-Key": self.keys[role], **extra}

    def inspect(
        self, images: list[bytes] | None = None, item: dict[str, Any] | None = None, role: str = "wms", **headers: str
    ) -> Any:
        images = images if images is not None else [jpeg()]
        files = [("images", (f"v{i}.bin", b, "application/octet-stream")) for i, b in enumerate(images)]
        data = {"item": json.dumps(item)} if item is not None else None
        return self.client.post("/v1/inspections", headers=self.h(role, **headers), files=files, data=data)

    @property
    def data_dir(self) -> Path:
        return self.settings.storage.data_dir


def add_keys(app: FastAPI) -> dict[str, str]:
    keys = {}
    with app.state.store.db.write() as s:
        for role in Role:
            _, keys[role.value] = create_key(s, role, f"test {role.value}")
    return keys


@pytest.fixture
def pipeline(detector: Detector, tmp_path: Path) -> InspectionPipeline:
    return build_pipeline(make_settings(tmp_path), detector=detector)


@pytest.fixture
def api(tmp_path: Path, pipeline: InspectionPipeline) -> Iterator[Api]:
    settings = make_settings(tmp_path)
    app = create_app(settings, pipeline=pipeline)
    with TestClient(app) as client:
        yield Api(app=app, client=client, settings=settings, keys=add_keys(app))


@pytest.fixture(scope="module")
def shared_api(tmp_path_factory: pytest.TempPathFactory, detector: Detector) -> Iterator[Api]:
    """One app for a whole module, for tests that store nothing or only what they read back themselves."""
    tmp = tmp_path_factory.mktemp("shared")
    settings = make_settings(tmp)
    app = create_app(settings, pipeline=build_pipeline(settings, detector=detector))
    with TestClient(app) as client:
        yield Api(app=app, client=client, settings=settings, keys=add_keys(app))


# ------------------------------------------------------------------ images


def picture(w: int = 320, h: int = 240, seed: int = 0) -> np.ndarray:
    """A bench-like BGR picture: a bright box on a dark textured mat."""
    rng = np.random.default_rng(seed)
    img = rng.integers(20, 70, (h, w, 3), dtype=np.uint8)
    x, y = w // 4 + seed % 7, h // 4
    img[y : y + h // 2, x : x + w // 2] = (200, 190, 180)
    return img


def jpeg(w: int = 320, h: int = 240, seed: int = 0) -> bytes:
    ok, buf = cv2.imencode(".jpg", picture(w, h, seed))
    assert ok
    return buf.tobytes()


def png(w: int = 320, h: int = 240, seed: int = 0) -> bytes:
    ok, buf = cv2.imencode(".png", picture(w, h, seed))
    assert ok
    return buf.tobytes()


def webp(w: int = 320, h: int = 240, seed: int = 0) -> bytes:
    out = io.BytesIO()
    Image.fromarray(picture(w, h, seed)[:, :, ::-1]).save(out, format="WEBP")
    return out.getvalue()


def gif(w: int = 64, h: int = 48) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (w, h), (10, 20, 30)).save(out, format="GIF")
    return out.getvalue()


def bomb_png(w: int = 9000, h: int = 9000) -> bytes:
    """A small file that declares a huge canvas (a decompression bomb)."""
    out = io.BytesIO()
    Image.new("1", (w, h)).save(out, format="PNG", optimize=True)
    return out.getvalue()
