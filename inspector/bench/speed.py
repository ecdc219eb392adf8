"""The detector backends against plain ultralytics: the same frame, the same threads, interleaved rounds."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from inspector.bench.machine import peak_rss_mb
from inspector.bench.processes import run_part
from inspector.bench.subject import EXPORTED, Subject
from inspector.bench.timing import p50, percentiles, time_calls


def _stream(detect_file: Callable[[], object], images: int, workers: int) -> dict[str, Any]:
    """``workers`` threads each read, decode and detect until ``images`` are done: throughput with both cores busy."""
    lock = threading.Lock()
    left = [images]
    lat: list[float] = []

    def work() -> None:
        while True:
            with lock:
                if left[0] <= 0:
                    return
                left[0] -= 1
            t = time.perf_counter()
            detect_file()
            ms = (time.perf_counter() - t) * 1000
            with lock:
                lat.append(ms)

    for _ in range(workers * 2):  # warm every request and thread
        detect_file()
    t0 = time.perf_counter()
    pool = [threading.Thread(target=work) for _ in range(workers)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    wall = time.perf_counter() - t0
    out = percentiles(lat)
    out["throughput_per_s"] = round(images / wall, 2)
    out["workers"] = workers
    return out


def best_throughput(r: dict[str, Any]) -> float:
    """A backend's images/s: its stream figure when it has one, else one image after another."""
    return float(max(r.get("throughput_per_s", 0.0), (r.get("stream") or {}).get("throughput_per_s", 0.0)))


def ours(detector: dict[str, Any]) -> dict[str, Any]:
    """The station's own backends that were measured (not plain ultralytics, not the failed)."""
    return {k: v for k, v in detector.items() if k != "plain-ultralytics" and "throughput_per_s" in v}


def fastest(detector: dict[str, Any]) -> str | None:
    """Our backend with the most images/s."""
    own = ours(detector)
    return max(own, key=lambda k: best_throughput(own[k])) if own else None


def serving_backend(detector: dict[str, Any], served: str | None = None) -> str:
    """The backend the API is measured with: the one the station serves (``served``, the version's
    measured ``serving_backend``) when this run timed it, else our backend with the lowest
    single-image latency (the API serves one request at a time per model)."""
    own = ours(detector)
    if served is not None and served in own:
        return served
    return min(own, key=lambda k: own[k]["p50_ms"]) if own else "ultralytics"


class _Bench:
    """One backend loaded for measuring: its one-at-a-time call, forward pass and stream call."""

    def __init__(self, backend: str, weights: Path, image: Path, imgsz: int, threads: int) -> None:
        from inspector.config import DetectorConfig
        from inspector.detect import load_detector
        from inspector.imageio import decode_image, decode_view
        from inspector.training.artifacts import model_file
        from inspector.types import Frame

        self.backend = backend
        self.forward: Callable[[], object] | None = None
        self.stream_once: Callable[[], object] | None = None
        self.input_shape: list[int] | None = None
        if backend == "plain-ultralytics":
            from inspector.detect.yolo import plain_predictor

            predict = plain_predictor(weights, imgsz=imgsz, threads=threads)
            self.once: Callable[[], object] = lambda: predict(str(image))
            return

        def once_with(d: Any) -> Callable[[], int]:
            def once() -> int:
                # decoded as the API decodes an upload: no larger than the model's input needs
                decoded, full_size = decode_view(image.read_bytes(), fit=d.imgsz)
                frame = Frame(image=decoded, full_size=full_size)
                return len(frame.to_full(d.detect([frame])[0]))

            return once

        cfg = DetectorConfig.model_validate({"backend": backend, "imgsz": imgsz, "threads": threads})
        model = model_file(cfg, weights)
        det = load_detector(cfg, model)
        self.once = once_with(det)
        if backend not in EXPORTED:
            return
        from inspector.detect.onnx import OnnxDetector
        from inspector.detect.openvino import OpenVinoDetector

        decoded = decode_image(image.read_bytes())
        if isinstance(det, OnnxDetector):
            blob, _, _ = det.preprocess(decoded)
            session = det._session
            name = session.get_inputs()[0].name
            self.forward = lambda: session.run(None, {name: blob})
            self.input_shape = list(blob.shape[2:])
        else:
            assert isinstance(det, OpenVinoDetector)
            tensor, _, _ = det.preprocess(decoded)
            self.forward = lambda: det.forward(tensor)
            self.input_shape = list(det.input_shape)
        # the same backend compiled for throughput: OpenVINO one stream per core, ONNX Runtime one thread per run
        update: dict[str, Any] = {"streams": threads} if backend.startswith("openvino") else {"threads": 1}
        self.stream_once = once_with(load_detector(cfg.model_copy(update=update), model))


def run_detectors(
    backends: list[str], weights: Path, image: Path, imgsz: int, threads: int, n: int, rounds: int = 6
) -> dict[str, Any]:
    """Every backend in one process, measured in interleaved rounds: a load change hits all of them alike.

    ``sequential``: read, decode and detect one image after another (what a single request
    sees). ``stream`` (exported backends): ``threads`` images in flight, the backend compiled
    for throughput, so decoding and pre/post-processing of one image overlap the forward
    pass of another. ``forward``: the model's forward pass alone on a prepared tensor.
    """
    from inspector import runtime
    from inspector.imageio import decode_image, decode_view

    runtime.configure(threads)
    benches = {b: _Bench(b, weights, image, imgsz, threads) for b in backends}
    seq: dict[str, list[float]] = {b: [] for b in backends}
    fwd: dict[str, list[float]] = {b: [] for b in backends}
    streams: dict[str, list[dict[str, Any]]] = {b: [] for b in backends}
    per_round = max(1, n // rounds)
    for r in range(rounds):
        order = backends if r % 2 == 0 else list(reversed(backends))
        for b in order:
            bench = benches[b]
            seq[b] += time_calls(bench.once, per_round, warmup=2)
            if bench.forward is not None:
                fwd[b] += time_calls(bench.forward, per_round, warmup=1)
            if bench.stream_once is not None:
                streams[b].append(_stream(bench.stream_once, max(2 * per_round, 24), threads))
    out: dict[str, Any] = {}
    for b in backends:
        res: dict[str, Any] = percentiles(seq[b])
        if fwd[b]:
            res["forward_p50_ms"] = p50(fwd[b])
            res["input_shape"] = benches[b].input_shape
        if streams[b]:
            rates = [x["throughput_per_s"] for x in streams[b]]
            lat = [x["p50_ms"] for x in streams[b]]
            res["stream"] = {
                "rounds": len(rates),
                "images": sum(x["n"] for x in streams[b]),
                "throughput_per_s": round(float(np.median(rates)), 2),
                "throughput_min_max": [min(rates), max(rates)],
                "p50_ms": round(float(np.median(lat)), 2),
                "workers": threads,
            }
        out[b] = res
    out["_decode_p50_ms"] = p50(time_calls(lambda: decode_image(image.read_bytes()), n))
    # as the API decodes an upload for a model of this input size (JPEG scaled down in the DCT)
    out["_decode_for_model_p50_ms"] = p50(time_calls(lambda: decode_view(image.read_bytes(), fit=imgsz), n))
    return out


def run_rss(backend: str, weights: Path, image: Path, imgsz: int, threads: int, n: int) -> dict[str, Any]:
    """Peak RSS of a process holding one backend, after ``n`` images one at a time and in a stream."""
    from inspector import runtime

    runtime.configure(threads)
    bench = _Bench(backend, weights, image, imgsz, threads)
    time_calls(bench.once, n, warmup=1)
    if bench.stream_once is not None:
        _stream(bench.stream_once, n, threads)
    return {"peak_rss_mb": peak_rss_mb()}


def time_backends(subject: Subject, backends: list[str], n: int) -> dict[str, Any]:
    """:func:`run_detectors` in a child process: the backends' figures, the decodes', or ``{"error": ...}``."""
    return run_part(["detectors", "--backends", ",".join(backends), *subject.args(), "-n", str(n)], subject.threads)


def with_rss(subject: Subject, backends: list[str], timed: dict[str, Any]) -> dict[str, Any]:
    """Each backend's timed figures and the peak RSS of a child process that holds that backend alone."""
    out: dict[str, Any] = {}
    for backend in backends:
        rss = run_part(["detectors", "--backends", backend, "--rss", *subject.args(), "-n", "20"], subject.threads)
        out[backend] = {**timed[backend], **rss}
        print(f"  {backend}: {out[backend]}", flush=True)
    return out
