"""Which backend the station serves by default: the fastest whose verdicts match PyTorch's.

Why: an INT8 OpenVINO graph runs the same model several times faster on a CPU, but
quantisation moves confidences, and a verdict that changes is a cost, not a detail. So each
candidate backend grades the same held-out items as PyTorch (ultralytics) does; it qualifies
when every headline figure stays within ``TOLERANCE`` of PyTorch's, and the fastest one that
qualifies (median detector time per view) is written into the version's ``meta.json`` as
``serving_backend``, which the station serves unless its configuration names a backend.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from inspector.verdicts.measure import HEADLINE as MEASURED

REFERENCE = "ultralytics"
CANDIDATES = ("openvino-int8", "openvino", "onnx-int8", "onnx")
TOLERANCE = 0.01  # one point of each share
# the shares of items the report leads with; the calibration error is a distance between probabilities
HEADLINE = tuple(f for f in MEASURED if f != "calibration_error")


def _rate(result: Mapping[str, Any], figure: str) -> float | None:
    """A headline figure as a share; the report keeps some as ``{"rate": ...}`` records."""
    v = result.get(figure)
    if isinstance(v, Mapping):
        v = v.get("rate")
    return float(v) if isinstance(v, (int, float)) else None


def differences(reference: Mapping[str, Any], other: Mapping[str, Any]) -> dict[str, float]:
    """Each headline figure's distance from the reference's (absolute, as a share)."""
    out: dict[str, float] = {}
    for figure in HEADLINE:
        a, b = _rate(reference, figure), _rate(other, figure)
        if a is not None and b is not None:
            out[figure] = round(abs(b - a), 4)
        elif a is not None or b is not None:
            out[figure] = 1.0  # one side has it, the other not: not the same verdicts
    return out


def choose(
    results: Mapping[str, Mapping[str, Any]],
    tolerance: float = TOLERANCE,
    speed: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """The record for ``meta.json``: each backend's figures, speed and whether it qualifies, and the choice.

    ``results`` maps a backend to its item-level report; it must hold the reference. A backend
    that failed is a mapping with an ``error``; it never qualifies. ``speed`` (median ms per view,
    measured side by side by :func:`interleaved_ms`) replaces the reports' own detector times,
    which were taken one backend after the other and so under whatever else the machine did.
    """
    if REFERENCE not in results or "error" in results[REFERENCE]:
        raise ValueError(f"the {REFERENCE} backend must be measured: it is the reference")
    ref = results[REFERENCE]
    table: dict[str, Any] = {}
    for backend, res in results.items():
        if "error" in res:
            table[backend] = {"qualifies": False, "error": str(res["error"])}
            continue
        diff = differences(ref, res)
        worst = max(diff.values(), default=0.0)
        table[backend] = {
            "detect_ms_median": speed[backend] if speed and backend in speed else res.get("detect_ms_median"),
            "figures": {f: _rate(res, f) for f in HEADLINE},
            "largest_difference": worst,
            "qualifies": backend == REFERENCE or worst <= tolerance,
        }
    qualified = [b for b, row in table.items() if row["qualifies"] and row.get("detect_ms_median") is not None]
    chosen = min(qualified, key=lambda b: (table[b]["detect_ms_median"], b != REFERENCE))
    return {
        "backend": chosen,
        "rule": f"the fastest backend whose headline item-level figures are within {tolerance:g} of {REFERENCE}'s",
        "tolerance": tolerance,
        "items": ref.get("items"),
        "source": ref.get("source"),
        "backends": table,
    }


def measure(
    backends: Sequence[str], evaluate: Callable[[str], Mapping[str, Any]], log: Callable[[str], None] = print
) -> dict[str, Mapping[str, Any]]:
    """Item-level reports per backend, the reference first; a backend that cannot be built is recorded, not fatal."""
    order = [REFERENCE, *(b for b in backends if b != REFERENCE)]
    out: dict[str, Mapping[str, Any]] = {}
    for backend in order:
        log(f"{backend}: grading the items")
        try:
            out[backend] = evaluate(backend)
        except Exception as exc:  # an exporter or runtime missing on this machine: say so, measure the rest
            if backend == REFERENCE:
                raise
            log(f"{backend}: not measured: {exc}")
            out[backend] = {"error": str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}
    return out


def interleaved_ms(detectors: Mapping[str, Any], frames: Sequence[Any], rounds: int = 3) -> dict[str, float]:
    """Median milliseconds per view of each detector on the same frames, taken in turns (A B C A B C ...)
    so that a load on the machine weighs on every backend alike; each is warmed up first."""
    import statistics
    import time

    for det in detectors.values():
        det.detect([frames[0]])
    times: dict[str, list[float]] = {name: [] for name in detectors}
    for _ in range(rounds):
        for frame in frames:
            for name, det in detectors.items():
                t0 = time.perf_counter()
                det.detect([frame])
                times[name].append((time.perf_counter() - t0) * 1000)
    return {name: round(statistics.median(ts), 1) for name, ts in times.items()}
