"""The whole loop on synthetic data, in one run of a few tens of seconds:

inspections at a running station -> operator overrides and flags -> export with pre-annotations ->
a scripted relabel (the synthetic ground truth plays the labeller) -> import -> retrain a tiny model
from the champion -> compare with bootstrap intervals -> guarded promotion -> the same running
station serves the new version, no restart. Then replay the record through the old model.

Everything lives under tmp_path with its own registry; the repository's models/ is never touched.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from inspector import registry
from inspector.api.app import create_app
from inspector.config import RegistryConfig, Settings
from inspector.data.formats.yolo import label_path
from inspector.training.compare import regressions
from inspector.training.recipe import load_recipe
from tests.api.conftest import add_keys, make_settings

pytestmark = pytest.mark.api

IMGSZ = 128
RECIPE = f"""\
name: loop
description: A one-epoch model for the learning-loop test.
model: yolov8n.yaml
init: scratch
imgsz: {IMGSZ}
epochs: 1
batch: 8
operating_confidence: 0.05
target: {{metric: map50, min: 0.5, measured_on: the tiny val split}}
train_args: {{mosaic: 0.0, plots: false}}
"""


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "inspector", *args],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "COLUMNS": "200", **env},
    )


def gt_boxes(image: Path) -> list[tuple[int, float, float, float, float]]:
    """The synthetic ground truth of an image: (class id, cx, cy, w, h), normalised."""
    rows = []
    for line in label_path(image).read_text().splitlines():
        c, *v = line.split()
        rows.append((int(c), *(float(x) for x in v)))
    return rows  # type: ignore[return-value]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from inspector.data.synth import generate
    from inspector.training.run import train_version

    base = tmp_path_factory.mktemp("loop")
    data = generate(base / "synth", 26, seed=11, size=(160, 120), val=0.25, test=0.3, progress=False, workers=1)
    (base / "loop.yaml").write_text(RECIPE)
    root = base / "models"
    train_version(data, load_recipe(base / "loop.yaml"), root=root, version="loop-a", work_dir=base / "runs", threads=2)
    registry.promote("loop-a", by="test", root=root)

    settings: Settings = make_settings(base)
    settings.registry = RegistryConfig(root=root, poll_s=0.2)
    settings.detector.imgsz = IMGSZ
    settings.detector.confidence = 0.05
    app = create_app(settings)  # the pipeline loads the active version from the temporary registry
    with TestClient(app) as client:
        yield {
            "base": base,
            "data": data,
            "root": root,
            "client": client,
            "app": app,
            "keys": add_keys(app),
            "env": {"INSPECTOR_REGISTRY__ROOT": str(root)},
        }


def test_the_loop_end_to_end(world: dict[str, Any]) -> None:
    base, data, root, client, keys, env = (world[k] for k in ("base", "data", "root", "client", "keys", "env"))
    wms, operator = ({"X-API-Key": keys[r]} for r in ("wms", "operator"))
    data_dir = str(base / "data")

    # 1. the station inspects the test and val splits
    shots = sorted((data.parent / "images" / "test").glob("*.jpg")) + sorted(
        (data.parent / "images" / "val").glob("*.jpg")
    )
    assert len(shots) >= 6
    source: dict[str, Path] = {}
    for p in shots:
        r = client.post("/v1/inspections", headers=wms, files=[("images", (p.name, p.read_bytes(), "image/jpeg"))])
        assert r.status_code == 201, r.text
        assert r.json()["versions"]["model"] == "loop-a"
        source[r.json()["id"]] = p
    ids = list(source)

    # 2. the operator disagrees: overrides on two, a missed defect drawn on two, a plain accept on one
    for iid in ids[:2]:
        r = client.post(
            f"/v1/inspections/{iid}/decision",
            headers=operator,
            json={"action": "override", "grade": "C", "reason_code": "missed_damage"},
        )
        assert r.status_code == 201, r.text
    client.post(f"/v1/inspections/{ids[4]}/decision", headers=operator, json={"action": "accept"})
    flagged = []
    for iid in ids[2:]:
        defects = [b for b in gt_boxes(source[iid]) if b[0] != 0]
        if not defects or len(flagged) == 2:
            continue
        c, cx, cy, w, h = defects[0]
        box = [(cx - w / 2) * 160, (cy - h / 2) * 120, (cx + w / 2) * 160, (cy + h / 2) * 120]
        defect = ["item", "scratch", "dent", "crack", "stain", "tear", "missing_part", "broken_seal"][c]
        r = client.post(
            f"/v1/inspections/{iid}/flags",
            headers=operator,
            json={"kind": "missed_defect", "view": 0, "box": [round(v, 1) for v in box], "class_name": defect},
        )
        assert r.status_code == 201, r.text
        flagged.append(iid)
    assert flagged, "the synthetic images have defects to miss"

    # 3. export the candidates for Label Studio, the model's boxes as pre-annotations
    export = base / "to-label"
    r = cli(
        "feedback",
        "export",
        "--since",
        "1d",
        "--format",
        "labelstudio",
        "--out",
        str(export),
        "--data-dir",
        data_dir,
        env=env,
    )
    assert r.returncode == 0, r.stderr
    manifest = json.loads((export / "feedback.json").read_text())
    got = {row["inspection_id"]: row["reasons"] for row in manifest["views"]}
    assert got == {**{i: ["override"] for i in ids[:2]}, **{i: ["missed_defect"] for i in flagged}}
    tasks = json.loads((export / "tasks.json").read_text())
    assert all("annotations" not in t and t["predictions"][0]["model_version"] == "loop-a" for t in tasks)
    for t in tasks:
        if t["data"]["inspection_id"] in flagged:
            manual = [r for r in t["predictions"][0]["result"] if r["origin"] == "manual"]
            assert len(manual) == 1, "the box the operator drew is among the pre-annotations"

    # 4. the labeller corrects every task (here: the synthetic ground truth), and it comes back
    for t in tasks:
        truth = gt_boxes(source[t["data"]["inspection_id"]])
        result = [
            {
                "type": "rectanglelabels",
                "from_name": "label",
                "to_name": "image",
                "original_width": 160,
                "original_height": 120,
                "value": {
                    "x": (cx - w / 2) * 100,
                    "y": (cy - h / 2) * 100,
                    "width": w * 100,
                    "height": h * 100,
                    "rectanglelabels": [manifest["names"][c]],
                },
            }
            for c, cx, cy, w, h in truth
        ]
        t["annotations"] = [{"id": 1, "result": result, "was_cancelled": False}]
    (export / "tasks.json").write_text(json.dumps(tasks))
    corrected = base / "corrected"
    r = cli(
        "data", "import", str(export), "--format", "labelstudio", "--out", str(corrected), "--link", "copy", env=env
    )
    assert r.returncode == 0, r.stderr
    imported = sorted((corrected / "labels" / "train").glob("*.txt"))
    assert len(imported) == len(tasks)
    for lp in imported:
        iid = lp.stem.rsplit("-v", 1)[0]
        assert len(lp.read_text().splitlines()) == len(gt_boxes(source[iid]))

    # 5. retrain from the champion on its data plus the corrected views
    from inspector.training.run import train_version

    mixed = base / "mixed.yaml"
    mixed.write_text(
        f"path: {data.parent}\ntrain: [images/train, {corrected / 'images' / 'train'}]\nval: images/val\n"
        + "names:\n"
        + "".join(f"  {i}: {n}\n" for i, n in enumerate(manifest["names"]))
    )
    recipe = load_recipe(base / "loop.yaml").with_overrides(init=str(root / "loop-a" / "weights.pt"), seed=1)
    out = train_version(mixed, recipe, root=root, version="loop-b", work_dir=base / "runs", threads=2)
    assert out.meta["dataset"]["splits"]["train"]["images"] > len(list((data.parent / "images" / "train").glob("*")))

    # 6. champion against challenger, per class, with paired bootstrap intervals
    r = cli(
        "models",
        "compare",
        "loop-a",
        "loop-b",
        "--data",
        str(data),
        "--split",
        "val",
        "--resamples",
        "200",
        "--models-dir",
        str(root),
        "--json",
        env=env,
    )
    assert r.returncode == 0, r.stderr
    comparison = json.loads(r.stdout)
    assert comparison["resamples"] == 200 and comparison["images"] == len(
        list((data.parent / "images" / "val").glob("*"))
    )
    assert comparison["per_class"]["item"]["instances"] > 0
    for row in comparison["per_class"].values():
        lo, hi = row["delta_ci"]
        assert lo is not None and lo <= hi
    from inspector.training.ultralytics import validate

    ev = validate(root / "loop-a" / "weights.pt", data, split="val", imgsz=IMGSZ, threads=2, plots=False)
    assert comparison["map50"]["champion"] == pytest.approx(ev["map50"], abs=1e-6), "the same mAP as ultralytics'"
    assert comparison["map50_95"]["champion"] == pytest.approx(ev["map50_95"], abs=1e-6)
    assert registry.load_meta("loop-b", root)["comparisons"]["loop-a"]["map50"] == comparison["map50"]

    # 7. the guarded promotion: refused when a class got worse, then forced on the record; else it passes
    worse = regressions(comparison, 0.0)
    r = cli("models", "promote", "loop-b", "--tolerance", "0", "--models-dir", str(root), env=env)
    if worse:
        assert r.returncode == 2 and "promotion refused" in r.stderr
        assert registry.active_version(root) == "loop-a"
        r = cli(
            "models",
            "promote",
            "loop-b",
            "--tolerance",
            "0",
            "--force",
            "--by",
            "e2e",
            "--reason",
            "test",
            "--models-dir",
            str(root),
            env=env,
        )
    assert r.returncode == 0, r.stderr
    record = registry.promotions(root)[-1]
    assert record["version"] == "loop-b" and record["guard"]["passed"] is (not worse)
    assert record["guard"].get("forced_by") == ("e2e" if worse else None)

    # 8. the running station serves the new version for the next inspection, without a restart
    deadline = time.monotonic() + 60
    while client.get("/v1/models", headers=wms).json()["serving"] != "loop-b":
        assert time.monotonic() < deadline, "the station did not pick up the promotion"
        time.sleep(0.1)
    r = client.post("/v1/inspections", headers=wms, files=[("images", ("x.jpg", shots[0].read_bytes(), "image/jpeg"))])
    assert r.status_code == 201 and r.json()["versions"]["model"] == "loop-b"

    # 9. replay: the record through the old model again changes nothing; the summary counts what is stored
    r = cli("replay", "--since", "1d", "--model", "loop-a", "--data-dir", data_dir, "--json", env=env)
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["inspections"] == len(ids) + 1 and rep["model"] == "loop-a"
    # the last one was inspected by loop-b: only it may differ
    assert rep["grades_changed"] <= 1 and rep["dispositions_changed"] <= 1
    drift = client.get("/v1/feedback/drift", headers=wms).json()
    assert drift["summary"]["inspections"] == len(ids) + 1
    assert drift["summary"]["decided"] and sum(drift["summary"]["decided"].values()) == 3
