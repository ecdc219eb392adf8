"""The default backend: the fastest whose item-level verdicts stay within a point of PyTorch's."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import pytest

from inspector.verdicts.backends import HEADLINE, choose, differences, measure


def report(ms: float, **moved: float) -> dict[str, Any]:
    """An item-level report at 0.5 on every headline figure, some moved by the given amounts."""
    out: dict[str, Any] = {f: 0.5 + moved.get(f, 0.0) for f in HEADLINE}
    out.update(detect_ms_median=ms, items=900, source={"held_out": "0:1000"})
    return out


@pytest.mark.parametrize(
    ("candidates", "chosen"),
    [
        ({"openvino-int8": report(20, grade_exact=0.004)}, "openvino-int8"),  # faster and close: served
        ({"openvino-int8": report(20, costly_miss=0.03)}, "ultralytics"),  # faster but misses more: not
        ({"openvino-int8": report(20, money_left_share=-0.02), "openvino": report(35)}, "openvino"),
        ({"openvino": report(80)}, "ultralytics"),  # the same verdicts, slower: PyTorch stays
        ({"openvino-int8": {"error": "no OpenVINO here"}}, "ultralytics"),
    ],
)
def test_the_fastest_backend_with_the_same_verdicts_is_chosen(candidates: dict[str, Any], chosen: str) -> None:
    record = choose({"ultralytics": report(55), **candidates})
    assert record["backend"] == chosen
    assert record["backends"]["ultralytics"]["qualifies"]


def test_a_figure_one_side_lacks_is_a_difference_and_the_reference_is_required() -> None:
    ref = report(55)
    other = report(20)
    del other["grade_exact"]
    assert differences(ref, other)["grade_exact"] == 1.0
    with pytest.raises(ValueError, match="reference"):
        choose({"openvino-int8": report(20)})


def test_a_backend_that_cannot_be_built_is_recorded_and_the_reference_error_is_not_hidden() -> None:
    def evaluate(backend: str) -> dict[str, Any]:
        if backend == "onnx":
            raise RuntimeError("exporter missing\nmore text")
        return report(10 if backend == "openvino" else 55)

    out = measure(["onnx", "openvino"], evaluate, log=lambda _line: None)
    assert list(out) == ["ultralytics", "onnx", "openvino"]
    assert out["onnx"] == {"error": "exporter missing"}
    assert choose(out)["backend"] == "openvino"

    def broken(backend: str) -> dict[str, Any]:
        raise RuntimeError("no model")

    with pytest.raises(RuntimeError, match="no model"):
        measure(["openvino"], broken, log=lambda _line: None)


def test_the_version_s_measured_backend_is_served_and_one_that_cannot_load_falls_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from inspector import registry
    from inspector.config import DetectorConfig, RegistryConfig, Settings
    from inspector.pipeline import load_serving_detector, served_detector_config

    weights, version = registry.resolve_weights(None)
    root = tmp_path / "models"
    (root / "v1").mkdir(parents=True)
    shutil.copyfile(weights, root / "v1" / "weights.pt")
    meta = {"version": "v1", "imgsz": 640, "serving_backend": {"backend": "no-such-backend"}}
    (root / "v1" / "meta.json").write_text(json.dumps(meta))
    settings = Settings(registry=RegistryConfig(root=root), detector=DetectorConfig(warmup=0))
    assert served_detector_config(settings, "v1").backend == "no-such-backend", "the version's measured choice"
    with caplog.at_level(logging.ERROR, logger="inspector.pipeline"):
        detector = load_serving_detector(settings, root / "v1" / "weights.pt", "v1")
    assert type(detector).__name__ == "UltralyticsDetector"
    assert any("no-such-backend" in r.getMessage() and "serving ultralytics" in r.getMessage() for r in caplog.records)
    # a backend named in the configuration is not second-guessed: its failure is the answer
    settings.detector = DetectorConfig(backend="openvino", model=str(version), warmup=0)
    assert served_detector_config(settings, "v1").backend == "openvino"


def test_speed_is_timed_in_turns_and_replaces_the_reports_times() -> None:
    from inspector.verdicts.backends import interleaved_ms

    calls: list[str] = []

    class Fake:
        def __init__(self, name: str) -> None:
            self.name = name

        def detect(self, frames: list[Any]) -> list[Any]:
            calls.append(self.name)
            return []

    ms = interleaved_ms({"a": Fake("a"), "b": Fake("b")}, ["f1", "f2"], rounds=2)
    assert set(ms) == {"a", "b"}
    assert calls == ["a", "b"] + ["a", "b"] * 4, "a warm-up each, then in turns, frame by frame"
    record = choose({"ultralytics": report(55), "openvino": report(80)}, speed={"ultralytics": 60.0, "openvino": 30.0})
    assert record["backend"] == "openvino" and record["backends"]["openvino"]["detect_ms_median"] == 30.0
