"""Slow end-to-end runs: the NEU-DET and transfer benches on a tiny budget, OpenVINO export.

These prove the plumbing (import, two trainings, evaluation, JSON layout), not the
figures: the real benches run with 30-minute budgets via make.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inspector import registry
from inspector.config import DetectorConfig
from inspector.paths import REPO_ROOT
from inspector.training.recipe import load_recipe
from tests.builders import tiny_yolo_dataset

pytestmark = pytest.mark.slow

NEU = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "neu-det"
needs_neu = pytest.mark.skipif(not (NEU / "train.txt").is_file(), reason=f"NEU-DET not found at {NEU}")


def _tiny_version(tmp_path: Path) -> tuple[Path, str]:
    from inspector.training.run import train_version

    data = tiny_yolo_dataset(tmp_path / "ds", n_train=16, n_val=8, size=64)
    recipe_file = tmp_path / "r.yaml"
    recipe_file.write_text("name: tiny\nimgsz: 64\nepochs: 2\nbatch: 8\ntrain_args: {plots: false}\n")
    root = tmp_path / "models"
    out = train_version(data, load_recipe(recipe_file), root=root, version="tiny-1", work_dir=tmp_path / "runs")
    return root, out.version


@needs_neu
def test_bench_neu_runs_end_to_end(tmp_path: Path) -> None:
    from inspector.training.bench_neu import main

    out = tmp_path / "neu-det.json"
    assert main(["--src", str(NEU), "--minutes", "0.3", "--out", str(out), "--work", str(tmp_path / "w")]) == 0
    result = json.loads(out.read_text())
    for side in ("ours", "plain", "auto"):
        rec = result[side]
        assert {"map50", "map50_95", "train_minutes", "recipe"} <= rec.keys()
        assert 0.0 <= rec["map50"] <= 1.0 and rec["train_minutes"] > 0
    assert result["ours"]["recipe"] == "neu-det" and result["plain"]["recipe"] == "plain-yolov8n"
    # the recipe train picks by itself: 200 px grey photographs -> 320 px, no colour jitter, and why
    auto = result["auto"]
    assert auto["recipe"] == "auto-neu-det" and auto["recipe_settings"]["imgsz"] == 320
    assert auto["recipe_settings"]["hsv_s"] == 0.0 and any("200 px" in a for a in auto["advice"])
    meta = registry.load_meta(auto["version"], tmp_path / "w" / "registry")
    assert meta["recipe_advice"] == auto["advice"]
    assert result["ours_minus_plain_map50"] == pytest.approx(result["ours"]["map50"] - result["plain"]["map50"])


@needs_neu
def test_bench_transfer_runs_end_to_end(tmp_path: Path) -> None:
    from inspector.training.bench_transfer import main

    root, version = _tiny_version(tmp_path)
    out = tmp_path / "transfer.json"
    args = ["--src", str(NEU), "--minutes", "0.2", "--percents", "10", "--init", version]
    args += ["--models-dir", str(root), "--out", str(out), "--work", str(tmp_path / "w")]
    assert main(args) == 0
    result = json.loads(out.read_text())
    assert list(result) == ["10"] and set(result["10"]) == {"scratch", "ours", "auto"}
    details = json.loads((tmp_path / "transfer.details.json").read_text())
    ours = details["runs"]["10-ours"]
    meta = registry.load_meta(ours["version"], tmp_path / "w" / "registry")
    assert meta["init"] == f"file {root / version / 'weights.pt'}"
    assert meta["dataset"]["splits"]["train"]["images"] >= 126  # repeats from class-balanced sampling
    assert any("subset of 126 of the 1260" in a for a in meta["small_data"])  # 10% of the train split
    assert any("class-balanced" in a for a in meta["small_data"])
    # the recipe's fine-tuning settings (freeze, warm-up, rate) are what the run trained with
    fine_tune = load_recipe(REPO_ROOT / "models" / "recipes" / "neu-transfer.yaml").fine_tune
    trained = meta["training"]["train_args"]
    assert trained.get("freeze", 0) == fine_tune.freeze
    assert {k: trained[k] for k in fine_tune.train_args} == fine_tune.train_args
    # the bench resumes: runs measured with the same key are kept, not trained again
    assert main(args) == 0
    again = json.loads((tmp_path / "transfer.details.json").read_text())
    assert {k: v["version"] for k, v in again["runs"].items()} == {k: v["version"] for k, v in details["runs"].items()}
    # one side of one share at a time: the runs measured before stay in both files
    assert main([*args, "--sides", "ours", "--fresh"]) == 0
    third = json.loads((tmp_path / "transfer.details.json").read_text())
    assert set(third["runs"]) == {"10-scratch", "10-ours", "10-auto"}
    # the recipe train picks for 126 images: fine-tuned from the same weights, classes balanced
    auto = registry.load_meta(third["runs"]["10-auto"]["version"], tmp_path / "w" / "registry")
    assert auto["init"] == meta["init"] and auto["recipe"]["small_data"]["balance"] is True
    assert any("126 training images" in a for a in auto["recipe_advice"])
    assert third["runs"]["10-scratch"]["version"] == details["runs"]["10-scratch"]["version"]
    assert third["runs"]["10-ours"]["version"] != details["runs"]["10-ours"]["version"]
    # a run scored at another NMS IoU than the station serves (older records: ultralytics' 0.7) is run again
    details_file = tmp_path / "transfer.details.json"
    third["runs"]["10-scratch"]["nms_iou"] = 0.7
    details_file.write_text(json.dumps(third))
    assert main([*args, "--sides", "scratch"]) == 0
    fourth = json.loads(details_file.read_text())["runs"]
    assert fourth["10-scratch"]["version"] != third["runs"]["10-scratch"]["version"]
    assert fourth["10-scratch"]["nms_iou"] == DetectorConfig().iou
    assert fourth["10-ours"]["version"] == third["runs"]["10-ours"]["version"]


def test_pretrain_with_an_added_dataset_registers_a_checkpoint_that_fine_tuning_starts_from(tmp_path: Path) -> None:
    from inspector.training.pretrain import main
    from inspector.training.run import newest_pretrain, resolve_init

    added = tiny_yolo_dataset(tmp_path / "added", n_train=6, n_val=3, size=96)
    root = tmp_path / "models"
    args = ["--train-images", "24", "--test-images", "8", "--datasets", str(tmp_path / "synth")]
    args += ["--models-dir", str(root), "--minutes", "0.2", "--add", str(added), "--name", "pre-1", "--threads", "2"]
    assert main(args) == 0
    meta = registry.load_meta("pre-1", root)
    assert meta["recipe"]["role"] == "pretrain" and meta["init"] == "scratch"
    assert any("in grey" in a for a in meta["small_data"])
    assert any(f"added dataset {added}" in n for n in meta["notes"])
    assert meta["primary_evaluation"].endswith("-val")  # the union's classes: measured on the merged val split
    assert "pretraining checkpoint" in (root / "pre-1" / "card.md").read_text()
    assert registry.active_version(root) is None  # never promoted
    assert newest_pretrain(root) == "pre-1"
    assert resolve_init("pretrain", root)[0] == root / "pre-1" / "weights.pt"


def test_openvino_export_matches_pytorch(tmp_path: Path) -> None:
    pytest.importorskip("openvino")
    from inspector.training.export import export_version

    root, version = _tiny_version(tmp_path)
    record = export_version(
        version, "openvino", root=root, images_dir=tmp_path / "ds" / "images" / "val", n_images=4, threads=2
    )
    assert (root / version / record["file"]).is_dir()
    assert record["parity"]["raw_max_diff"]["scores"] < 1e-3
    assert "openvino" in registry.load_meta(version, root)["exports"]
