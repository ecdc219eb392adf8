"""What a person asks of an evaluation: per-class recall and precision at the operating point,
pictures flagged at all, false alarms on clean pictures, and the worst misses on a contact sheet."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest

from inspector.metrics import Truth, at_operating_point
from inspector.training.card import render_operating_point
from inspector.training.misses import CAPTION, TILE, write_misses_sheet
from inspector.types import Detections

NAMES = ("item", "scratch", "dent")
Box = tuple[float, float, float, float]
ITEM_BOX: Box = (0, 0, 100, 100)


def truth(*rows: tuple[str, Box]) -> Truth:
    return Truth(
        np.array([r[1] for r in rows], np.float64).reshape(-1, 4), np.array([NAMES.index(r[0]) for r in rows], np.int64)
    )


def pred(*rows: tuple[str, float, Box]) -> Detections:
    return Detections(
        xyxy=np.array([r[2] for r in rows], np.float32).reshape(-1, 4),
        confidence=np.array([r[1] for r in rows], np.float32),
        class_id=np.array([NAMES.index(r[0]) for r in rows], np.int64),
        class_names=NAMES,
    )


# (truth, kept predictions) per picture; the comment says what the picture is
CASE: Sequence[tuple[Truth, Detections]] = (
    # defective, flagged, its scratch found
    (
        truth(("item", ITEM_BOX), ("scratch", (10, 10, 30, 30))),
        pred(("item", 0.9, ITEM_BOX), ("scratch", 0.8, (10, 10, 30, 30))),
    ),
    # defective, flagged by a scratch in the wrong place, its dent (1600 px) missed
    (
        truth(("item", ITEM_BOX), ("dent", (50, 50, 90, 90))),
        pred(("item", 0.9, ITEM_BOX), ("scratch", 0.6, (0, 0, 20, 20))),
    ),
    # defective, nothing kept: a scratch (100 px) and a dent (400 px) missed
    (truth(("item", ITEM_BOX), ("scratch", (5, 5, 15, 15)), ("dent", (20, 20, 40, 40))), pred()),
    # clean, a dent false alarm
    (truth(("item", ITEM_BOX)), pred(("item", 0.9, ITEM_BOX), ("dent", 0.7, (1, 1, 5, 5)))),
    # clean empty bench, nothing kept
    (truth(), pred()),
    # clean item, only the item kept: the item box never flags a picture
    (truth(("item", ITEM_BOX)), pred(("item", 0.9, ITEM_BOX))),
)


def test_per_class_and_picture_figures_on_a_hand_built_case() -> None:
    out = at_operating_point([p for _, p in CASE], [t for t, _ in CASE], NAMES, background=("item",))
    assert out["per_class"] == {
        "item": {"truths": 5, "predictions": 4, "matched": 4, "recall": 0.8, "precision": 1.0},
        "scratch": {"truths": 2, "predictions": 2, "matched": 1, "recall": 0.5, "precision": 0.5},
        "dent": {"truths": 2, "predictions": 1, "matched": 0, "recall": 0.0, "precision": 0.0},
    }
    assert out["pictures"] == {
        "total": 6,
        "defective": 3,
        "flagged": 2,
        "detection_rate": 2 / 3,
        "found": 1,
        "found_rate": 1 / 3,
        "clean": 3,
        "false_alarms": 1,
        "false_alarm_rate": 1 / 3,
    }
    assert out["missed_defects"] == 3
    assert [(m["image"], m["class"], m["area"]) for m in out["worst_misses"]] == [
        (1, "dent", 1600.0),
        (2, "dent", 400.0),
        (2, "scratch", 100.0),
    ]


def test_without_a_background_class_the_item_box_makes_a_picture_defective() -> None:
    out = at_operating_point([p for _, p in CASE], [t for t, _ in CASE], NAMES)
    pics = out["pictures"]
    assert (pics["defective"], pics["flagged"], pics["clean"], pics["false_alarm_rate"]) == (5, 4, 1, 0.0)


def test_no_clean_picture_means_no_false_alarm_rate_and_the_card_says_so() -> None:
    defective = CASE[:3]
    out = at_operating_point([p for _, p in defective], [t for t, _ in defective], NAMES, background=("item",))
    assert out["pictures"]["clean"] == 0 and out["pictures"]["false_alarm_rate"] is None
    text = "\n".join(render_operating_point(out | {"confidence": 0.25, "thresholds": None, "contact_sheet": None}))
    assert "| false alarms on clean pictures | n/a (no defect-free pictures in this split) |" in text
    assert "| defective pictures flagged at all (any kept defect prediction) | 0.6667 (2 of 3) |" in text
    assert "| dent | 2 | 0 | 0 | 0.0000 | n/a |" in text  # no dent kept: no precision to speak of


def test_a_class_with_no_truth_has_no_recall_and_mismatched_lengths_are_refused() -> None:
    out = at_operating_point([pred(("dent", 0.5, (0, 0, 9, 9)))], [truth()], NAMES)
    assert out["per_class"]["dent"] == {"truths": 0, "predictions": 1, "matched": 0, "recall": None, "precision": 0.0}
    with pytest.raises(ValueError, match="1 predictions but 2 labelled images"):
        at_operating_point([pred()], [truth(), truth()], NAMES)


def _pictures(tmp_path: Path, n: int) -> list[Path]:
    paths = []
    for k in range(n):
        p = tmp_path / f"{k}.png"
        cv2.imwrite(str(p), np.full((100, 120, 3), 40 + 20 * k, np.uint8))
        paths.append(p)
    return paths


@pytest.mark.parametrize(("missed", "tiles"), [(7, 5), (3, 3), (0, 0)])
def test_the_contact_sheet_has_one_tile_per_worst_miss_up_to_five(tmp_path: Path, missed: int, tiles: int) -> None:
    truths = [truth(("scratch", (10 + k, 10, 30 + 2 * k, 40))) for k in range(missed)]
    out = at_operating_point([pred() for _ in truths], truths, NAMES)
    sheet = tmp_path / "worst_misses.png"
    written = write_misses_sheet(out["worst_misses"], _pictures(tmp_path, missed), NAMES, sheet)
    if tiles == 0:
        assert written is None and not sheet.exists()
        return
    assert written == sheet
    image = cv2.imread(str(sheet))
    assert image.shape[0] == TILE + CAPTION
    assert (image.shape[1] + 4) // (TILE + 4) == tiles and (image.shape[1] + 4) % (TILE + 4) == 0
    assert out["worst_misses"][0]["image"] == missed - 1  # the widest box first
