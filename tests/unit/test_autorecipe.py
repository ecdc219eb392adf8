"""Training without a recipe: measured facts -> recipe and reasons, ``data stats`` advice, ``train --device``."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from inspector import registry
from inspector.cli import app
from inspector.data.formats import read_data_yaml
from inspector.training.autorecipe import DataFacts, advise, advise_for, measure
from inspector.training.device import DeviceError, parse_device
from inspector.training.recipe import load_recipe
from tests.builders import tiny_yolo_dataset

BALANCED = {"a": 300, "b": 280, "c": 310}


def facts(**changes: Any) -> DataFacts:
    """NEU-DET as measured (200 px grey photographs, thin cracks), changed where a row says."""
    base = DataFacts(
        name="set",
        train_images=1260,
        image_side=200,
        box_short_p10=18.0,
        box_side_p90=125.0,
        images_per_class=BALANCED,
        grey_share=1.0,
        defect_free_share=0.0,
        checkpoint="defect-pretrain-1",
    )
    return dataclasses.replace(base, **changes)


# (row, facts, expected recipe fields as dotted paths, words the reason of a setting must hold)
CASES: list[tuple[str, DataFacts, dict[str, Any], dict[str, str]]] = [
    (
        "grey small images: native size on a short budget, no colour jitter",
        facts(),
        {"imgsz": 224, "train_args.hsv_h": 0.0, "train_args.hsv_s": 0.0, "train_args.flipud": 0.5},
        {"imgsz": "only rounded up to the stride: a 30 min", "augmentation": "100% of the sampled images are grey"},
    ),
    (
        "large boxes need no upsampling",
        facts(box_short_p10=60.0),
        {"imgsz": 224},
        {"imgsz": "60 px"},
    ),
    (
        "colour photographs keep colour jitter and stay upright",
        facts(image_side=640, box_short_p10=40.0, grey_share=0.0),
        {"imgsz": 640, "train_args.hsv_s": 0.5, "train_args.flipud": 0.0, "small_data.focus": None},
        {"augmentation": "in colour"},
    ),
    (
        "tiny boxes in big images: native-resolution crops, served whole",
        facts(image_side=1280, box_short_p10=4.0, box_side_p90=40.0, grey_share=0.0),
        {"small_data.focus": 256, "imgsz": 256, "serve_imgsz": 1280, "small_data.tile": None, "train_args.scale": 0.3},
        {"small_data.focus": "4 px in 1280 px images"},
    ),
    (
        "tiny boxes in huge images: tiles",
        facts(image_side=4000, box_short_p10=6.0, box_side_p90=60.0),
        {"small_data.tile": 640, "imgsz": 640, "serve_imgsz": 640, "small_data.focus": None},
        {"small_data.tile": "4000 px images"},
    ),
    (
        "big boxes in big images: shrunk whole",
        facts(image_side=1280, box_short_p10=80.0),
        {"imgsz": 640, "small_data.focus": None, "small_data.tile": None},
        {"imgsz": "1280 px"},
    ),
    (
        "few images, one class rare: balance, fine-tune from our checkpoint",
        facts(train_images=80, images_per_class={"a": 60, "b": 5}),
        {"small_data.balance": True, "init": "pretrain", "fine_tune.train_args.warmup_epochs": 1, "batch": 16},
        {"small_data.balance": "5 images (b)", "init": "defect-pretrain-1"},
    ),
    (
        "many balanced images, no checkpoint: as they come, from scratch",
        facts(train_images=5000, images_per_class={"a": 2500, "b": 2400}, checkpoint=None),
        {"small_data.balance": False, "init": "scratch"},
        {"small_data.balance": "1.0x", "init": "no pretraining checkpoint"},
    ),
    (
        "a handful of images: small batches",
        facts(train_images=16, images_per_class={"a": 10, "b": 9}),
        {"batch": 4, "small_data.balance": True},
        {"batch": "16 training images"},
    ),
]


def _field(recipe: dict[str, Any], dotted: str) -> Any:
    value: Any = recipe
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


@pytest.mark.parametrize(("row", "given", "expect", "why"), CASES, ids=[c[0] for c in CASES])
def test_the_recipe_follows_the_measured_data(
    row: str, given: DataFacts, expect: dict[str, Any], why: dict[str, str]
) -> None:
    advice = advise(given)
    recipe = advice.to_recipe().model_dump()  # validates as a recipe
    assert {k: _field(recipe, k) for k in expect} == expect
    reasons = {c.setting: c.why for c in advice.choices}
    for setting, words in why.items():
        assert words in reasons[setting], reasons[setting]
    assert recipe["imgsz"] <= max(640, 1.6 * given.image_side)  # never upsampled far past native
    assert len(advice.lines()) == len(advice.choices) >= 8


@pytest.mark.parametrize(
    ("budget", "thin", "imgsz"),
    [(30.0, 18.0, 224), (180.0, 18.0, 320), (30.0, 10.0, 320), (180.0, 40.0, 224)],
    ids=["short budget: native", "long budget: thin boxes upsampled", "very thin boxes: upsampled anyway", "big boxes"],
)
def test_upsampling_follows_the_budget_and_the_thinnest_boxes(budget: float, thin: float, imgsz: int) -> None:
    assert advise(facts(box_short_p10=thin), budget).to_recipe().imgsz == imgsz


def test_no_training_images_is_refused() -> None:
    with pytest.raises(ValueError, match="no training images"):
        advise(facts(train_images=0))


def _grey_copy(data: Path) -> None:
    for img in (data.parent / "images").rglob("*.jpg"):
        cv2.imwrite(str(img), cv2.imread(str(img), cv2.IMREAD_GRAYSCALE))


def test_measure_reads_sizes_boxes_colour_and_empty_images(tmp_path: Path) -> None:
    data = tiny_yolo_dataset(tmp_path / "ds", n_train=8, n_val=2, size=64)
    (tmp_path / "ds" / "labels" / "train" / "0.txt").write_text("")  # one defect-free picture
    colour = measure(read_data_yaml(data))
    assert (colour.train_images, colour.image_side, colour.defect_free_share) == (8, 64, 0.125)
    assert colour.grey_share == 0.0 and colour.images_per_class["item"] == 7
    assert 16 <= colour.box_short_p10 <= colour.box_side_p90 <= 32  # boxes drawn 16-31 px wide
    _grey_copy(data)
    assert measure(read_data_yaml(data)).grey_share == 1.0


def _pretrain_entry(root: Path) -> str:
    src = root.parent / "ckpt.pt"
    src.write_bytes(b"weights")
    meta = {"recipe": {"name": "defect-pretrain", "role": "pretrain"}, "created_at": "2026-01-01T00:00:00+00:00"}
    registry.register("defect-pretrain-1", weights=src, meta=meta, card="# c\n", root=root)
    return "defect-pretrain-1"


def test_the_checkpoint_in_the_registry_decides_fine_tuning(tmp_path: Path) -> None:
    spec = read_data_yaml(tiny_yolo_dataset(tmp_path / "ds", n_train=4, n_val=2))
    root = tmp_path / "models"
    assert advise_for(spec, root).recipe["init"] == "scratch"
    version = _pretrain_entry(root)
    advice = advise_for(spec, root)
    assert advice.recipe["init"] == "pretrain" and advice.facts.checkpoint == version
    from inspector.training.bench_neu import auto_recipe

    # the benches train into a registry of their own: the checkpoint becomes its weights file
    assert auto_recipe(advice, 2.0, root).init == str(root / version / registry.WEIGHTS_FILE)


def test_data_stats_prints_the_advice_and_carries_it_in_json(tmp_path: Path) -> None:
    data = tiny_yolo_dataset(tmp_path / "ds", n_train=8, n_val=2, size=64)
    _grey_copy(data)
    args = ["data", "stats", str(data), "--mosaic", str(tmp_path / "m.png"), "--models-dir", str(tmp_path / "models")]
    as_json = CliRunner().invoke(app, [*args, "--json"])
    assert as_json.exit_code == 0, as_json.output
    advice = json.loads(as_json.stdout)["advice"]
    assert advice["facts"]["grey_share"] == 1.0 and advice["recipe"]["train_args"]["hsv_s"] == 0.0
    assert advice == advise(measure(read_data_yaml(data))).as_dict()
    text = CliRunner().invoke(app, args)
    assert text.exit_code == 0, text.output
    for choice in advice["choices"]:
        assert f"  {choice['setting']}: " in text.stdout and choice["why"] in text.stdout


@pytest.mark.parametrize(
    ("arg", "message"),
    [("gpu", "expected cpu, cuda:N"), ("cuda:x", "expected cpu, cuda:N"), ("cuda:0", "no CUDA device here")],
)
def test_a_device_that_is_not_here_is_refused(arg: str, message: str) -> None:
    import torch

    if torch.cuda.is_available() and "CUDA" in message:
        pytest.skip("this machine has CUDA")
    with pytest.raises(DeviceError, match=message):
        parse_device(arg)
    assert parse_device("CPU").kind == "cpu" and parse_device("cpu").arg == "cpu"


def test_train_on_a_missing_gpu_fails_in_one_line_before_any_work(tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    data = tiny_yolo_dataset(tmp_path / "ds", n_train=4, n_val=2)
    models, runs = tmp_path / "models", tmp_path / "runs"
    cmd = [sys.executable, "-m", "inspector", "train", "--data", str(data), "--device", "cuda:0"]
    r = subprocess.run([*cmd, "--models-dir", str(models), "--work-dir", str(runs)], capture_output=True, text=True)
    assert r.returncode == 1
    assert len(r.stderr.strip().splitlines()) == 1 and "--device cuda:0: no CUDA device here" in r.stderr
    assert not models.exists() and not runs.exists()


@pytest.mark.slow
def test_train_without_a_recipe_stores_the_recipe_it_printed(tmp_path: Path) -> None:
    """The smallest real run: 16 images at 64 px, a 6-second budget (one epoch; about a minute in all)."""
    data = tiny_yolo_dataset(tmp_path / "ds", n_train=16, n_val=8, size=64)
    models = tmp_path / "models"
    args = ["train", "--data", str(data), "--models-dir", str(models), "--work-dir", str(tmp_path / "runs")]
    r = CliRunner().invoke(app, [*args, "--time-budget", "0.1", "--threads", "2", "--name", "auto-1"])
    assert r.exit_code == 0, r.output
    printed = [ln.strip() for ln in r.stderr.splitlines() if ln.startswith("  ")]
    stored = models / "auto-1" / registry.RECIPE_FILE
    recipe = load_recipe(stored)  # loadable by --recipe as it is
    expected = advise(measure(read_data_yaml(data)), budget_min=0.1)
    assert printed == expected.lines()
    assert recipe == expected.to_recipe()
    comments = [ln.removeprefix("#").strip() for ln in stored.read_text().splitlines() if ln.startswith("#")]
    assert comments[1:] == printed
    meta = registry.load_meta("auto-1", models)
    assert meta["hardware"]["device"] == "cpu" and meta["hardware"]["device_name"]
    assert meta["recipe_advice"][1:] == [f"  {ln}" for ln in printed]
    card = (models / "auto-1" / registry.CARD_FILE).read_text()
    assert "| device | cpu (" in card and printed[0] in card
    assert yaml.safe_load(stored.read_text())["imgsz"] == recipe.imgsz == 64  # 64 px images, short budget: native


def test_the_recipe_file_reruns(tmp_path: Path) -> None:
    """What the version stores is what ``--recipe`` takes: comments on top do not change the recipe."""
    advice = advise(facts())
    path = tmp_path / "recipe.yaml"
    path.write_text(advice.to_recipe().to_yaml(comments=advice.comments()))
    assert load_recipe(path) == advice.to_recipe()
    assert path.read_text().startswith("# Chosen by 'inspector train' from the data of set")


def test_grey_measure_ignores_jpeg_noise(tmp_path: Path) -> None:
    """A grey picture saved as colour JPEG differs by a level or two between channels: still grey."""
    data = tiny_yolo_dataset(tmp_path / "ds", n_train=2, n_val=1, size=64)
    for img in (data.parent / "images").rglob("*.jpg"):
        g = cv2.imread(str(img), cv2.IMREAD_GRAYSCALE)
        bgr = np.dstack([g, g, np.clip(g.astype(np.int16) + 2, 0, 255).astype(np.uint8)])
        cv2.imwrite(str(img), bgr)
    assert measure(read_data_yaml(data)).grey_share == 1.0


def test_the_transfer_bench_advises_on_the_subset_it_trains(tmp_path: Path) -> None:
    """The auto side of a 25% share is chosen from those images: few of them, so balanced and fine-tuned."""
    from inspector.training.bench_transfer import subset_advice

    data = tiny_yolo_dataset(tmp_path / "ds", n_train=16, n_val=2)
    advice = subset_advice(data, 4, 0, "ckpt-1", 3.0)
    assert advice.facts.train_images == 4 and advice.recipe["init"] == "pretrain"
    assert advice.recipe["time_budget_min"] == 3.0 and "ckpt-1" in advice.lines()[1]
    assert subset_advice(data, None, 0, "ckpt-1", 3.0).facts.train_images == 16
