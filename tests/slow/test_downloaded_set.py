"""A labelled set as downloaded goes through the README's four commands with no file moved and no recipe.

A Roboflow COCO export (``train/``, ``valid/``, ``test/``, each with ``_annotations.coco.json`` and the
placeholder category Roboflow adds) is written here; import, train (no recipe, a few seconds), evaluate
and promote then run through the real command line into a scratch registry.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from inspector import registry
from inspector.cli import app

SIZE = 64


def roboflow_export(root: Path, counts: dict[str, int]) -> None:
    """Grey pictures with one dark bar (a "scratch") each, in Roboflow's COCO layout."""
    rng = np.random.default_rng(0)
    cats = [
        {"id": 0, "name": "defects", "supercategory": "none"},
        {"id": 1, "name": "scratch", "supercategory": "defects"},
    ]
    for split, n in counts.items():
        folder = root / split
        folder.mkdir(parents=True)
        images, anns = [], []
        for k in range(n):
            img = np.full((SIZE, SIZE, 3), 150, np.uint8)
            x, y = (int(v) for v in rng.integers(4, SIZE - 28, 2))
            cv2.rectangle(img, (x, y), (x + 24, y + 6), (40, 40, 40), -1)
            name = f"p{k}_jpg.rf.{k:04x}.jpg"
            cv2.imwrite(str(folder / name), img)
            images.append({"id": k, "file_name": name, "width": SIZE, "height": SIZE})
            anns.append({"id": k, "image_id": k, "category_id": 1, "bbox": [x, y, 24, 6], "area": 144, "iscrowd": 0})
        doc = {"images": images, "annotations": anns, "categories": cats}
        (folder / "_annotations.coco.json").write_text(json.dumps(doc))


@pytest.mark.slow
def test_import_train_without_a_recipe_evaluate_and_promote(tmp_path: Path) -> None:
    roboflow_export(tmp_path / "download", {"train": 16, "valid": 4, "test": 4})
    models, out = tmp_path / "models", tmp_path / "mine"
    runner = CliRunner()

    r = runner.invoke(app, ["data", "import", str(tmp_path / "download"), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "read as coco (roboflow" in r.output

    data = str(out / "data.yaml")
    train = ["train", "--data", data, "--models-dir", str(models), "--work-dir", str(tmp_path / "runs")]
    r = runner.invoke(app, [*train, "--time-budget", "0.1", "--threads", "2", "--name", "mine-1", "--init", "scratch"])
    assert r.exit_code == 0, r.output
    assert "no --recipe: chosen from the data" in r.stderr
    assert (models / "mine-1" / registry.RECIPE_FILE).is_file()

    r = runner.invoke(
        app, ["evaluate", "--model", "mine-1", "--data", data, "--split", "test", "--models-dir", str(models)]
    )
    assert r.exit_code == 0, r.output
    meta = registry.load_meta("mine-1", models)
    evaluation = meta["evaluations"][meta["primary_evaluation"]]
    assert evaluation["operating_point"]["pictures"]["defective"] == 4

    r = runner.invoke(app, ["models", "promote", "mine-1", "--models-dir", str(models)])
    assert r.exit_code == 0, r.output
    assert registry.active_version(models) == "mine-1"
