"""The pure parts of training: recipes, dataset fingerprints, export parity, the card, progress lines."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from inspector.boxes import iou_matrix
from inspector.data.formats import fingerprint, label_path, read_data_yaml
from inspector.metrics import match
from inspector.training.card import render_card, render_evaluation
from inspector.training.evaluate import evaluation_text
from inspector.training.parity import compare
from inspector.training.progress import ProgressReporter
from inspector.training.recipe import load_recipe
from inspector.training.ultralytics import TrainProgress
from tests.builders import dets, tiny_yolo_dataset

# ------------------------------------------------------------------ recipes


def _recipe(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "r.yaml"
    p.write_text(text)
    return p


def test_shipped_recipes_load(repo_root: Path) -> None:
    recipes = sorted((repo_root / "models" / "recipes").glob("*.yaml"))
    assert recipes, "models/recipes/ ships at least one recipe"
    for path in recipes:
        if path.name.endswith((".model.yaml", ".plan.yaml")):
            continue  # architecture files referenced by recipes, and make model's plan
        r = load_recipe(path)
        assert r.name and r.imgsz >= 32


def test_recipe_overrides_are_validated(tmp_path: Path) -> None:
    r = load_recipe(_recipe(tmp_path, "name: t\nimgsz: 320\nepochs: 5\ntrain_args: {mosaic: 1.0}\n"))
    r2 = r.with_overrides(epochs=2, imgsz=None, time_budget_min=1.5)
    assert (r2.epochs, r2.imgsz, r2.time_budget_min, r2.train_args) == (2, 320, 1.5, {"mosaic": 1.0})
    with pytest.raises(ValueError, match="greater than or equal to 32"):
        r.with_overrides(imgsz=8)
    assert "time_budget_min: 1.5" in r2.to_yaml()


def test_the_default_recipe_trains_on_crops_and_serves_whole_frames(repo_root: Path) -> None:
    r = load_recipe(repo_root / "models" / "recipes" / "bench-det.yaml")
    # crops at the camera's resolution: the training input is the crop, the serving input the whole frame
    assert r.small_data.focus == r.imgsz and r.serve_imgsz == 640 and r.small_data.active()


def test_a_training_render_names_its_defect_mix() -> None:
    from inspector.data.synth import DefectMix
    from inspector.training.default_model import mix_suffix

    assert mix_suffix(DefectMix()) == ""  # the default render keeps its folder name, and is reused
    assert mix_suffix(DefectMix(0.15, (1, 2, 2, 3, 3, 4))) == "-df15-d122334"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: t\nbogus: 1\n", "bogus: Extra inputs are not permitted"),
        ("name: t\ntrain_args: {epochs: 3}\n", "set epochs as top-level"),
        ("name: t\nmodel: yolov8n.pt\n", "model must be a YOLO .yaml"),
        ("name: 'bad name'\n", "name: String should match pattern"),
        ("name: t\ntarget: {metric: map50, min: 1.5}\n", "target.min"),
        ("[1, 2]\n", "a recipe is a YAML mapping"),
        ("name: t\n  bad: indent\n", "not valid YAML"),
    ],
)
def test_bad_recipes_name_the_file_and_field(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as err:
        load_recipe(_recipe(tmp_path, text))
    assert "r.yaml" in str(err.value)


def test_missing_recipe_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="recipe not found"):
        load_recipe(tmp_path / "none.yaml")


# ------------------------------------------------------------------ dataset fingerprint


def test_fingerprint_counts_and_changes_with_one_label(tmp_path: Path) -> None:
    data = tiny_yolo_dataset(tmp_path / "ds", n_train=4, n_val=2, size=32)
    spec = read_data_yaml(data)
    fp1 = fingerprint(spec)
    assert fp1["splits"]["train"]["images"] == 4 and fp1["splits"]["val"]["boxes"] == 2
    assert fingerprint(read_data_yaml(data)) == fp1  # stable
    lbl = label_path(spec.image_paths("train")[0])
    lbl.write_text(lbl.read_text().replace("0 ", "1 ", 1))
    fp2 = fingerprint(read_data_yaml(data))
    assert fp2["sha256"] != fp1["sha256"]
    assert fp2["splits"]["train"]["sha256"] != fp1["splits"]["train"]["sha256"]
    assert fp2["splits"]["val"] == fp1["splits"]["val"]
    lbl.unlink()
    fp3 = fingerprint(read_data_yaml(data))
    assert fp3["splits"]["train"]["images_without_boxes"] == 1


def test_split_lists_in_txt_files(tmp_path: Path) -> None:
    data = tiny_yolo_dataset(tmp_path / "ds", n_train=3, n_val=2, size=32)
    root = data.parent
    (root / "test.txt").write_text("images/val/0.jpg\n\nimages/val/1.jpg\n")
    data.write_text(data.read_text().replace("val: images/val", "val: images/val\ntest: test.txt"))
    spec = read_data_yaml(data)
    assert [p.name for p in spec.image_paths("test")] == ["0.jpg", "1.jpg"]
    assert label_path(spec.image_paths("test")[0]) == root / "labels" / "val" / "0.txt"


@pytest.mark.parametrize("path_line", ["", "path: .\n", "path: sub/..\n"])
def test_a_data_yaml_named_by_a_relative_path_finds_its_images(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path_line: str
) -> None:
    """``--data datasets/x/data.yaml`` from the repository: splits are relative to the file's folder."""
    data = tiny_yolo_dataset(tmp_path / "datasets" / "ds", n_train=3, n_val=2, size=32)
    text = "\n".join(line for line in data.read_text().splitlines() if not line.startswith("path:"))
    data.write_text(path_line + text + "\n")
    (data.parent / "sub").mkdir()
    monkeypatch.chdir(tmp_path)
    spec = read_data_yaml(Path("datasets/ds/data.yaml"))
    assert spec.root.resolve() == data.parent.resolve()
    assert len(spec.image_paths("train")) == 3 and all(p.is_file() for p in spec.image_paths("val"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("path: .\ntrain: nowhere\nnames: [a]\n", "does not exist"),
        ("path: .\ntrain: .\n", "'names' must list the classes"),
        ("path: .\nnames: [a]\n", "no train, val or test split"),
    ],
)
def test_bad_data_yaml(tmp_path: Path, text: str, message: str) -> None:
    p = tmp_path / "data.yaml"
    p.write_text(text)
    with pytest.raises(ValueError, match=message):
        read_data_yaml(p)
    with pytest.raises(FileNotFoundError):
        read_data_yaml(tmp_path / "missing.yaml")


def test_asking_for_a_missing_split_is_clear(tmp_path: Path) -> None:
    spec = read_data_yaml(tiny_yolo_dataset(tmp_path / "ds", n_train=1, n_val=1, size=32))
    with pytest.raises(ValueError, match="no 'test' split"):
        spec.image_paths("test")


# ------------------------------------------------------------------ parity


def test_iou_matrix_known_values() -> None:
    a = np.array([[0, 0, 10, 10], [0, 0, 2, 2]], np.float32)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], np.float32)
    np.testing.assert_allclose(iou_matrix(a, b), [[1.0, 50 / 150, 0.0], [0.04, 0.0, 0.0]], rtol=1e-6)
    assert iou_matrix(a[:0], b).shape == (0, 3)


def test_match_is_one_to_one_and_class_aware() -> None:
    a = dets([("scratch", 0.9, (0, 0, 10, 10)), ("scratch", 0.8, (0, 0, 10, 10)), ("dent", 0.7, (20, 20, 30, 30))])
    b = dets([("scratch", 0.9, (0, 0, 10, 10)), ("crack", 0.7, (20, 20, 30, 30))])
    assert match(a, b) == [(0, 0, 1.0)]


BOX = (10.0, 10.0, 50.0, 40.0)


@pytest.mark.parametrize(
    ("ref_rows", "exp_rows", "expect"),
    [
        ([("dent", 0.8, BOX)], [("dent", 0.8, BOX)], {"ok": True, "matched": 1, "max_confidence_diff": 0.0}),
        ([("dent", 0.8, BOX)], [("dent", 0.79, BOX)], {"ok": False, "matched": 1}),
        ([("dent", 0.8, BOX)], [("dent", 0.8, (12.0, 10.0, 52.0, 40.0))], {"ok": False, "matched": 1}),
        ([("dent", 0.8, BOX)], [], {"ok": False, "unmatched_reference": 1}),
        ([], [("dent", 0.8, BOX)], {"ok": False, "unmatched_export": 1}),
        ([("dent", 0.8, BOX)], [("stain", 0.8, BOX)], {"ok": False, "unmatched_reference": 1}),
        # a box just under the threshold in one runtime and just over it in the other is no divergence
        ([("dent", 0.2501, BOX)], [("dent", 0.2500, BOX)], {"ok": True, "matched": 1}),
        # nothing confident anywhere proves nothing
        ([("dent", 0.1, BOX)], [("dent", 0.1, BOX)], {"ok": False, "matched": 0}),
    ],
)
def test_parity_verdicts(ref_rows: list[Any], exp_rows: list[Any], expect: dict[str, Any]) -> None:
    result = compare([dets(ref_rows)], [dets(exp_rows)], conf=0.25)
    for key, value in expect.items():
        assert result[key] == pytest.approx(value), key


def test_parity_needs_equal_lengths() -> None:
    with pytest.raises(ValueError, match="1 reference results but 0"):
        compare([dets([])], [], conf=0.25)


# ------------------------------------------------------------------ card


def _evaluation() -> dict[str, Any]:
    return {
        "map50": 0.912345,
        "map50_95": 0.61234,
        "precision": 0.9,
        "recall": 0.85,
        "operating_confidence": 0.25,
        "nms_iou": 0.7,
        "imgsz": 416,
        "split": "test",
        "images": 500,
        "instances": 1400,
        "per_class": {"item": {"ap50": 0.99, "ap50_95": 0.8, "precision": 0.97, "recall": 0.98, "instances": 500}},
        "confusion_matrix": {"labels": ["item", "dent", "background"], "matrix": [[490, 0, 3], [0, 0, 0], [10, 0, 0]]},
        "latency_ms": {"median": 21.04, "p95": 30.0, "threads": 2, "images": 20},
        "dataset": {"name": "synth-test", "sha256": "ab" * 32},
        "evaluated_at": "2026-01-01T00:00:00+00:00",
    }


def _meta(**over: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "version": "bench-det-1",
        "recipe": {"name": "bench-det", "model": "yolov8n.yaml", "description": "The bench model."},
        "class_names": ["item", "dent"],
        "imgsz": 416,
        "weights_bytes": 6_000_000,
        "target": {"metric": "map50", "min": 0.9, "measured_on": "a synthetic test set"},
        "dataset": {"name": "synth", "splits": {"train": {"images": 3000, "boxes": 9000}}},
        "training": {"seconds": 3000, "epochs_run": 20, "epochs_planned": 100, "time_budget_min": 50},
        "evaluations": {
            "synth-test": _evaluation() | {"pr_curve": {"recall": [0.0, 1.0], "precision": {"item": [1, 0]}}}
        },
        "primary_evaluation": "synth-test",
    }
    meta.update(over)
    return meta


def test_card_holds_exactly_what_evaluate_prints() -> None:
    ev = _evaluation()
    card = render_card(_meta())
    printed = evaluation_text("bench-det-1", "synth-test", ev)
    body = printed.split("\n", 2)[2]  # drop the heading line
    assert body.strip() in card
    assert "| mAP50 | 0.9123 |" in card and "| mAP50-95 | 0.6123 |" in card
    assert "median 21.0 ms, p95 30.0 ms" in card
    assert "![precision-recall curve](pr_curve.png)" in card and "![confusion matrix](confusion_matrix.png)" in card
    assert "![confusion matrix](confusion_matrix.png) (generated by `inspector models plots bench-det-1`)" in card
    assert "training curves" not in card  # no per-epoch log stored: nothing to draw, no link
    assert "**met** (mAP50 0.9123)" in card
    assert card.startswith("# Model card: bench-det-1\n")


def test_card_states_a_missed_target_and_a_missing_evaluation() -> None:
    low = _evaluation() | {"map50": 0.5}
    assert "**NOT met** (mAP50 0.5000)" in render_card(_meta(evaluations={"synth-test": low}))
    bare = render_card(_meta(evaluations={}, primary_evaluation=None))
    assert "Not evaluated yet" in bare and "Target: not evaluated yet." in bare


def test_card_says_how_fast_the_run_trained_and_the_machine_was() -> None:
    """Two cards of one recipe differ in epochs when the host slowed: the card shows both speeds."""
    training = _meta()["training"] | {"images_per_s": 41.5, "images_seen": 120_000}
    card = render_card(_meta(training=training, hardware={"conv_gflops_at_start": 210.5, "conv_gflops_at_end": 99.0}))
    assert "| training throughput | 41.5 samples/s over the run, validation included (120000 samples) |" in card
    assert "| machine speed (fp32 conv) | 210.5 GFLOP/s at the start, 99.0 at the end |" in card
    older = render_card(_meta())  # versions registered before these figures were recorded
    assert "training throughput" not in older and "machine speed" not in older


def test_confusion_table_drops_empty_classes() -> None:
    text = render_evaluation(_evaluation())
    assert "| predicted \\ true | item | background |" in text
    assert "| background | 10 | 0 |" in text


# ------------------------------------------------------------------ progress


def _event(kind: str, epoch: int, **metrics: float) -> TrainProgress:
    return TrainProgress(kind, epoch, 3, 5, 5, {"box": 1.0, "cls": 0.5}, dict(metrics), 60.0 * epoch)


def test_progress_writes_one_line_per_epoch_when_not_a_terminal() -> None:
    out = io.StringIO()
    with ProgressReporter(out, label="bench-det") as rep:
        rep.batch_line_every_s = 1e9
        rep(_event("batch", 1))
        rep(_event("epoch", 1, **{"metrics/mAP50(B)": 0.5, "metrics/mAP50-95(B)": 0.3}))
        rep(_event("final", 2, **{"metrics/mAP50(B)": 0.7, "metrics/mAP50-95(B)": 0.4}))
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("bench-det: epoch 1/3 loss 1.5000 val mAP50 0.5000 mAP50-95 0.3000")
    assert "~2.0 min left" in lines[0]
    assert lines[1] == "bench-det: best weights on the validation split: mAP50 0.7000 mAP50-95 0.4000"


def test_progress_without_a_terminal_shows_a_batch_line_now_and_then() -> None:
    out = io.StringIO()
    rep = ProgressReporter(out, label="b")
    rep.batch_line_every_s = 100.0
    for t in (30.0, 90.0, 120.0, 250.0):
        rep(TrainProgress("batch", 1, 3, int(t), 300, {"box": 1.0}, {}, t))
    assert out.getvalue().splitlines() == [
        "b: epoch 1/3 batch 120/300 loss 1.0000 elapsed 2.0 min",
        "b: epoch 1/3 batch 250/300 loss 1.0000 elapsed 4.2 min",
    ]


def test_cpu_speed_measures_for_about_the_time_asked() -> None:
    """A short fixed workload: a figure in GFLOP/s, measured for the time asked (not a constant)."""
    import time

    from inspector import runtime

    runtime.configure()
    t0 = time.perf_counter()
    speed = runtime.cpu_speed(0.2)
    took = time.perf_counter() - t0
    assert speed > 0.5  # even a slowed 2-core machine does ~100 GFLOP/s
    assert 0.2 <= took < 2.0
