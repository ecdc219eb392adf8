"""Which backend `make bench` times the API with: the one the station serves, when the run timed it."""

from __future__ import annotations

import pytest

from inspector.bench.speed import serving_backend

TIMED = {
    "plain-ultralytics": {"p50_ms": 50.0, "throughput_per_s": 20.0},
    "ultralytics": {"p50_ms": 48.0, "throughput_per_s": 21.0},
    "openvino": {"p50_ms": 35.0, "throughput_per_s": 28.0},
    "openvino-int8": {"p50_ms": 17.0, "throughput_per_s": 58.0},
    "onnx-int8": {"error": "failed to load"},  # a backend that failed is never chosen
}


@pytest.mark.parametrize(
    ("served", "expected"),
    [
        ("openvino", "openvino"),  # the version's measured serving backend
        (None, "openvino-int8"),  # no hint: the lowest single-image latency
        ("onnx", "openvino-int8"),  # a hint this run did not time
        ("plain-ultralytics", "openvino-int8"),  # plain ultralytics is the reference, never served
    ],
)
def test_the_api_is_timed_with_the_served_backend(served: str | None, expected: str) -> None:
    assert serving_backend(TIMED, served) == expected


def test_nothing_of_ours_timed_falls_back_to_pytorch() -> None:
    assert serving_backend({"plain-ultralytics": {"p50_ms": 50.0}}, "openvino") == "ultralytics"
