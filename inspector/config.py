"""One configuration tree for the whole station (pydantic, ``extra="forbid"``).

Read from the environment (``INSPECTOR_<SECTION>__<FIELD>``) and constructor
arguments; nothing is read at import time. ``create_app(settings)`` and the CLI
take a :class:`Settings` object, so tests build their own.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class ServerConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    max_upload_mb: float = Field(20.0, gt=0)
    max_pixels: int = Field(40_000_000, gt=0, description="refuse images above this many pixels")
    max_request_pixels: int = Field(
        40_000_000, gt=0, description="refuse a request whose views add up to more pixels (decoded memory)"
    )
    max_views: int = Field(8, ge=1, le=32)
    inference_queue: int = Field(8, ge=1, description="requests waiting for the model before 503")
    require_auth: bool = True
    inference_workers: int = Field(1, ge=1, le=8, description="threads running the model (one per loaded model)")
    idempotency_wait_s: float = Field(120.0, gt=0, description="how long a retry waits for the first request")
    bootstrap_keys: bool = Field(True, description="on serve, create an admin and an operator key if none exist")
    max_json_kb: float = Field(64.0, gt=0, description="cap on a JSON request body (uploads have max_upload_mb)")
    max_bulk_mb: float = Field(8.0, gt=0, description="cap on a bulk push of expected returns (POST /v1/returns)")
    public_docs: bool = Field(
        True, description="serve /docs and /openapi.json without a key (the contract holds no data); false = key needed"
    )


class StorageConfig(_Section):
    data_dir: Path = Path("data")
    db_url: str | None = Field(None, description="SQLAlchemy URL; default SQLite under data_dir")
    busy_timeout_ms: int = Field(30_000, ge=0, description="SQLite: wait this long for a lock")
    image_dir: Path | None = Field(
        None, description="content-addressed image folder, may be shared by a fleet; default data_dir/images"
    )
    min_free_mb: float = Field(
        200.0, ge=0, description="refuse new inspections (507) while the image or database disk has less free space"
    )
    connect_timeout_s: float = Field(
        5.0, gt=0, description="PostgreSQL: give up connecting after this long (requests answer 503, never hang)"
    )

    def resolved_db_url(self) -> str:
        return self.db_url or f"sqlite:///{(self.data_dir / 'inspector.db').resolve()}"

    def resolved_image_dir(self) -> Path:
        return self.image_dir or self.data_dir / "images"


# the station's non-maximum suppression IoU; evaluation and training-time validation use it too, so a
# model's mAP, its kept epoch and its served boxes come from the same suppression
SERVED_NMS_IOU = 0.5

# detector.tiling's values: off, tiles of the item found on the small frame, or tiles of the whole frame
Tiling = Literal["off", "item", "frame"]


class DetectorConfig(_Section):
    backend: Literal["ultralytics", "onnx", "onnx-int8", "openvino", "openvino-int8"] = "ultralytics"
    model: str | None = Field(None, description="weights path or registry version; None = the active version")
    confidence: float = Field(0.25, ge=0.0, le=1.0)
    iou: float = Field(SERVED_NMS_IOU, ge=0.0, le=1.0)
    imgsz: int = Field(640, ge=32, le=4096)
    threads: int | None = Field(None, ge=1, description="torch threads; None = every core")
    device: str = "cpu"
    aspect: float = Field(
        4 / 3, gt=0.1, lt=10, description="width/height of the frames; exported models are shaped for it"
    )
    streams: int = Field(1, ge=1, le=16, description="OpenVINO: requests in flight (>1 trades latency for throughput)")
    precision: Literal["f32", "bf16"] = Field("f32", description="OpenVINO: precision of the graph's float parts")
    warmup: int = Field(
        1, ge=0, le=10, description="blank-frame runs at load to serve (0: none): the set-up is paid then"
    )
    tiling: Tiling = Field(
        "off",
        description="look for defects in native-resolution tiles: of the item found on the small frame "
        "(the whole frame when none is found), or of the whole frame; off = one pass on the small frame "
        "(the camera's pixels beyond the model's input are then lost)",
    )
    tile_size: int | None = Field(
        None, ge=64, le=4096, description="tile width in px (height by the aspect); None = the model's input size"
    )
    tile_overlap: float = Field(0.2, ge=0.0, lt=0.9, description="share of a tile that neighbouring tiles share")
    class_thresholds: bool = Field(
        True,
        description="keep each class from its own operating point (chosen by cost, in the model card) when the "
        "served version has them; the item class and unlisted classes keep `confidence`",
    )
    thresholds_file: Path | None = Field(
        None,
        description="JSON override of the card's per-class operating points; missing or corrupt: logged, "
        "the card's are served",
    )

    @field_validator("tiling", mode="before")
    @classmethod
    def _tiling_off(cls, value: object) -> object:
        """YAML reads a bare ``off`` as false: it means the same here."""
        return "off" if value is False else value

    def thread_count(self) -> int:
        return self.threads or max(1, os.cpu_count() or 1)


class CameraConfig(_Section):
    sources: list[str] = Field(
        default_factory=lambda: ["synthetic"], description="synthetic | index | URL | file | folder"
    )
    fps: float = Field(
        20.0, gt=0, le=120, description="frames per second read; files and the synthetic bench play at this rate"
    )
    # 1280x960 with detector.tiling=item sees more of the small defects, but the served model learned them
    # at 640x480: measured on 1,000 held-out items it leaves as much money on the table at 5x the time
    # per view (docs/models.md), so 640x480 stays the default until a model trained at 1280x960 pays
    width: int = Field(640, ge=64, description="frame width asked of the cameras; the synthetic bench renders at it")
    height: int = Field(480, ge=64, description="frame height asked of the cameras; the synthetic bench renders at it")
    seed: int = 0


class TriggerConfig(_Section):
    """The capture trigger's thresholds, on a small blurred grey copy of each frame (sensor noise does not count)."""

    still_frames: int = Field(4, ge=1, le=60, description="still frames before an item is captured")
    empty_frames: int = Field(3, ge=1, le=60, description="empty frames before an item counts as taken away")
    pixel_threshold: int = Field(14, ge=1, le=255, description="grey levels a pixel must change by to count")
    occupied_fraction: float = Field(0.004, gt=0, lt=1, description="share of changed pixels: bench occupied")
    motion_fraction: float = Field(0.0015, gt=0, lt=1, description="share of changed pixels: item moving")
    work_width: int = Field(160, ge=16, le=4096, description="width of the grey copy the trigger compares")
    reference_rate: float = Field(
        0.02, ge=0, lt=1, description="how fast the empty-bench reference follows slow light changes when idle"
    )


class StationConfig(TriggerConfig):
    """The station's cameras and trigger (its thresholds are the trigger's fields, read as they are)."""

    enabled: bool = Field(True, description="run the cameras and the capture trigger with the API")
    read_labels: bool = Field(True, description="read RMA/LPN codes (QR, barcodes) in the captured views")
    live_width: int = Field(
        960, ge=160, le=8192, description="widest live view JPEG in px; captures keep the camera's native frames"
    )
    rma_pattern: str = r"^RMA[-_ :]?[A-Z0-9][A-Z0-9-]{2,39}$"
    lpn_pattern: str = r"^LPN[-_ :]?[A-Z0-9]{4,40}$"
    reference_dir: Path | None = Field(None, description="empty-bench references; None = <data_dir>/station")
    language: Literal["en", "vi"] = Field("en", description="the operator page's language; the operator may switch")


class GradingConfig(_Section):
    rubric_dir: Path | None = Field(None, description="folder of per-category rubric YAML; None = shipped")
    family_model: Path | None = Field(None, description="family classifier weights (.pt); None = no wrong-item check")
    learned_dir: Path | None = Field(
        None, description="folder of learned graders (<category>.pt); only those that beat the rubric are used"
    )
    blind_spots: bool = Field(
        True,
        description="weigh the chance of a defect the detector missed, when the served model's operating "
        "points carry its per-class recall and base rates (with today's recall this sends about half the "
        "items to manual review, and leaves a tenth of the money it leaves without; docs/models.md)",
    )


class DispositionConfig(_Section):
    policy_file: Path | None = Field(None, description="policy YAML; None = shipped default")
    catalogue_file: Path | None = Field(None, description="SKU catalogue CSV or JSON")
    taxonomy_file: Path | None = Field(
        None, description="category mapping YAML (the retailer's categories -> rubric, family, value table)"
    )


class ReturnsConfig(_Section):
    """Expected returns: what the WMS says is coming back, so the bench knows the item from its RMA or LPN."""

    expire_days: float = Field(30.0, gt=0, description="an expected return not inspected by then is forgotten")
    lookup_url: str | None = Field(
        None, description="ask the WMS for an unknown RMA: a URL template, e.g. http://wms.local/rma/{rma}"
    )
    lookup_timeout_s: float = Field(2.0, gt=0, description="give up on the WMS after this long")
    lookup_cache_s: float = Field(300.0, ge=0, description="remember a WMS answer (or its absence) this long")
    demo: bool = Field(
        True, description="on the synthetic bench, announce the return slips' RMAs as expected returns (a demo)"
    )


class LabelsConfig(_Section):
    """The disposition label printed on accept or override."""

    printer: str | None = Field(
        None,
        description="folder:PATH, cups:QUEUE (lp), tcp:HOST:PORT (raw ZPL, port 9100); None = no printing",
    )
    format: Literal["zpl", "pdf"] = "zpl"
    size: Literal["4x6", "2x1"] = "4x6"
    retry_s: float = Field(10.0, gt=0, description="a label that did not print is tried again after this")
    timeout_s: float = Field(5.0, gt=0, description="give up on one attempt to reach the printer after this")
    give_up_h: float = Field(
        24.0, gt=0, description="a label still not printed after this long is marked failed (reprint from the page)"
    )


class WebhookConfig(_Section):
    max_attempts: int = Field(12, ge=1)
    base_delay_s: float = Field(2.0, gt=0)
    timeout_s: float = Field(5.0, gt=0)
    max_delay_s: float = Field(3600.0, gt=0, description="cap on the backoff between two attempts")
    poll_interval_s: float = Field(2.0, gt=0, description="how often the worker looks for due deliveries")
    lease_s: float = Field(60.0, gt=0, description="a leased delivery is retried by anyone after this")
    batch_size: int = Field(16, ge=1, description="deliveries sent concurrently per tick")
    disable_after_days: float = Field(
        3.0, gt=0, description="a receiver failing every attempt for this long is disabled (event webhook.disabled)"
    )
    allow_private_urls: bool = Field(
        False, description="accept receivers on loopback, link-local or private addresses (a receiver on this host)"
    )


class RetentionConfig(_Section):
    """How long the views of an inspection are kept; the inspection's record is never pruned."""

    image_days: int | None = Field(
        None, ge=0, description="prune views and annotated copies older than this; None = keep forever"
    )
    keep_days_by_disposition: dict[str, int | None] = Field(
        default_factory=dict,
        description="per recommended disposition, e.g. RETURN_TO_VENDOR: null (keep for the claim) or 365",
    )
    schedule_hours: float | None = Field(
        24.0, gt=0, description="serve prunes on this period when image_days is set; None = only `inspector prune`"
    )


class RegistryConfig(_Section):
    root: Path | None = Field(None, description="model registry folder; None = models/ (or INSPECTOR_MODELS_DIR)")
    watch: bool = Field(True, description="serve a newly promoted version without a restart")
    poll_s: float = Field(2.0, gt=0, description="how often the server looks at active.json")
    promote_tolerance: float = Field(
        0.02, ge=0, le=1, description="largest per-class AP50 drop a challenger may show and still be promoted"
    )


class DriftConfig(_Section):
    baseline_days: int = Field(7, ge=1, le=90, description="the days before the one watched form its baseline")
    min_inspections: int = Field(20, ge=1, description="a day with fewer inspections raises no warning")
    max_share_change: float = Field(0.15, gt=0, le=1, description="grade or disposition share, absolute change")
    max_confidence_drop: float = Field(0.10, gt=0, le=1, description="mean detection confidence of a class")
    max_override_rate_change: float = Field(0.15, gt=0, le=1, description="override rate of a recommended grade")
    refresh_s: float = Field(300.0, gt=0, description="how often the server recomputes the drift summary")


class SamplingConfig(_Section):
    near_threshold_band: float = Field(0.10, gt=0, le=1, description="|confidence - operating threshold| at most this")
    near_threshold_per_day: int = Field(50, ge=0)
    disagreement_per_day: int = Field(200, ge=0, description="overrides and operator flags")
    rare_class_share: float = Field(0.05, gt=0, le=1, description="a class below this share of detections is rare")
    rare_class_per_day: int = Field(50, ge=0)
    random_per_day: int = Field(10, ge=0, description="unremarkable items, a capped random sample")
    daily_limit: int = Field(250, ge=0, description="all reasons together, per day")
    seed: int = 0


class AnomalyConfig(_Section):
    """Anomaly models learned from good items only, one per product family, beside the detector."""

    enabled: bool = Field(True, description="score items with the promoted anomaly models when there are any")
    model: str | None = Field(
        None, description="anomaly registry version or folder; None = the active anomaly version, if any"
    )
    min_area: float = Field(
        0.005,
        ge=0.0,
        le=1.0,
        description="an unexplained region below this share of the item is ignored",
    )


class FeedbackConfig(_Section):
    drift: DriftConfig = Field(default_factory=DriftConfig)
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)


class Settings(BaseSettings):
    """The station's settings: every section, validated, unknown keys refused."""

    model_config = SettingsConfigDict(env_prefix="INSPECTOR_", env_nested_delimiter="__", extra="forbid")

    station_id: str = "bench-1"
    server: ServerConfig = Field(default_factory=ServerConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    detector: DetectorConfig = Field(default_factory=DetectorConfig)
    camera: CameraConfig = Field(default_factory=CameraConfig)
    station: StationConfig = Field(default_factory=StationConfig)
    grading: GradingConfig = Field(default_factory=GradingConfig)
    disposition: DispositionConfig = Field(default_factory=DispositionConfig)
    webhooks: WebhookConfig = Field(default_factory=WebhookConfig)
    registry: RegistryConfig = Field(default_factory=RegistryConfig)
    feedback: FeedbackConfig = Field(default_factory=FeedbackConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    returns: ReturnsConfig = Field(default_factory=ReturnsConfig)
    labels: LabelsConfig = Field(default_factory=LabelsConfig)
    anomaly: AnomalyConfig = Field(default_factory=AnomalyConfig)
