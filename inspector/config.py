"""One configuration tree for the whole station (pydantic, ``extra="forbid"``).

Read from the environment (``INSPECTOR_<SECTION>__<FIELD>``) and constructor
arguments; nothing is read at import time. ``create_app(settings)`` and the CLI
take a :class:`Settings` object, so tests build their own.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class ServerConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    max_upload_mb: float = Field(20.0, gt=0)
    max_pixels: int = Field(40_000_000, gt=0, description="refuse images above this many pixels")
    max_views: int = Field(8, ge=1, le=32)
    inference_queue: int = Field(8, ge=1, description="requests waiting for the model before 503")
    require_auth: bool = True


class StorageConfig(_Section):
    data_dir: Path = Path("data")
    db_url: str | None = Field(None, description="SQLAlchemy URL; default SQLite under data_dir")

    def resolved_db_url(self) -> str:
        return self.db_url or f"sqlite:///{(self.data_dir / 'inspector.db').resolve()}"


class DetectorConfig(_Section):
    backend: Literal["ultralytics", "onnx"] = "ultralytics"
    model: str | None = Field(None, description="weights path or registry version; None = the active version")
    confidence: float = Field(0.25, ge=0.0, le=1.0)
    iou: float = Field(0.5, ge=0.0, le=1.0)
    imgsz: int = Field(640, ge=32, le=4096)
    threads: int | None = Field(None, ge=1, description="torch threads; None = every core")
    device: str = "cpu"

    def thread_count(self) -> int:
        return self.threads or max(1, os.cpu_count() or 1)


class CameraConfig(_Section):
    sources: list[str] = Field(
        default_factory=lambda: ["synthetic"], description="synthetic | index | URL | file | folder"
    )
    fps: float = Field(15.0, gt=0, le=120)
    width: int = Field(640, ge=64)
    height: int = Field(480, ge=64)
    seed: int = 0


class GradingConfig(_Section):
    rubric_dir: Path | None = Field(None, description="folder of per-category rubric YAML; None = shipped")


class DispositionConfig(_Section):
    policy_file: Path | None = Field(None, description="policy YAML; None = shipped default")
    catalogue_file: Path | None = Field(None, description="SKU catalogue CSV or JSON")


class WebhookConfig(_Section):
    max_attempts: int = Field(12, ge=1)
    base_delay_s: float = Field(2.0, gt=0)
    timeout_s: float = Field(5.0, gt=0)


class Settings(BaseSettings):
    """The station's settings: every section, validated, unknown keys refused."""

    model_config = SettingsConfigDict(env_prefix="INSPECTOR_", env_nested_delimiter="__", extra="forbid")

    station_id: str = "bench-1"
    server: ServerConfig = Field(default_factory=ServerConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    detector: DetectorConfig = Field(default_factory=DetectorConfig)
    camera: CameraConfig = Field(default_factory=CameraConfig)
    grading: GradingConfig = Field(default_factory=GradingConfig)
    disposition: DispositionConfig = Field(default_factory=DispositionConfig)
    webhooks: WebhookConfig = Field(default_factory=WebhookConfig)
