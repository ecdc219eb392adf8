"""The capture trigger, driven by table-driven frame sequences.

Tokens: ``e`` empty bench, ``m`` the item moving (each ``m`` of a run is 30 px
further along; the last one is where it comes to rest), ``s`` the item at rest,
``n`` the item nudged to a new resting place. Expected states: E(MPTY),
M(OTION), S(TILL), C(APTURED).
"""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

from inspector.config import StationConfig, TriggerConfig
from inspector.types import Frame, Image
from station.trigger import Trigger, TriggerState, sharpness
from tests.station.standin import textured_bench

BENCH = textured_bench(320, 240, seed=3)
REST = (150, 70)
CODE = {"E": TriggerState.EMPTY, "M": TriggerState.MOTION, "S": TriggerState.STILL, "C": TriggerState.CAPTURED}


def _scene(x: int | None, y: int = REST[1], base: Image = BENCH) -> Image:
    img = base.copy()
    if x is not None:
        cv2.rectangle(img, (x, y), (x + 90, y + 70), (200, 180, 60), -1)
        cv2.putText(img, "RMA", (x + 8, y + 40), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (20, 20, 20), 2)
    return img


def _frames(tokens: str, camera_id: str = "cam0", seed: int = 0) -> list[Frame]:
    rng = np.random.default_rng(seed)
    out: list[Frame] = []
    rest_x = REST[0]
    i = 0
    for token, run in itertools.groupby(tokens):
        n = len(list(run))
        for j in range(n):
            if token == "e":
                img = _scene(None)
            elif token == "m":
                img = _scene(rest_x - 30 * (n - 1 - j))
            elif token == "n":
                rest_x = REST[0] + 60
                img = _scene(rest_x)
            else:
                img = _scene(rest_x)
            noise = rng.normal(0, 2.0, img.shape)
            out.append(Frame(np.clip(img + noise, 0, 255).astype(np.uint8), camera_id))
            i += 1
    return out


def _run(tokens: str, config: TriggerConfig | None = None) -> tuple[str, list[int]]:
    trig = Trigger(config or TriggerConfig(still_frames=4, empty_frames=3))
    trig.set_reference("cam0", _scene(None))
    states, captures = [], []
    for i, f in enumerate(_frames(tokens)):
        if trig.feed([f], now=float(i)) is not None:
            captures.append(i)
        states.append(next(k for k, v in CODE.items() if v == trig.state))
    return "".join(states), captures


@pytest.mark.parametrize(
    ("tokens", "states", "captures"),
    [
        pytest.param("eeeeee", "EEEEEE", [], id="idle bench"),
        pytest.param("eemmmsssssseeee", "EEMMMSSSCCCCCEE", [8], id="placed, still, captured, taken away"),
        pytest.param("mmsssssnnnnnneee", "MMSSSCCCCCCCCCCE", [5], id="nudged after capture: still one inspection"),
        pytest.param("emmeeeee", "EMMMMEEE", [], id="something passes through"),
        pytest.param("mmssmmmssssee", "MMSSMMMSSSCCC", [10], id="rests too briefly, then for long enough"),
        pytest.param("mmsssseeemmsssseee", "MMSSSCCCEMMSSSCCCE", [5, 14], id="two items, two inspections"),
    ],
)
def test_trigger_sequences(tokens: str, states: str, captures: list[int]) -> None:
    got_states, got_captures = _run(tokens)
    assert got_states == states
    assert got_captures == captures


def test_the_station_settings_drive_the_trigger_as_they_are() -> None:
    """One source of thresholds: a trigger without a config uses the station's defaults, and the station's
    settings (as ``build_runtime`` passes them) change when it captures."""
    assert (
        Trigger().config
        == TriggerConfig()
        == TriggerConfig(**StationConfig().model_dump(include=set(TriggerConfig.model_fields)))
    )
    _, default_captures = _run("eemmssssss", StationConfig())
    _, quick_captures = _run("eemmssssss", StationConfig(still_frames=2))
    assert default_captures == [7] and quick_captures == [5]


@pytest.mark.parametrize(
    "bad", [{"still_frames": 0}, {"empty_frames": 0}, {"reference_rate": 1.0}, {"reference_rate": -0.1}]
)
def test_trigger_thresholds_are_validated(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        TriggerConfig(**bad)


def test_capture_takes_the_sharpest_still_frame() -> None:
    trig = Trigger(TriggerConfig(still_frames=4, empty_frames=2))
    trig.set_reference("cam0", _scene(None))
    for f in _frames("mm"):
        trig.feed([f], 0.0)
    sharp = _scene(REST[0])
    blurred: Image = np.asarray(cv2.GaussianBlur(sharp, (0, 0), 1.2), np.uint8)
    window = [blurred, blurred, sharp, blurred]
    capture = None
    for i, img in enumerate(window):
        capture = trig.feed([Frame(img, "cam0")], float(i))
    assert capture is not None and not capture.manual
    assert capture.frames[0].image is sharp
    assert capture.sharpness["cam0"] == pytest.approx(sharpness(sharp))
    assert capture.still_since == 0.0 and capture.captured_at == 3.0


def test_several_cameras_make_one_capture_with_every_view() -> None:
    trig = Trigger(TriggerConfig(still_frames=3, empty_frames=2))
    top, side = _frames("mmssss", "top"), _frames("eeeeee", "side", seed=1)
    trig.set_reference("top", _scene(None))
    trig.set_reference("side", _scene(None))
    results = [trig.feed([a, b], float(i)) for i, (a, b) in enumerate(zip(top, side, strict=True))]
    captured = [r for r in results if r is not None]
    assert len(captured) == 1 and results[4] is captured[0]
    assert [f.camera_id for f in captured[0].frames] == ["top", "side"]


def test_motion_on_any_camera_holds_the_capture() -> None:
    trig = Trigger(TriggerConfig(still_frames=3, empty_frames=2))
    trig.set_reference("a", _scene(None))
    trig.set_reference("b", _scene(None))
    a, b = _frames("mssssssss", "a"), _frames("mmmmmmsss", "b", seed=1)
    first = next(i for i, (fa, fb) in enumerate(zip(a, b, strict=True)) if trig.feed([fa, fb], float(i)))
    assert first == 8  # camera b settles at frame 6 (its last move was frame 5), then three still frames


def test_manual_capture_works_in_any_state() -> None:
    trig = Trigger()
    assert trig.capture_now(0.0) is None  # no frame yet
    for i, f in enumerate(_frames("ee")):
        trig.feed([f], float(i))
    capture = trig.capture_now(5.0)
    assert capture is not None and capture.manual and len(capture.frames) == 1
    assert trig.state == TriggerState.CAPTURED


@pytest.mark.parametrize(
    ("rate", "expected"),
    [
        pytest.param(0.05, TriggerState.EMPTY, id="followed: stays idle"),
        pytest.param(0.0, TriggerState.CAPTURED, id="not followed: a false capture of the empty bench"),
    ],
)
def test_reference_follows_slow_light_changes_on_an_idle_bench(rate: float, expected: TriggerState) -> None:
    trig = Trigger(TriggerConfig(reference_rate=rate))
    trig.set_reference("cam0", BENCH)
    for i in range(80):  # the lamps warm up: +0.3 grey levels per frame, 24 in all
        img = np.clip(BENCH.astype(np.float32) + 0.3 * i, 0, 255).astype(np.uint8)
        trig.feed([Frame(img, "cam0")], float(i))
    assert trig.state == expected


def test_first_frame_is_the_reference_when_none_was_set() -> None:
    trig = Trigger(TriggerConfig(still_frames=2))
    frames = _frames("eessss")
    states = []
    for i, f in enumerate(frames):
        trig.feed([f], float(i))
        states.append(trig.state)
    assert states[:2] == [TriggerState.EMPTY] * 2 and states[-1] == TriggerState.CAPTURED


def test_a_lost_camera_is_forgotten() -> None:
    trig = Trigger(TriggerConfig(still_frames=3))
    for i, f in enumerate(_frames("ee")):
        trig.feed([f], float(i))
    trig.forget(["cam0"])
    assert trig.capture_now(1.0) is None
