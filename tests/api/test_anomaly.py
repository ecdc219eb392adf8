"""The anomaly model through the API: the per-view object, the heat map, readiness, the operator's confirmation."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from fastapi.testclient import TestClient

from inspector.config import Settings
from inspector.pipeline import Pipeline, build_pipeline
from tests.api.conftest import Api, add_keys, make_settings, served_app
from tests.builders import MedianColourScorer, dets, item_photo
from tests.unit.test_pipeline import ITEM, ScriptedDetector

PHONE = {"sku": "PH-M250"}
BLOTCH = (300, 200, 330, 230)


def blotched_png() -> bytes:
    ok, buf = cv2.imencode(".png", item_photo(BLOTCH).image)
    assert ok
    return bytes(buf.tobytes())


def start(settings: Settings, pipeline: Pipeline) -> Iterator[Api]:
    app = served_app(settings, pipeline)
    with TestClient(app) as client:
        yield Api(app=app, client=client, settings=settings, keys=add_keys(app))


@pytest.fixture
def scored(tmp_path: Path) -> Iterator[Api]:
    """An app whose pipeline finds the item box only, with the stand-in anomaly model for phones."""
    settings = make_settings(tmp_path)
    pipeline = build_pipeline(settings, detector=ScriptedDetector(dets([ITEM])))
    pipeline.anomaly = MedianColourScorer()
    yield from start(settings, pipeline)


def test_the_inspection_carries_the_anomaly_and_its_heat_map(scored: Api) -> None:
    r = scored.inspect([blotched_png()], PHONE)
    assert r.status_code == 201, r.text
    body = r.json()
    anomaly = body["views"][0]["anomaly"]
    assert anomaly["model_version"] == "median-colour-1" and anomaly["anomalous"] is True
    assert [reg["xyxy"] for reg in anomaly["regions"]] == [[300.0, 200.0, 330.0, 230.0]]
    assert body["grade"]["level"] == "B"
    assert "unexplained_damage" in [reason["code"] for reason in body["grade"]["reasons"]]

    heat = scored.client.get(anomaly["heat_url"], headers=scored.h("operator"))
    assert heat.status_code == 200 and heat.headers["content-type"] == "image/png"
    picture = cv2.imdecode(np.frombuffer(heat.content, np.uint8), cv2.IMREAD_COLOR)
    assert picture is not None and picture.shape == (480, 640, 3)
    original = item_photo(BLOTCH).image
    assert np.abs(picture[215, 315].astype(int) - original[215, 315].astype(int)).sum() > 60  # coloured in
    assert (picture[5, 5] == original[5, 5]).all()  # the bench outside the item is left as it is

    ready = scored.client.get("/v1/ready", headers=scored.h()).json()
    assert ready["ready"] is True
    assert ready["checks"]["anomaly"] | {"detail": ""} == {
        "ok": True,
        "served": True,
        "version": "median-colour-1",
        "families": ["phone"],
        "detail": "",
    }


def test_an_unscored_view_has_no_heat_map(scored: Api) -> None:
    body = scored.inspect([blotched_png()], {"sku": "LT-W140"}).json()  # a laptop: no model for the family
    assert body["views"][0]["anomaly"] is None
    r = scored.client.get(f"/v1/inspections/{body['id']}/views/0/anomaly.png", headers=scored.h())
    assert r.status_code == 404 and r.json()["code"] == "not_found"


@pytest.mark.parametrize("fault", ["missing", "corrupt meta", "corrupt file"])
def test_a_bad_anomaly_model_is_served_without(tmp_path: Path, fault: str) -> None:
    model = tmp_path / "anomaly-model"
    if fault == "corrupt meta":
        model.mkdir()
        (model / "meta.json").write_text("{not json")
    elif fault == "corrupt file":
        model = tmp_path / "anomaly.pt"
        model.write_bytes(b"not a model")
    settings = make_settings(tmp_path)
    settings = settings.model_copy(update={"anomaly": settings.anomaly.model_copy(update={"model": str(model)})})
    pipeline = build_pipeline(settings, detector=ScriptedDetector(dets([ITEM])))
    for api in start(settings, pipeline):
        ready = api.client.get("/v1/ready", headers=api.h())
        assert ready.status_code == 200
        check = ready.json()["checks"]["anomaly"]
        assert check["ok"] is True and check["served"] is False
        assert check["detail"].startswith("anomaly model not loaded: ") and str(model) in check["detail"]
        r = api.inspect([blotched_png()], PHONE)
        assert r.status_code == 201 and r.json()["views"][0]["anomaly"] is None
        assert r.json()["grade"]["level"] == "A"


@pytest.mark.parametrize(
    ("flag", "status"),
    [
        ({"kind": "anomaly", "region": 0, "class_name": "burn_mark"}, 201),
        ({"kind": "anomaly", "region": 1, "class_name": "burn_mark"}, 422),  # there is one region only
        ({"kind": "anomaly", "region": 0}, 422),  # the operator names the class
        ({"kind": "anomaly", "region": 0, "class_name": "Burn Mark"}, 422),
        ({"kind": "anomaly", "region": 0, "class_name": "burn", "box": [1, 1, 5, 5]}, 422),
        ({"kind": "missed_defect", "region": 0}, 422),
    ],
)
def test_anomaly_flags(scored: Api, flag: dict[str, object], status: int) -> None:
    iid = scored.inspect([blotched_png()], PHONE).json()["id"]
    r = scored.client.post(f"/v1/inspections/{iid}/flags", headers=scored.h("operator"), json=flag)
    assert r.status_code == status, r.text
    if status == 201:
        assert r.json()["box"] == [300.0, 200.0, 330.0, 230.0] and r.json()["class_name"] == "burn_mark"


def test_a_confirmed_region_is_exported_as_a_labelled_box(scored: Api, tmp_path: Path) -> None:
    iid = scored.inspect([blotched_png()], PHONE).json()["id"]
    flag = {"kind": "anomaly", "region": 0, "class_name": "burn_mark"}
    r = scored.client.post(f"/v1/inspections/{iid}/flags", headers=scored.h("operator"), json=flag)
    assert r.status_code == 201
    out = tmp_path / "export"
    args = ["feedback", "export", "--since", "1d", "--format", "yolo", "--out", str(out)]
    r = subprocess.run(
        [sys.executable, "-m", "inspector", *args, "--data-dir", str(scored.data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    names = yaml.safe_load((out / "data.yaml").read_text())["names"]
    burn = [k for k, v in names.items() if v == "burn_mark"]
    rows = [line.split() for line in (out / "labels" / "train" / f"{iid}-v0.txt").read_text().splitlines()]
    assert [row[0] for row in rows] == ["0", str(burn[0])]  # the item, and the region as the class named
    cx, cy, w, h = (float(v) for v in rows[1][1:])
    assert (cx * 640, cy * 480, w * 640, h * 480) == pytest.approx((315, 215, 30, 30), abs=0.5)
