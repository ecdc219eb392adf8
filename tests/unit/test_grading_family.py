"""The family classifier: crops, a tiny from-scratch training run, save/load, and its use by the grader."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from inspector.grading import grade_item, load_rubrics
from inspector.grading.family import FamilyClassifier, build_model, crop_item
from inspector.items import FAMILIES, Sku
from inspector.training.family import evaluate_family, synth_crops, train_family
from inspector.types import GradeLevel, Image
from tests.unit.grading_builders import view

SIZE = 32  # tiny crops keep the training run to seconds
COLOURS = [
    (200, 40, 40),
    (40, 200, 40),
    (40, 40, 200),
    (200, 200, 40),
    (200, 40, 200),
    (40, 200, 200),
    (240, 240, 240),
    (20, 20, 20),
]


def toy_crops(n: int, seed: int, size: int = SIZE) -> tuple[list[Image], list[str]]:
    """One colour and shape per family, with noise and random placement."""
    rng = np.random.default_rng(seed)
    crops, labels = [], []
    for i in range(n):
        k = i % len(FAMILIES)
        img = np.full((96, 96, 3), 128, np.uint8) + rng.integers(0, 20, (96, 96, 3), dtype=np.uint8)
        colour = tuple(int(np.clip(v + rng.integers(-25, 25), 0, 255)) for v in COLOURS[k])
        if k % 2:
            cv2.circle(img, (48, 48), int(rng.integers(25, 40)), colour, -1)
        else:
            p1, p2 = rng.integers(5, 25, 2), rng.integers(70, 90, 2)
            cv2.rectangle(img, (int(p1[0]), int(p1[1])), (int(p2[0]), int(p2[1])), colour, -1)
        crops.append(np.asarray(cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA), dtype=np.uint8))
        labels.append(FAMILIES[k])
    return crops, labels


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """Small convolutions run faster on one thread, above all on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def trained(one_thread: None) -> FamilyClassifier:
    crops, labels = toy_crops(96, 0)
    return train_family(crops, labels, epochs=4, batch_size=32, lr=3e-3, input_size=SIZE, seed=0, version="toy")


def test_the_model_is_mobilenet_v3_small_from_scratch() -> None:
    model = build_model()
    assert type(model).__name__ == "MobileNetV3"
    outputs = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
    assert outputs.out_features == len(FAMILIES)


def test_training_from_scratch_learns(trained: FamilyClassifier) -> None:
    val = toy_crops(64, 1)
    report = evaluate_family(trained, *val)
    assert report["accuracy"] >= 0.6, report  # chance is 1/8
    assert trained.metrics["history"][-1]["loss"] < trained.metrics["history"][0]["loss"]


def test_save_and_load_give_the_same_answers(tmp_path: Path, trained: FamilyClassifier) -> None:
    crops, _ = toy_crops(8, 2)
    path = trained.save(tmp_path / "family.pt")
    again = FamilyClassifier.load(path)
    assert (again.version, again.input_size, again.families) == ("toy", SIZE, FAMILIES)
    assert trained.predict_crops(crops) == again.predict_crops(crops)


def test_predict_on_a_picture_and_the_grader_uses_it(trained: FamilyClassifier) -> None:
    crops, _ = toy_crops(16, 3, size=96)
    picture = np.full((240, 320, 3), 90, np.uint8)
    picture[60:156, 100:196] = crops[0]
    prediction = trained.predict(picture, (100.0, 60.0, 196.0, 156.0))
    assert prediction.family in FAMILIES and 0 < prediction.confidence <= 1
    other = next(f for f in FAMILIES if f != prediction.family)
    sku = Sku(sku="X", category=other, price_new=10.0)
    sure = type(prediction)(prediction.family, 0.99)
    g = grade_item([view()], rubric=load_rubrics(), sku=sku, family=sure)
    assert g.level is GradeLevel.WRONG_ITEM


@pytest.mark.parametrize(
    ("box", "shape"),
    [
        ((10.0, 10.0, 50.0, 30.0), (96, 96, 3)),
        ((0.0, 0.0, 64.0, 48.0), (96, 96, 3)),
        ((-10.0, 40.0, 20.0, 60.0), (96, 96, 3)),
    ],
)
def test_crop_item_squares_and_pads(box: tuple[float, float, float, float], shape: tuple[int, int, int]) -> None:
    img = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    assert crop_item(img, box).shape == shape


@pytest.mark.parametrize(
    ("image", "box", "message"),
    [
        (np.zeros((48, 64, 3), np.uint8), (10.0, 10.0, 10.0, 30.0), "empty"),
        (np.zeros((48, 64, 3), np.uint8), (100.0, 100.0, 120.0, 130.0), "outside"),
        (np.zeros((48, 64), np.uint8), (1.0, 1.0, 5.0, 5.0), "BGR uint8"),
    ],
)
def test_crop_item_errors(image: Image, box: tuple[float, float, float, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        crop_item(image, box)


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"not a model", "cannot load family model"), (None, "not a family model")],
)
def test_bad_weights_are_refused(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "f.pt"
    if content is None:
        torch.save({"format": "something else"}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        FamilyClassifier.load(path)
    with pytest.raises(FileNotFoundError):
        FamilyClassifier.load(tmp_path / "missing.pt")


@pytest.mark.parametrize(
    ("labels", "message"),
    [(["phone", "spaceship"], "unknown families"), (["phone"], "as many labels")],
)
def test_bad_training_data_is_refused(labels: list[str], message: str) -> None:
    crops, _ = toy_crops(2, 0)
    with pytest.raises(ValueError, match=message):
        train_family(crops, labels, epochs=1, input_size=SIZE)


def test_crops_from_the_synthetic_bench() -> None:
    crops, labels = synth_crops(3, seed=5)
    assert crops and len(crops) == len(labels)
    assert all(c.shape == (96, 96, 3) and c.dtype == np.uint8 for c in crops)
    assert set(labels) <= set(FAMILIES)


@pytest.mark.slow
def test_family_classifier_on_the_synthetic_bench(one_thread: None) -> None:
    """A real run: synthetic crops of one seed, evaluated on another (minutes; chance is 1/8)."""
    torch.set_num_threads(2)
    train = synth_crops(1200, seed=21)
    val = synth_crops(300, seed=22)
    clf = train_family(*train, epochs=12, batch_size=32, val=val, seed=0)
    report = clf.metrics["val"]
    print(report)
    assert report["accuracy"] >= 0.7, report
