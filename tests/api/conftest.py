"""API test fixtures: a real database, a real detector, the real pipeline.

The app fixtures run every test twice: on a SQLite file under tmp_path and on a
fresh database of a real PostgreSQL server that the session starts (see
tests/pgserver.py). In CI (``CI=true``) a PostgreSQL that cannot start fails
those tests; elsewhere they are skipped with the reason.

The detector is the registry's active model when one is promoted (the default
model); without one, an untrained YOLOv8n with the station's labelmap saved to
a temporary .pt, run at confidence 0 so that it does return boxes. Either way
the whole real pipeline (rubric grading, policy disposition) runs behind it.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import text

from inspector.api.app import create_app
from inspector.config import CameraConfig, DetectorConfig, Settings, StationConfig, StorageConfig, WebhookConfig
from inspector.detect.base import Detector, DetectorError
from inspector.items import ItemInfo
from inspector.pipeline import InspectionPipeline, build_pipeline
from inspector.store.keys import Role, create_key
from inspector.types import Frame, Inspection
from station.web import mount
from tests.pgserver import PostgresServer, PostgresUnavailable, running_postgres

pytestmark = pytest.mark.api

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the session; FAILS in CI when it cannot start, skips elsewhere."""
    cm = running_postgres()
    try:
        server = cm.__enter__()
    except PostgresUnavailable as exc:
        if in_ci():
            pytest.fail(f"PostgreSQL is required in CI and could not be started: {exc}", pytrace=False)
        pytest.skip(f"PostgreSQL could not be started here: {exc}")
    try:
        yield server
    finally:
        cm.__exit__(None, None, None)


@pytest.fixture(scope="session")
def pg_template(postgres: PostgresServer) -> str:
    """A database migrated to head once; each test gets a copy of it."""
    from inspector.store.db import Database

    name = postgres.create_database()
    db = Database(postgres.url(name))
    try:
        db.migrate()
    finally:
        db.dispose()
    return name


def fresh_db_url(request: pytest.FixtureRequest, backend: str) -> Iterator[str | None]:
    """None on SQLite (the file under the data folder); a new PostgreSQL database otherwise."""
    if backend == "sqlite":
        yield None
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    name = server.create_database(template=request.getfixturevalue("pg_template"))
    try:
        yield server.url(name)
    finally:
        server.drop_database(name)


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The database the module's app tests run on (every module runs on both)."""
    value: str = request.param
    return value


@pytest.fixture
def db_url(request: pytest.FixtureRequest, backend: str) -> Iterator[str | None]:
    yield from fresh_db_url(request, backend)


@pytest.fixture(scope="module")
def module_db_url(request: pytest.FixtureRequest, backend: str) -> Iterator[str | None]:
    yield from fresh_db_url(request, backend)


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


def small_camera(**camera: Any) -> CameraConfig:
    """A 640x480 camera, for tests that do not care about resolution: a quarter of the default's pixels."""
    return CameraConfig(width=640, height=480, **camera)


def one_pass(**detector: Any) -> DetectorConfig:
    """The model on the small frame alone: the default tiled pass runs it several times per view."""
    return DetectorConfig(tiling="off", **detector)


def make_settings(tmp_path: Path, *, db_url: str | None = None, station_id: str = "bench-1", **server: Any) -> Settings:
    return Settings(
        station_id=station_id,
        camera=small_camera(),
        detector=one_pass(),
        storage=StorageConfig(data_dir=tmp_path / "data", db_url=db_url),
        station=StationConfig(enabled=False),
        webhooks=WebhookConfig(
            base_delay_s=0.05, max_delay_s=0.2, poll_interval_s=0.05, timeout_s=2.0, allow_private_urls=True
        ),
        server=server,
    )


def served_app(settings: Settings, pipeline: InspectionPipeline | None = None) -> FastAPI:
    """The app as ``inspector serve`` composes it: the API, and the bench station mounted on it."""
    app = create_app(settings, pipeline=pipeline)
    mount(app, settings)
    return app


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

    def sql(self, query: str, **params: Any) -> list[tuple[Any, ...]]:
        """Rows of a query straight on the app's database (SQLite or PostgreSQL), bypassing the API."""
        with self.app.state.store.db.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(query), params)]


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
def api(tmp_path: Path, pipeline: InspectionPipeline, db_url: str | None) -> Iterator[Api]:
    settings = make_settings(tmp_path, db_url=db_url)
    app = served_app(settings, pipeline)
    with TestClient(app) as client:
        yield Api(app=app, client=client, settings=settings, keys=add_keys(app))


@pytest.fixture(scope="module")
def shared_api(
    tmp_path_factory: pytest.TempPathFactory, detector: Detector, module_db_url: str | None
) -> Iterator[Api]:
    """One app for a whole module, for tests that store nothing or only what they read back themselves."""
    tmp = tmp_path_factory.mktemp("shared")
    settings = make_settings(tmp, db_url=module_db_url)
    app = served_app(settings, build_pipeline(settings, detector=detector))
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


class WrappedPipeline:
    """The real pipeline with a test's hook before each inspection (hold it, record its frames, ...)."""

    def __init__(self, inner: InspectionPipeline) -> None:
        self.inner = inner

    @property
    def model_version(self) -> str:
        return self.inner.model_version

    @property
    def policy_version(self) -> str:
        return self.inner.policy_version

    @property
    def rubric_version(self) -> str:
        return self.inner.rubric_version

    def before(self, frames: Sequence[Frame]) -> None:
        """Called with the decoded views before the real pipeline runs."""

    def inspect(
        self, frames: Sequence[Frame], item: ItemInfo, *, inspection_id: str, station_id: str = "bench-1"
    ) -> Inspection:
        self.before(frames)
        return self.inner.inspect(frames, item, inspection_id=inspection_id, station_id=station_id)


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
