"""Timing samples and their summary: one way for every part of the bench to turn calls into milliseconds."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np


def p50(samples_ms: Sequence[float]) -> float:
    """The median, rounded as every figure in the results is."""
    return round(float(np.percentile(np.asarray(samples_ms, dtype=np.float64), 50)), 2)


def percentiles(samples_ms: Sequence[float]) -> dict[str, float]:
    """Count, p50/p95/p99, mean, and the rate that mean allows one call after another."""
    arr = np.asarray(samples_ms, dtype=np.float64)
    return {
        "n": len(samples_ms),
        "p50_ms": round(float(np.percentile(arr, 50)), 2),
        "p95_ms": round(float(np.percentile(arr, 95)), 2),
        "p99_ms": round(float(np.percentile(arr, 99)), 2),
        "mean_ms": round(float(arr.mean()), 2),
        "throughput_per_s": round(1000.0 / float(arr.mean()), 2),
    }


def time_calls(fn: Callable[[], object], n: int, warmup: int = 3) -> list[float]:
    """``n`` calls' milliseconds each, after ``warmup`` untimed calls (first calls pay for caches and threads)."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out
