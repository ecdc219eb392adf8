"""Operator flags, the drift summary in /metrics, and a promotion served without a restart."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from inspector import registry
from inspector.api.app import create_app
from inspector.api.hotswap import ModelWatcher
from inspector.config import RegistryConfig
from inspector.items import ItemInfo
from inspector.labelmap import default_labelmap
from inspector.pipeline import build_pipeline
from inspector.store import inspections as repo
from inspector.types import Detections, Frame
from tests.api.conftest import Api, _untrained_weights, add_keys, jpeg, make_settings, one_pass

pytestmark = pytest.mark.api
NAMES = default_labelmap().names


class FixedDetector:
    """The item and two defects in every frame, whatever it shows: flags need detections to point at."""

    def __init__(self, version: str = "fixed-1", gate: threading.Event | None = None) -> None:
        self.version = version
        self.gate = gate
        self.entered = threading.Event()

    @property
    def model_version(self) -> str:
        return self.version

    @property
    def class_names(self) -> tuple[str, ...]:
        return NAMES

    def detect(self, frames: Sequence[Frame]) -> list[Detections]:
        self.entered.set()
        if self.gate is not None:
            assert self.gate.wait(120)
        return [
            Detections(
                xyxy=np.array([[20, 20, 300, 220], [40, 40, 90, 60], [100, 100, 140, 150]], np.float32),
                confidence=np.array([0.95, 0.55, 0.31], np.float32),
                class_id=np.array([0, NAMES.index("scratch"), NAMES.index("dent")], np.int64),
                class_names=NAMES,
            )
            for _ in frames
        ]


@pytest.fixture
def fixed(tmp_path: Path) -> Iterator[Api]:
    settings = make_settings(tmp_path)
    settings.feedback.drift.min_inspections = 3
    app = create_app(settings, pipeline=build_pipeline(settings, detector=FixedDetector()))
    with TestClient(app) as client:
        yield Api(app=app, client=client, settings=settings, keys=add_keys(app))


def _flag(api: Api, iid: str, body: dict[str, Any], role: str = "operator") -> Any:
    return api.client.post(f"/v1/inspections/{iid}/flags", headers=api.h(role), json=body)


def test_operators_flag_missed_and_false_defects(fixed: Api) -> None:
    rec = fixed.inspect([jpeg(seed=1), jpeg(seed=2)]).json()
    iid = rec["id"]
    missed = _flag(fixed, iid, {"kind": "missed_defect", "view": 1, "box": [10, 20, 60, 80], "class_name": "crack"})
    assert missed.status_code == 201, missed.text
    assert missed.json()["box"] == [10, 20, 60, 80] and missed.json()["actor"] == "test operator"
    false = _flag(fixed, iid, {"kind": "false_defect", "view": 0, "detection": 2, "note": "a reflection"})
    assert false.status_code == 201, false.text
    assert false.json()["class_name"] == "dent", "the class is taken from the detection pointed at"
    assert _flag(fixed, iid, {"kind": "missed_defect"}).status_code == 201, "box and class are optional"

    listed = fixed.client.get(f"/v1/inspections/{iid}/flags", headers=fixed.h("wms")).json()["items"]
    assert [(f["kind"], f["view"], f["detection"]) for f in listed] == [
        ("missed_defect", 1, None),
        ("false_defect", 0, 2),
        ("missed_defect", 0, None),
    ]
    after = fixed.client.get(f"/v1/inspections/{iid}", headers=fixed.h("wms")).json()
    assert after["decisions"] == [] and after["final"]["decided"] is False, "a flag is not a decision"
    assert after["grade"] == rec["grade"] and after["views"] == rec["views"]


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"kind": "false_defect", "view": 0, "detection": 3}, 422, "no detection 3"),
        ({"kind": "false_defect", "view": 0}, 422, "points at one of the view's detections"),
        ({"kind": "missed_defect", "view": 2}, 422, "no view 2"),
        ({"kind": "missed_defect", "box": [0, 0, 400, 100]}, 422, "not inside the 320x240 view"),
        ({"kind": "missed_defect", "box": [50, 0, 10, 100]}, 422, "x1 < x2"),
        ({"kind": "missed_defect", "class_name": "rust"}, 422, "unknown class 'rust'"),
        ({"kind": "missed_defect", "detection": 1}, 422, "give a box, not a detection"),
        ({"kind": "praise"}, 422, "kind"),
    ],
)
def test_a_flag_that_does_not_fit_is_refused_and_nothing_is_stored(
    fixed: Api, body: dict[str, Any], status: int, needle: str
) -> None:
    iid = fixed.inspect([jpeg()]).json()["id"]
    r = _flag(fixed, iid, body)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert needle in r.text
    assert fixed.client.get(f"/v1/inspections/{iid}/flags", headers=fixed.h()).json()["items"] == []


def test_flags_need_an_operator_key_and_a_known_inspection(fixed: Api) -> None:
    iid = fixed.inspect([jpeg()]).json()["id"]
    assert _flag(fixed, iid, {"kind": "missed_defect"}, role="wms").status_code == 403
    unknown = "00000000-0000-4000-8000-000000000000"
    assert _flag(fixed, unknown, {"kind": "missed_defect"}).status_code == 404
    assert fixed.client.get(f"/v1/inspections/{unknown}/flags", headers=fixed.h()).status_code == 404


def _backdate(api: Api, served: dict[str, Any], days: int, n: int, grade: str) -> None:
    """Copies of a served inspection, ``days`` ago, with another grade: yesterday's mix."""
    with api.app.state.store.db.write() as s:
        for i in range(n):
            body = json.loads(json.dumps(served))
            body["id"] = f"00000000-0000-4000-8000-{days:04d}{i:08d}"
            body["created_at"] = (datetime.now(UTC) - timedelta(days=days)).isoformat()
            body["grade"]["level"] = grade
            repo.save_inspection(
                s, body, images=[], source="test", request_hash="x", created_by=None, idempotency_key=None
            )


def test_drift_shows_in_the_summary_and_in_metrics(fixed: Api) -> None:
    served = [fixed.inspect([jpeg(seed=i)]).json() for i in range(3)]
    today = served[0]["grade"]["level"]
    other = "D" if today != "D" else "A"
    quiet = fixed.client.get("/v1/feedback/drift?fresh=true", headers=fixed.h("wms")).json()
    assert quiet["warnings"] == [] and quiet["summary"]["inspections"] == 3 and quiet["baseline_days"] == []
    _backdate(fixed, served[0], days=1, n=4, grade=other)
    rep = fixed.client.get("/v1/feedback/drift?fresh=true", headers=fixed.h("wms")).json()
    assert len(rep["baseline_days"]) == 1
    found = {(w["metric"], w["key"]) for w in rep["warnings"]}
    assert {("grade_share", today), ("grade_share", other)} <= found
    assert rep["summary"]["mean_confidence"]["dent"] == pytest.approx(0.31, abs=1e-4)
    metrics = fixed.client.get("/metrics", headers=fixed.h("wms")).text
    assert f'inspector_drift_warning{{key="{other}",metric="grade_share"}} 1.0' in metrics
    assert f"inspector_drift_warnings {float(len(rep['warnings']))}" in metrics
    assert 'inspector_mean_confidence{class_name="scratch"}' in metrics


# ------------------------------------------------------------------ hot swap


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A registry with two loadable (untrained) versions; A is active."""
    base = tmp_path_factory.mktemp("swap")
    weights = _untrained_weights(base / "untrained.pt")
    root = base / "models"
    for name, created in (("swap-a", "2026-12-01T00:00:00"), ("swap-b", "2026-12-02T00:00:00")):
        registry.register(
            name, weights=weights, meta={"created_at": created, "imgsz": 64}, card=f"# {name}\n", root=root
        )
    registry.promote("swap-a", by="test", root=root)
    return root


def test_a_promotion_is_served_without_a_restart(two_versions: Path, tmp_path: Path) -> None:
    root = tmp_path / "models"
    shutil.copytree(two_versions, root)
    settings = make_settings(tmp_path)
    settings.registry = RegistryConfig(root=root, poll_s=0.1)
    settings.detector.imgsz = 64
    app = create_app(settings)
    with TestClient(app) as client:
        keys = add_keys(app)
        h = {"X-API-Key": keys["admin"]}
        assert client.get("/v1/models", headers=h).json()["serving"] == "swap-a"
        registry.promote("swap-b", by="test", root=root)
        deadline = time.monotonic() + 60  # a loaded machine loads a model slowly
        while client.get("/v1/models", headers=h).json()["serving"] != "swap-b":
            assert time.monotonic() < deadline, "the promotion was not picked up"
            time.sleep(0.1)
        models = client.get("/v1/models", headers=h).json()
        assert models["active"] == "swap-b" and [m["version"] for m in models["models"] if m["serving"]] == ["swap-b"]
        r = client.post("/v1/inspections", headers=h, files=[("images", ("a.jpg", jpeg(), "image/jpeg"))])
        assert r.status_code == 201 and r.json()["versions"]["model"] == "swap-b"


def test_the_reload_endpoint_serves_the_promotion_at_once(two_versions: Path, tmp_path: Path) -> None:
    root = tmp_path / "models"
    shutil.copytree(two_versions, root)
    settings = make_settings(tmp_path)
    settings.registry = RegistryConfig(root=root, watch=False)  # no polling: only the endpoint swaps
    settings.detector.imgsz = 64
    app = create_app(settings)
    with TestClient(app) as client:
        keys = add_keys(app)
        h = {"X-API-Key": keys["admin"]}
        registry.promote("swap-b", by="test", root=root)
        time.sleep(0.5)
        assert client.get("/v1/models", headers=h).json()["serving"] == "swap-a"
        assert client.post("/v1/models/reload", headers={"X-API-Key": keys["operator"]}).status_code == 403
        out = client.post("/v1/models/reload", headers=h).json()
        assert out == {**out, "swapped": True, "serving": "swap-b", "previous": "swap-a"}
        assert out["anomaly"] == {"swapped": False, "serving": None, "reason": None}, "no anomaly model promoted here"
        assert client.get("/v1/models", headers=h).json()["serving"] == "swap-b"
        assert client.post("/v1/models/reload", headers=h).json()["swapped"] is False, "nothing new: no reload"


def test_a_broken_promotion_leaves_the_old_model_serving(two_versions: Path, tmp_path: Path) -> None:
    root = tmp_path / "models"
    shutil.copytree(two_versions, root)
    settings = make_settings(tmp_path)
    settings.registry = RegistryConfig(root=root)
    settings.detector = one_pass(imgsz=64)
    pipeline = build_pipeline(settings)
    from inspector.api.service import PipelineSlot

    slot = PipelineSlot()
    slot.set(pipeline)
    watcher = ModelWatcher(settings, slot)
    watcher.prime()
    registry.promote("swap-b", by="test", root=root)
    (root / "swap-b" / "weights.pt").write_bytes(b"corrupt")
    out = watcher.check()
    assert out["swapped"] is False and out["serving"] == "swap-a"
    assert pipeline.model_version == "swap-a"


def test_a_model_is_warmed_when_loaded_and_before_it_is_swapped_in(
    two_versions: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The set-up of a backend's first call (seconds for ultralytics) is paid at load, not by an item."""
    import inspector.detect as detect
    import inspector.pipeline as pipeline_module
    from inspector.api.service import PipelineSlot

    root = tmp_path / "models"
    shutil.copytree(two_versions, root)
    settings = make_settings(tmp_path)
    settings.registry = RegistryConfig(root=root)
    settings.detector = one_pass(imgsz=64, warmup=2)
    slot = PipelineSlot()
    calls: list[tuple[str, tuple[int, int], int, str | None]] = []
    real = detect.warm_up

    def spy(detector: Any, size: tuple[int, int], runs: int = 1) -> float:
        serving = slot.pipeline.model_version if slot.pipeline is not None else None
        calls.append((detector.model_version, size, runs, serving))
        seconds = real(detector, size, runs)
        assert seconds > 0
        return seconds

    monkeypatch.setattr(detect, "warm_up", spy)
    monkeypatch.setattr(pipeline_module, "warm_up", spy)
    pipeline = build_pipeline(settings)
    assert calls == [("swap-a", (640, 480), 2, None)]
    slot.set(pipeline)
    watcher = ModelWatcher(settings, slot)
    watcher.prime()
    registry.promote("swap-b", by="test", root=root)
    assert watcher.check()["swapped"] is True
    assert calls[-1] == ("swap-b", (640, 480), 2, "swap-a"), "warmed while the old model still served"
    assert pipeline.model_version == "swap-b"

    settings.detector = one_pass(imgsz=64, warmup=0)
    registry.promote("swap-a", by="test", root=root)
    assert watcher.check()["swapped"] is True
    assert len(calls) == 2, "warmup: 0 loads without a warm-up run"


@pytest.mark.parametrize(("configured", "expected"), [({}, (96, 0.4)), ({"imgsz": 64, "confidence": 0.3}, (64, 0.3))])
def test_a_swapped_in_version_runs_at_its_own_size_and_confidence_unless_configured(
    two_versions: Path, tmp_path: Path, configured: dict[str, Any], expected: tuple[int, float]
) -> None:
    """A hot swap loads the promoted version as a restart would: with its own serving hints."""
    from inspector.api.service import PipelineSlot

    root = tmp_path / "models"
    shutil.copytree(two_versions, root)
    meta_path = root / "swap-b" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "imgsz": 96, "operating_confidence": 0.4}))
    settings = make_settings(tmp_path)
    settings.registry = RegistryConfig(root=root)
    settings.detector = one_pass(warmup=0, **configured)
    pipeline = build_pipeline(settings)
    assert (pipeline.detector.imgsz, pipeline.detector.confidence) == (
        configured.get("imgsz", 64),
        configured.get("confidence", 0.25),
    ), "swap-a at its own size, or as configured"
    slot = PipelineSlot()
    slot.set(pipeline)
    watcher = ModelWatcher(settings, slot)
    watcher.prime()
    registry.promote("swap-b", by="test", root=root)
    assert watcher.check()["swapped"] is True
    assert (pipeline.detector.imgsz, pipeline.detector.confidence) == expected


def test_an_inspection_in_flight_finishes_on_the_model_it_started_with(two_versions: Path, tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    settings.registry = RegistryConfig(root=two_versions)
    gate = threading.Event()
    old = FixedDetector("old", gate=gate)
    pipeline = build_pipeline(settings, detector=old)
    from inspector.api.service import PipelineSlot

    slot = PipelineSlot()
    slot.set(pipeline)
    watcher = ModelWatcher(settings, slot)
    frames = [Frame(image=np.zeros((64, 64, 3), np.uint8), camera_id="c")]
    results: dict[str, str] = {}

    def run(name: str) -> None:
        results[name] = pipeline.inspect(frames, ItemInfo(), inspection_id=name).model_version or ""

    swapping = threading.Event()
    set_detector = pipeline.set_detector

    def watched_set_detector(detector: Any) -> None:
        swapping.set()  # the new model is loaded; now it waits for the pipeline's lock
        set_detector(detector)

    pipeline.set_detector = watched_set_detector  # type: ignore[method-assign]
    first = threading.Thread(target=run, args=("first",))
    first.start()
    assert old.entered.wait(60), "the first inspection is inside the detector"
    swapper = threading.Thread(target=watcher.check, kwargs={"force": True})
    swapper.start()
    assert swapping.wait(120), "the watcher tried to swap"
    time.sleep(0.3)
    assert pipeline.model_version == "old", "the swap waits for the inspection in flight"
    gate.set()
    first.join(60)
    swapper.join(60)
    assert results["first"] == "old"
    assert pipeline.model_version == "swap-a"
    run("second")
    assert results["second"] == "swap-a"


def test_a_station_started_without_a_model_comes_up_with_the_first_promotion(
    two_versions: Path, tmp_path: Path
) -> None:
    root = tmp_path / "models"
    shutil.copytree(two_versions, root)
    (root / "active.json").unlink()
    (root / "promotions.jsonl").unlink()
    settings = make_settings(tmp_path)
    settings.registry = RegistryConfig(root=root, poll_s=0.1)
    settings.detector.imgsz = 64
    app = create_app(settings)
    with TestClient(app) as client:
        h = {"X-API-Key": add_keys(app)["admin"]}
        assert client.get("/v1/ready", headers=h).status_code == 503
        registry.promote("swap-b", by="test", root=root)
        deadline = time.monotonic() + 60
        while client.get("/v1/ready", headers=h).status_code != 200:
            assert time.monotonic() < deadline, "the first promotion was not picked up"
            time.sleep(0.1)
        assert client.get("/v1/models", headers=h).json()["serving"] == "swap-b"
