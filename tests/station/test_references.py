"""The empty-bench references without threads: when a check runs, what is stored, what is compared."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from inspector.types import Frame
from station.references import References
from tests.station.standin import textured_bench


def _frames(gain: float = 1.0) -> list[Frame]:
    image = np.clip(textured_bench(320, 240).astype(np.float32) * gain, 0, 255).astype(np.uint8)
    return [Frame(image, camera_id="cam 0")]


def test_the_first_check_waits_for_the_empty_bench_and_stores_a_missing_reference(tmp_path: Path) -> None:
    changes: list[int] = []
    refs = References(tmp_path / "refs", changed=lambda: changes.append(1), clock=lambda: 5.0)
    path = tmp_path / "refs" / "reference-cam_0.png"
    assert refs.path("cam 0") == path
    assert refs.on_frames(_frames(), bench_empty=False) is False and refs.checked_at is None and not changes
    assert refs.on_frames(_frames(), bench_empty=True) is False  # checked, nothing stored on request
    assert path.is_file() and refs.checked_at == 5.0 and len(changes) == 1
    status = refs.status()
    assert status["done"] and status["ok"] and status["cameras"][0]["has_reference"] is False
    refs.on_frames(_frames(1.6), bench_empty=True)
    assert refs.status()["done"] and len(changes) == 1  # the check runs once unless asked again
    refs.request_check()
    refs.on_frames(_frames(1.6), bench_empty=True)
    warnings = refs.status()["warnings"]
    assert [(w["code"], w["camera_id"]) for w in warnings] == [("brightness_changed", "cam 0")]


def test_a_stored_reference_replaces_the_old_one_and_is_checked_against(tmp_path: Path) -> None:
    refs = References(tmp_path / "refs", changed=lambda: None)
    refs.on_frames(_frames(), bench_empty=True)
    refs.request_store()
    assert refs.on_frames(_frames(1.6), bench_empty=True) is True
    stored = cv2.imread(str(tmp_path / "refs" / "reference-cam_0.png"))
    assert stored is not None and np.array_equal(stored, _frames(1.6)[0].image)
    status = refs.status()
    assert status["ok"] and status["cameras"][0]["has_reference"] is True
    assert not list((tmp_path / "refs").glob("*.tmp.png"))


def test_without_a_reference_directory_nothing_is_stored_and_the_check_still_runs(tmp_path: Path) -> None:
    refs = References(None, changed=lambda: None)
    refs.request_store()
    assert refs.path("cam 0") is None and refs.on_frames(_frames(), bench_empty=True) is True
    assert refs.status()["done"] and refs.status()["cameras"][0]["has_reference"] is False
    assert not list(tmp_path.iterdir())
