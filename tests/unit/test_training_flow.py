"""A tiny real run end to end: train -> register -> evaluate -> promote -> detect, and a broken entry.

Everything uses a temporary registry (never the shipped models/), 16 images at 64 px and
one epoch, so the whole module stays within a few tens of seconds on two cores.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import pytest

from inspector import registry
from inspector.config import DetectorConfig
from inspector.detect import load_detector
from inspector.labelmap import default_labelmap
from inspector.training.recipe import load_recipe
from inspector.types import Detections, Frame
from tests import netguard
from tests.builders import frame, tiny_yolo_dataset

RECIPE = """\
name: tiny
description: A one-epoch model for tests.
model: yolov8n.yaml
init: scratch
imgsz: 64
epochs: 1
batch: 8
precision: bf16
operating_confidence: 0.25
target: {metric: map50, min: 0.5, measured_on: the tiny val split}
train_args: {mosaic: 0.0, plots: false}
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """One tiny training run shared by the tests of this module: (registry root, data.yaml, version)."""
    from inspector.training.run import train_version

    base = tmp_path_factory.mktemp("flow")
    data = tiny_yolo_dataset(base / "ds", n_train=16, n_val=8, size=64)
    (base / "tiny.yaml").write_text(RECIPE)
    root = base / "models"
    events: list[object] = []
    before = list(netguard.ATTEMPTS)
    outcome = train_version(
        data,
        load_recipe(base / "tiny.yaml"),
        root=root,
        version="tiny-1",
        work_dir=base / "runs",
        threads=2,
        report=events.append,
    )
    assert netguard.ATTEMPTS == before, "training tried to reach the network"
    assert outcome.version == "tiny-1"
    assert any(getattr(e, "kind", "") == "epoch" for e in events), "progress events reach the reporter"
    return root, data, outcome.version


def test_training_registers_a_complete_version(trained: tuple[Path, Path, str]) -> None:
    root, _, version = trained
    status = registry.inspect_version(version, root)
    assert status.ok, status.problems
    meta = status.meta
    assert meta["dataset"]["splits"]["train"]["images"] == 16
    assert meta["dataset"]["sha256"] and meta["git"].keys() == {"commit", "dirty"}
    assert meta["hardware"]["threads"] == 2 and meta["training"]["seconds"] > 0
    assert meta["training"]["epochs_run"] == 1
    # the epoch kept was chosen under the suppression the station serves, not ultralytics' 0.7
    assert meta["training"]["train_args"]["iou"] == DetectorConfig().iou
    assert meta["training"]["images_seen"] == 16  # two batches of 8, one epoch
    assert meta["training"]["images_per_s"] > 0 and meta["hardware"]["conv_gflops_at_start"] > 0
    from inspector.training.ultralytics import cpu_supports_bf16

    # the recipe asks for bf16; it is used (and recorded) only where the CPU has native kernels
    assert meta["training"]["precision"] == ("bf16" if cpu_supports_bf16() else "fp32")
    assert meta["software"]["ultralytics"]
    assert (status.path / "recipe.yaml").read_text().startswith("name: tiny")
    assert (status.path / "weights.pt").stat().st_size < 15_000_000
    # the per-epoch log is stored, so `inspector models plots` can draw the training curves again
    assert meta["training"]["curves"]["epoch"] == [1.0] and len(meta["training"]["curves"]["train/box_loss"]) == 1
    assert (status.path / "training_curves.png").stat().st_size > 0


def test_evaluate_promote_detect(trained: tuple[Path, Path, str]) -> None:
    from inspector.training.evaluate import evaluate_version, evaluation_text

    root, data, version = trained
    ev = evaluate_version(
        version, data, split="val", root=root, threads=2, latency_images=3, work_dir=root.parent / "runs"
    )
    for key in ("map50", "map50_95", "precision", "recall"):
        assert 0.0 <= ev[key] <= 1.0
    assert ev["images"] == 8 and ev["instances"] == 8
    assert ev["nms_iou"] == DetectorConfig().iou  # mAP of the boxes the station would serve
    assert ev["per_class"]["item"]["instances"] == 8
    matrix = ev["confusion_matrix"]["matrix"]
    assert len(matrix) == 9 and sum(row[0] for row in matrix) == 8  # every true item box lands in column 0
    assert ev["latency_ms"]["images"] == 3 and ev["latency_ms"]["median"] > 0
    op = ev["operating_point"]  # the served detector over the split: every picture labelled with an item only
    assert op["per_class"]["item"]["truths"] == 8 and op["thresholds"] is None and op["confidence"] == 0.25
    assert op["pictures"]["clean"] == 8 and op["pictures"]["detection_rate"] is None and op["contact_sheet"] is None

    vdir = root / version
    stored = json.loads((vdir / "eval-ds-val.json").read_text())
    assert stored["map50"] == ev["map50"]
    card = (vdir / "card.md").read_text()
    body = evaluation_text(version, "ds-val", ev).split("\n", 2)[2].strip()
    assert body in card
    assert (vdir / "pr_curve.png").stat().st_size > 0 and (vdir / "confusion_matrix.png").stat().st_size > 0
    assert len(ev["pr_curve"]["recall"]) == 101 and set(ev["pr_curve"]["precision"]) == set(ev["per_class"])

    registry.promote(version, by="test", root=root)
    weights, served = registry.resolve_serving(root)
    assert served == version
    det = load_detector(DetectorConfig(imgsz=64, threads=2, confidence=0.01), weights, served)
    out = det.detect([frame(64, 64)])
    assert det.model_version == version and len(out) == 1


def test_evaluate_cli_keeps_each_class_from_the_cards_threshold(
    trained: tuple[Path, Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`evaluate --json` serves the card's per-class thresholds; an explicit --confidence is one for every class."""
    from typer.testing import CliRunner

    from inspector.cli import app

    root, data, version = trained
    monkeypatch.chdir(tmp_path)  # the validator's work folder
    before = registry.load_meta(version, root)
    registry.save_meta(version, before | {"operating_points": {"classes": {"item": {"threshold": 1.0}}}}, root)
    args = ["evaluate", "--model", version, "--data", str(data), "--split", "val", "--models-dir", str(root)]
    try:
        carded = CliRunner().invoke(app, [*args, "--threads", "2", "--no-primary", "--json"])
        single = CliRunner().invoke(app, [*args, "--threads", "2", "--no-primary", "--confidence", "0.5"])
    finally:
        after = registry.load_meta(version, root)
        registry.save_meta(version, {k: v for k, v in after.items() if k != "operating_points"}, root)
    assert carded.exit_code == 0, carded.output
    op = json.loads(carded.stdout)["operating_point"]
    assert op["thresholds"] == {"item": 1.0}
    assert op["per_class"]["item"] == {"truths": 8, "predictions": 0, "matched": 0, "recall": 0.0, "precision": None}
    assert set(op["definitions"]) >= {"recall", "precision", "detection_rate", "false_alarm_rate", "worst_misses"}
    assert single.exit_code == 0, single.output
    assert "At the operating point, as the station serves it (confidence 0.5;" in single.stdout
    assert (
        "| defective pictures flagged at all (any kept defect prediction) | n/a (no defective pictures" in single.stdout
    )


class NativeOnlyDetector:
    """A stand-in backend that sees the bright marks only at native resolution: in a frame no wider than 64 px."""

    def __init__(self, version: str) -> None:
        self.model_version = version
        self.class_names = default_labelmap().names

    def detect(self, frames: Sequence[Frame]) -> list[Detections]:
        out = []
        for f in frames:
            ys, xs = np.nonzero(f.image.max(axis=2) > 150)
            seen = f.width <= 64 and xs.size > 0
            box = [[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]] if seen else np.zeros((0, 4))
            out.append(
                Detections(
                    xyxy=np.asarray(box, np.float32),
                    confidence=np.full(len(box), 0.9, np.float32),
                    class_id=np.full(len(box), SCRATCH, np.int64),
                    class_names=self.class_names,
                )
            )
        return out


def marks_dataset(root: Path, n: int = 6, size: int = 160) -> Path:
    """Pictures larger than one 64x48 tile, each with one bright scratch-class mark; returns data.yaml."""
    rng = np.random.default_rng(3)
    for sub in ("images/val", "labels/val", "images/train", "labels/train"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
        w, h = rng.integers(20, 60, 2)
        x, y = rng.integers(0, size - w), rng.integers(0, size - h)
        img[y : y + h, x : x + w] = 220
        for split in ("val", "train"):
            cv2.imwrite(str(root / "images" / split / f"{i}.png"), img)
            cx, cy = (x + w / 2) / size, (y + h / 2) / size
            line = f"{SCRATCH} {cx:.6f} {cy:.6f} {w / size:.6f} {h / size:.6f}\n"
            (root / "labels" / split / f"{i}.txt").write_text(line)
    names = [f"  {i}: {name}" for i, name in enumerate(default_labelmap().names)]
    text = "\n".join([f"path: {root.resolve()}", "train: images/train", "val: images/val", "names:", *names])
    (root / "data.yaml").write_text(text + "\n")
    return root / "data.yaml"


SCRATCH = default_labelmap().names.index("scratch")


def test_evaluate_with_tiling_scores_the_model_as_the_station_serves_it_on_tiles(
    trained: tuple[Path, Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mark the model sees only at native resolution: found on tiles, joined across seams; not on the whole frame."""
    import inspector.detect
    from inspector.training.evaluate import evaluate_version, evaluation_text

    root, _, version = trained
    data = marks_dataset(tmp_path / "marks")
    monkeypatch.setattr(inspector.detect, "load_detector", lambda cfg, weights, v=None: NativeOnlyDetector(version))

    def run(tiling: Literal["off", "item", "frame"]) -> dict[str, Any]:
        return evaluate_version(
            version,
            data,
            split="val",
            root=root,
            conf=0.5,
            threads=2,
            latency_images=1,
            primary=False,
            work_dir=tmp_path / "runs",
            tiling=tiling,
        )

    whole, tiled = run("off"), run("frame")
    assert "tiled" not in whole
    assert whole["operating_point"]["per_class"]["scratch"]["recall"] == 0.0
    got = tiled["tiled"]
    assert got["tiling"] == "frame" and got["tile"] == [64, 48] and got["nms_iou"] == DetectorConfig().iou
    # every mark found (AP of a perfect ranking on the 101-point curve: 0.995)
    assert got["map50"] >= 0.99 and set(got["per_class_ap50"]) == {"scratch"}
    # the operating point is the tiled detector's too: every mark found once, none split at a seam
    op = tiled["operating_point"]["per_class"]["scratch"]
    assert op["recall"] == 1.0 and op["precision"] == 1.0 and op["predictions"] == 6
    assert "mAP50 as served on 64x48 px tiles (tiling frame)" in evaluation_text(version, "marks-val", tiled)


def test_a_broken_new_version_keeps_the_last_good_one_serving(
    trained: tuple[Path, Path, str], caplog: pytest.LogCaptureFixture
) -> None:
    root, _, version = trained
    registry.promote(version, by="test", root=root)
    meta = registry.load_meta(version, root)
    registry.register(
        "tiny-2",
        weights=root / version / "weights.pt",
        meta={**meta, "created_at": "9999"},
        card="# Model card\n",
        root=root,
    )
    registry.promote("tiny-2", by="test", root=root)
    (root / "tiny-2" / "weights.pt").unlink()

    shown = subprocess.run(
        [sys.executable, "-m", "inspector", "models", "show", "tiny-2", "--models-dir", str(root)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0 and shown.stdout.startswith("# Model card")  # its record is still shown
    assert "weights not present" in shown.stderr
    r = subprocess.run(
        [sys.executable, "-m", "inspector", "models", "promote", "tiny-2", "--models-dir", str(root)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [r.stderr.strip()]
    assert "weights.pt is missing" in r.stderr

    with pytest.raises(registry.RegistryError, match=r"weights\.pt is missing"):
        registry.resolve_weights(None, root)
    weights, served = registry.resolve_serving(root)
    assert served == version and "tiny-2" in caplog.text
    det = load_detector(DetectorConfig(imgsz=64, threads=2), weights, served)
    assert det.model_version == version
    shutil.rmtree(root / "tiny-2")
    registry.promote(version, by="test", root=root)


def test_models_cli_lists_and_promotes(trained: tuple[Path, Path, str]) -> None:
    root, _, version = trained

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "inspector", "models", *args, "--models-dir", str(root)],
            capture_output=True,
            text=True,
            timeout=60,
            env={**__import__("os").environ, "COLUMNS": "200"},
        )

    r = run("promote", version, "--by", "cli-test")
    assert r.returncode == 0, r.stderr
    assert f"active: {version} (promoted by cli-test" in r.stdout
    r = run("list")
    assert r.returncode == 0 and version in r.stdout and "ok" in r.stdout
    r = run("promote", "ghost")
    assert r.returncode == 2 and "no such version" in r.stderr and "Traceback" not in r.stderr


def test_onnx_export_with_parity_goes_into_the_card(trained: tuple[Path, Path, str]) -> None:
    from inspector.training.export import export_version

    root, data, version = trained
    images = data.parent / "images" / "val"
    record = export_version(version, "onnx", root=root, images_dir=images, n_images=4, threads=2)
    onnx = root / version / "weights.onnx"
    assert record["file"] == "weights.onnx" and onnx.is_file() and record["bytes"] == onnx.stat().st_size
    parity = record["parity"]
    assert parity["images"] == 4
    assert parity["raw_max_diff"]["scores"] < 1e-3 and parity["raw_max_diff"]["boxes_px"] < 1e-2
    assert parity["unmatched_reference"] == parity["unmatched_export"] == 0
    assert parity["ok"] is True
    meta = registry.load_meta(version, root)
    assert meta["exports"]["onnx"] == record
    card = (root / version / "card.md").read_text()
    assert "## Exports" in card and "weights.onnx" in card and "Verdict: **pass**" in card
    assert registry.inspect_version(version, root).ok  # exporting does not disturb the entry


def test_make_model_runs_its_stages_in_two_parts(
    trained: tuple[Path, Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each stage trains on its own size from the version before it; a run stopped after a stage goes on."""
    from inspector.training.default_model import main
    from inspector.training.model_plan import PROGRESS_FILE

    root, _, first = trained
    monkeypatch.chdir(tmp_path)  # the run's work folder (runs/) goes here
    (tmp_path / "a.yaml").write_text(RECIPE.replace("name: tiny", "name: tiny-a").replace("scratch", first))
    (tmp_path / "b.yaml").write_text(RECIPE.replace("name: tiny", "name: tiny-b").replace("imgsz: 64", "imgsz: 96"))
    plan = tmp_path / "p.plan.yaml"
    plan.write_text(
        "training_data: {images: 7, val: 0.3}\ntest_data: {images: 6}\n"
        "stages: [{recipe: a.yaml, size: 128x96, minutes: 1}, {recipe: b.yaml, size: 160x120, minutes: 1}]\n"
    )
    args = ["--plan", str(plan), "--datasets", str(tmp_path / "synth"), "--models-dir", str(root)]
    args += ["--name", "tiny-finished", "--promote", "never", "--threads", "2"]
    assert main([*args, "--until", "1"]) == 0
    assert not registry.version_dir("tiny-finished", root).exists() and (root / PROGRESS_FILE).is_file()
    assert main(args) == 0  # continues with stage 2
    assert not (root / PROGRESS_FILE).exists(), "a finished run leaves no progress behind"
    meta = registry.load_meta("tiny-finished", root)
    stages = meta["training"]["stages"]
    assert [(s["recipe"], s["size"]) for s in stages] == [("tiny-a", "128x96"), ("tiny-b", "160x120")]
    assert stages[1]["version"] == "tiny-finished" and meta["init"] == f"version {stages[0]['version']}"
    assert registry.load_meta(stages[0]["version"], root)["init"] == f"version {first}"
    assert meta["dataset"]["name"] == "bench-s1-7-df15-d122334-160x120"  # the last stage's render
    ev = next(iter(meta["evaluations"].values()))
    assert ev["imgsz"] == 96 and ev["dataset"]["name"] == "bench-s2-6-test-160x120"
    card = (root / "tiny-finished" / "card.md").read_text()
    assert "Trained in 2 stages" in card and "| 2 | tiny-finished | tiny-b | 160x120 | 1 min |" in card
    assert registry.active_version(root) != "tiny-finished"  # --promote never
    points = meta["operating_points"]  # chosen as served, on the validation images drawn with the bench's mix
    assert points["tiling"] == "item" and points["dataset"]["name"] == "bench-s1-7-val-default-160x120"


def test_validation_every_nth_epoch_skips_the_others(tmp_path: Path) -> None:
    """val_every=2 over three epochs: ultralytics validates epochs 2 and 3 (the last) only."""
    from inspector.training import ultralytics

    data = tiny_yolo_dataset(tmp_path / "ds", n_train=8, n_val=4, size=64)
    events: list[ultralytics.TrainProgress] = []
    result = ultralytics.train(
        "yolov8n.yaml",
        data,
        out_dir=tmp_path / "runs",
        name="cadence",
        epochs=3,
        imgsz=64,
        batch=8,
        threads=2,
        val_every=2,
        progress=events.append,
        mosaic=0.0,
        plots=False,
    )
    epochs = [e for e in events if e.kind == "epoch"]
    assert [e.epoch for e in epochs] == [1, 2, 3]
    assert [bool(e.metrics) for e in epochs] == [False, True, True], "metrics only where a validation ran"
    assert result.best.is_file()
