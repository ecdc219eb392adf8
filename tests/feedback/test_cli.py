"""``inspector feedback export|sample|drift`` on a real store, and replay through another policy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from inspector.api.app import create_app
from inspector.feedback.replay import diff, replay, replay_settings
from inspector.feedback.source import load_inspections
from inspector.paths import PACKAGE_DIR
from inspector.pipeline import build_pipeline
from tests.api.conftest import Api, add_keys, jpeg, make_settings
from tests.api.test_feedback import FixedDetector

pytestmark = pytest.mark.api
ITEM = {"sku": "PH-M250", "category": "phone", "price": 199.0}


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """Four inspections of phones: one overridden, one with a false defect flagged, two left alone."""
    tmp = tmp_path_factory.mktemp("fbcli")
    settings = make_settings(tmp)
    app = create_app(settings, pipeline=build_pipeline(settings, detector=FixedDetector()))
    with TestClient(app) as client:
        api = Api(app=app, client=client, settings=settings, keys=add_keys(app))
        ids = [api.inspect([jpeg(seed=i)], ITEM).json()["id"] for i in range(4)]
        op = api.h("operator")
        r = client.post(
            f"/v1/inspections/{ids[0]}/decision",
            headers=op,
            json={"action": "override", "grade": "D", "reason_code": "missed_damage"},
        )
        assert r.status_code == 201
        r = client.post(f"/v1/inspections/{ids[1]}/flags", headers=op, json={"kind": "false_defect", "detection": 2})
        assert r.status_code == 201
        api.app.state.ids = ids
        yield api


def run(bench: Api, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "inspector", *args, "--data-dir", str(bench.data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )


def test_export_yolo_leaves_out_the_false_defect(bench: Api, tmp_path: Path) -> None:
    ids = bench.app.state.ids
    r = run(bench, "feedback", "export", "--since", "1d", "--format", "yolo", "--out", str(tmp_path / "y"))
    assert r.returncode == 0, r.stderr
    assert "exported 2 views from 2 inspections" in r.stdout and "false_defect 1, override 1" in r.stdout
    labels = {p.stem: p.read_text().splitlines() for p in (tmp_path / "y" / "labels" / "train").glob("*.txt")}
    assert set(labels) == {f"{ids[0]}-v0", f"{ids[1]}-v0"}
    assert len(labels[f"{ids[0]}-v0"]) == 3 and len(labels[f"{ids[1]}-v0"]) == 2, "the dent flagged false is left out"
    assert {line.split()[0] for line in labels[f"{ids[1]}-v0"]} == {"0", "1"}  # item and scratch
    assert yaml.safe_load((tmp_path / "y" / "data.yaml").read_text())["names"][2] == "dent"


def test_export_coco_and_the_sample_on_top(bench: Api, tmp_path: Path) -> None:
    out = tmp_path / "c"
    r = run(bench, "feedback", "export", "--since", "1d", "--format", "coco", "--out", str(out), "--sampled")
    assert r.returncode == 0, r.stderr
    doc = json.loads((out / "annotations" / "instances_train.json").read_text())
    manifest = json.loads((out / "feedback.json").read_text())
    assert len(doc["images"]) == len(manifest["views"]) >= 3, "the sample adds views nobody flagged"
    assert {a["category_id"] for a in doc["annotations"]} <= {1, 2, 3}
    r = run(bench, "feedback", "export", "--since", "1d", "--format", "coco", "--out", str(out))
    assert r.returncode == 2 and "is not empty" in r.stderr and "Traceback" not in r.stderr


def test_nothing_to_export_and_bad_input_are_one_line_errors(bench: Api, tmp_path: Path) -> None:
    r = run(bench, "feedback", "export", "--since", "2099-01-01", "--out", str(tmp_path / "n"))
    assert r.returncode == 2 and "nothing to export" in r.stderr
    r = run(bench, "feedback", "export", "--since", "last week", "--out", str(tmp_path / "n"))
    assert r.returncode == 2 and "--since must be" in r.stderr
    r = run(bench, "feedback", "export", "--format", "voc", "--out", str(tmp_path / "n"))
    assert r.returncode == 2 and "unknown format 'voc'" in r.stderr
    r = subprocess.run(
        [sys.executable, "-m", "inspector", "feedback", "drift", "--data-dir", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "no station database" in r.stderr


def test_sample_and_drift_commands(bench: Api) -> None:
    ids = bench.app.state.ids
    r = run(bench, "feedback", "sample", "--json")
    assert r.returncode == 0, r.stderr
    views = {v["inspection_id"]: v["reasons"] for v in json.loads(r.stdout)["views"]}
    assert views[ids[0]] == ["override"] and views[ids[1]] == ["false_defect"]
    assert set(views) == set(ids), "four views, well under every daily limit"
    r = run(bench, "feedback", "drift", "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["summary"]["inspections"] == 4 and rep["warnings"] == []
    assert sum(rep["summary"]["decided"].values()) == 1 and sum(rep["summary"]["override_rate"].values()) == 1.0


def test_replay_through_another_policy(bench: Api, tmp_path: Path) -> None:
    policy: dict[str, Any] = yaml.safe_load((PACKAGE_DIR / "disposition" / "policy.yaml").read_text())
    policy["version"] = "replay-test"
    for channel in policy["channels"].values():
        channel["handling"] = float(channel.get("handling", 0.0)) + 25.0
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(policy))
    with bench.app.state.store.db.read() as s:
        stored = load_inspections(s)
    settings = replay_settings(bench.settings, model=None, policy=path)
    outcomes, model, version = replay(stored, bench.app.state.store.images, settings, detector=FixedDetector())
    rep = diff(outcomes)
    assert (model, version) == ("fixed-1", "replay-test") and rep["inspections"] == 4
    assert rep["grades_changed"] == 0, "the same detections grade the same"
    assert rep["expected_value"]["difference"] < 0, "every channel costs more to handle"
    same, _, _ = replay(stored, bench.app.state.store.images, bench.settings, detector=FixedDetector())
    assert diff(same)["grades_changed"] == diff(same)["dispositions_changed"] == 0
    assert diff(same)["expected_value"]["difference"] == 0


def test_label_studio_round_trip_takes_back_only_reviewed_tasks(bench: Api, tmp_path: Path) -> None:
    out = tmp_path / "ls"
    r = run(bench, "feedback", "export", "--since", "1d", "--format", "labelstudio", "--out", str(out))
    assert r.returncode == 0, r.stderr
    tasks = json.loads((out / "tasks.json").read_text())
    assert len(tasks) == 2 and all(t["predictions"][0]["model_version"] == "fixed-1" for t in tasks)
    reviewed = tasks[0]
    reviewed["annotations"] = [{"id": 1, "result": reviewed["predictions"][0]["result"][:1], "was_cancelled": False}]
    (out / "tasks.json").write_text(json.dumps(tasks))
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "inspector",
            "data",
            "import",
            str(out),
            "--format",
            "labelstudio",
            "--out",
            str(tmp_path / "back"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert "not_reviewed" in r.stderr and "1 images, 1 boxes" in r.stdout
    labels = list((tmp_path / "back" / "labels" / "train").glob("*.txt"))
    assert [p.stem for p in labels] == [Path(reviewed["data"]["image"]).stem]


def test_views_pruned_by_retention_are_left_out_of_the_export_with_a_note(tmp_path: Path) -> None:
    """An export after `inspector prune` takes the inspections whose views are kept and says what it left out."""
    from datetime import timedelta

    from inspector.config import RetentionConfig
    from inspector.store.retention import prune
    from inspector.types import utcnow

    settings = make_settings(tmp_path)
    app = create_app(settings, pipeline=build_pipeline(settings, detector=FixedDetector()))
    with TestClient(app) as client:
        api = Api(app=app, client=client, settings=settings, keys=add_keys(app))
        ids = [api.inspect([jpeg(seed=i)], ITEM).json()["id"] for i in range(2)]
        for iid in ids:
            r = client.post(
                f"/v1/inspections/{iid}/decision",
                headers=api.h("operator"),
                json={"action": "override", "grade": "D", "reason_code": "missed_damage"},
            )
            assert r.status_code == 201
        store = app.state.store
        old = json.loads(client.get(f"/v1/inspections/{ids[0]}", headers=api.h("operator")).text)
        later = utcnow() + timedelta(days=40)
        for view in old["views"]:
            path = store.images.path_for(view["image"]["sha256"])
            os.utime(path, (later.timestamp() - 35 * 86400,) * 2)
        with store.db.write() as s:
            from inspector.store.models import InspectionRow

            s.query(InspectionRow).filter(InspectionRow.id == ids[1]).update({"created_at": later})
        report = prune(store.db, store.images, RetentionConfig(image_days=30), now=later)
        assert report.inspections == 1
    out = tmp_path / "export"
    r = run(api, "feedback", "export", "--out", str(out), "--format", "yolo")
    assert r.returncode == 0, r.stderr
    assert "left out 1 inspections whose views were pruned" in r.stderr
    assert "from 1 inspections" in r.stdout


def test_export_cvat_marks_the_model_boxes_auto_and_the_drawn_ones_manual(tmp_path: Path) -> None:
    """CVAT gets the model's boxes as ``source="auto"`` to check, the operator's as ``manual``; it imports back."""
    import xml.etree.ElementTree as ET

    settings = make_settings(tmp_path / "station")
    app = create_app(settings, pipeline=build_pipeline(settings, detector=FixedDetector()))
    with TestClient(app) as client:
        api = Api(app=app, client=client, settings=settings, keys=add_keys(app))
        iid = api.inspect([jpeg(seed=7)], ITEM).json()["id"]
        missed = {"kind": "missed_defect", "box": [10, 20, 60, 80], "class_name": "crack"}
        assert client.post(f"/v1/inspections/{iid}/flags", headers=api.h("operator"), json=missed).status_code == 201
        r = run(api, "feedback", "export", "--format", "cvat", "--out", str(tmp_path / "cv"))
    assert r.returncode == 0, r.stderr
    assert "--format cvat" in r.stdout
    (image,) = ET.parse(tmp_path / "cv" / "annotations.xml").getroot().findall("image")
    boxes = [(b.get("label"), b.get("source")) for b in image.findall("box")]
    assert ("crack", "manual") in boxes
    assert len(boxes) == 4 and [s for _, s in boxes].count("auto") == 3, boxes
    r = subprocess.run(
        [sys.executable, "-m", "inspector", "data", "import", str(tmp_path / "cv"), "--out", str(tmp_path / "back")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert "read as cvat" in r.stdout + r.stderr and "4 boxes" in r.stdout + r.stderr
