"""``make bench``: measure the station against plain ultralytics, in one run, on this machine.

Each detector backend runs in its own subprocess so that its peak RSS is its own.
Results go to ``bench/results.json`` (starting with ``"summary"``) and ``bench/results.md``.

    python -m inspector.bench [--quick] [--load-seconds 60] [--out bench]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

BENCH_IMAGE_SIZE = (1280, 960)


def _percentiles(samples_ms: list[float]) -> dict[str, float]:
    arr = np.asarray(samples_ms, dtype=np.float64)
    return {
        "n": len(samples_ms),
        "p50_ms": round(float(np.percentile(arr, 50)), 2),
        "p95_ms": round(float(np.percentile(arr, 95)), 2),
        "p99_ms": round(float(np.percentile(arr, 99)), 2),
        "mean_ms": round(float(arr.mean()), 2),
        "throughput_per_s": round(1000.0 / float(arr.mean()), 2),
    }


def _time(fn: Callable[[], object], n: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def _peak_rss_mb() -> float:
    """This process's own peak RSS (VmHWM; ru_maxrss would carry the parent's peak across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024.0, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)


# ----------------------------------------------------------------- subprocess parts


BACKENDS = ("plain-ultralytics", "ultralytics", "onnx", "onnx-int8", "openvino", "openvino-int8")
EXPORTED = ("onnx", "onnx-int8", "openvino", "openvino-int8")


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
    out = _percentiles(lat)
    out["throughput_per_s"] = round(images / wall, 2)
    out["workers"] = workers
    return out


def best_throughput(r: dict[str, Any]) -> float:
    """A backend's images/s: its stream figure when it has one, else one image after another."""
    return float(max(r.get("throughput_per_s", 0.0), (r.get("stream") or {}).get("throughput_per_s", 0.0)))


class _Bench:
    """One backend loaded for measuring: its one-at-a-time call, forward pass and stream call."""

    def __init__(self, backend: str, weights: Path, image: Path, imgsz: int, threads: int) -> None:
        from inspector.config import DetectorConfig
        from inspector.detect import load_detector
        from inspector.imageio import decode_image, decode_view
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
        det = load_detector(cfg, weights)
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
        self.stream_once = once_with(load_detector(cfg.model_copy(update=update), weights))


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
            seq[b] += _time(bench.once, per_round, warmup=2)
            if bench.forward is not None:
                fwd[b] += _time(bench.forward, per_round, warmup=1)
            if bench.stream_once is not None:
                streams[b].append(_stream(bench.stream_once, max(2 * per_round, 24), threads))
    out: dict[str, Any] = {}
    for b in backends:
        res: dict[str, Any] = _percentiles(seq[b])
        if fwd[b]:
            res["forward_p50_ms"] = round(float(np.percentile(fwd[b], 50)), 2)
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
    out["_decode_p50_ms"] = round(float(np.percentile(_time(lambda: decode_image(image.read_bytes()), n), 50)), 2)
    # as the API decodes an upload for a model of this input size (JPEG scaled down in the DCT)
    fit = _time(lambda: decode_view(image.read_bytes(), fit=imgsz), n)
    out["_decode_for_model_p50_ms"] = round(float(np.percentile(fit, 50)), 2)
    return out


def run_rss(backend: str, weights: Path, image: Path, imgsz: int, threads: int, n: int) -> dict[str, Any]:
    """Peak RSS of a process holding one backend, after ``n`` images one at a time and in a stream."""
    from inspector import runtime

    runtime.configure(threads)
    bench = _Bench(backend, weights, image, imgsz, threads)
    _time(bench.once, n, warmup=1)
    if bench.stream_once is not None:
        _stream(bench.stream_once, n, threads)
    return {"peak_rss_mb": _peak_rss_mb()}


def run_map(backend: str, weights: Path, data_yaml: Path, imgsz: int, threads: int) -> dict[str, Any]:
    """mAP50 of one backend on the synthetic test split, through the backend's own ``detect`` (one metric path)."""
    from inspector import runtime

    runtime.configure(threads)
    from inspector.config import DetectorConfig
    from inspector.detect import load_detector
    from inspector.detect.accuracy import evaluate_split
    from inspector.imageio import read_image
    from inspector.training.dataset import label_path, read_data_yaml
    from inspector.types import Frame

    # every candidate box, as a validator counts them; NMS at the validators' IoU
    cfg = DetectorConfig.model_validate(
        {"backend": backend, "imgsz": imgsz, "threads": threads, "confidence": 0.001, "iou": 0.7}
    )
    det = load_detector(cfg, weights)
    images = read_data_yaml(data_yaml).images("test")
    metrics = evaluate_split(lambda p: det.detect([Frame(image=read_image(p))])[0], images, label_path)
    out: dict[str, Any] = {"map50": round(metrics["map50"], 4), "images": metrics["images"]}
    if backend == "ultralytics":  # the same weights through ultralytics' own validator, as a cross-check
        from inspector.detect.yolo import validate

        val = validate(weights, data_yaml, split="test", imgsz=imgsz, plots=False, threads=threads)
        out["ultralytics_validator_map50"] = round(float(val["map50"]), 4)
    return out


def _subprocess(args: list[str], threads: int) -> dict[str, Any]:
    env = dict(os.environ, INSPECTOR_THREADS=str(threads))
    proc = subprocess.run(
        [sys.executable, "-m", "inspector.bench", *args], capture_output=True, text=True, env=env, timeout=3600
    )
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


# --------------------------------------------------------------------- API and live


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()


class Server:
    """``inspector serve`` in a subprocess on loopback, with its own data folder."""

    def __init__(self, data_dir: Path, backend: str, threads: int, imgsz: int, *, camera: bool = True) -> None:
        self.port = _free_port()
        self.data_dir = data_dir
        env = dict(
            os.environ,
            INSPECTOR_THREADS=str(threads),
            INSPECTOR_DETECTOR__BACKEND=backend,
            INSPECTOR_DETECTOR__THREADS=str(threads),
            INSPECTOR_DETECTOR__IMGSZ=str(imgsz),
            INSPECTOR_STATION__ENABLED="true" if camera else "false",
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "inspector", "serve", "--port", str(self.port), "--data-dir", str(data_dir)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.base = f"http://127.0.0.1:{self.port}"
        self.key = self._wait()

    def _wait(self) -> str:
        import httpx

        deadline = time.time() + 180
        while time.time() < deadline:
            keys = self.data_dir / "bootstrap-keys.txt"
            if keys.is_file():
                for line in keys.read_text().splitlines():
                    if "operator" in line or "admin" in line:
                        key = line.split()[-1]
                        try:
                            r = httpx.get(f"{self.base}/v1/ready", headers={"X-API-Key": key}, timeout=5)
                            if r.status_code == 200:
                                return key
                        except httpx.HTTPError:
                            pass
            if self.proc.poll() is not None:
                raise RuntimeError("the server exited during start-up")
            time.sleep(0.5)
        raise RuntimeError("the server did not become ready in 180 s")

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024.0, 1)
        return float("nan")

    def close(self) -> None:
        _stop(self.proc)


def unique_jpeg(jpeg: bytes, i: int) -> bytes:
    """The same picture with a numbered JPEG comment: other bytes, so every request stores a new file.

    Identical uploads are stored once (content addressing), which would leave the image
    write and its fsyncs out of every request after the first.
    """
    text = f"inspector bench {i}".encode()
    return jpeg[:2] + b"\xff\xfe" + (len(text) + 2).to_bytes(2, "big") + text + jpeg[2:]


def api_latency(server: Server, image: bytes, n: int) -> dict[str, Any]:
    """Sequential POSTs: client-side latency, and the median of each stage the server reports in ``timings_ms``."""
    import httpx

    stages: dict[str, list[float]] = {}
    with httpx.Client(base_url=server.base, headers={"X-API-Key": server.key}, timeout=60) as client:
        count = [0]

        def post() -> None:
            count[0] += 1
            view = unique_jpeg(image, count[0])
            r = client.post("/v1/inspections", files=[("images", ("view.jpg", view, "image/jpeg"))])
            r.raise_for_status()
            for k, v in (r.json().get("timings_ms") or {}).items():
                stages.setdefault(k, []).append(float(v))

        samples = _time(post, n)
    return {
        "sequential": _percentiles(samples),
        "server_stages_p50_ms": {k: round(float(np.percentile(v, 50)), 2) for k, v in sorted(stages.items())},
    }


def load_test(server: Server, image: bytes, clients: int, seconds: float) -> dict[str, Any]:
    """``clients`` threads post for ``seconds``; every 2xx must be stored exactly once."""
    import httpx

    lat: list[float] = []
    errors: list[str] = []
    ids: list[str] = []
    lock = threading.Lock()
    stop = time.time() + seconds

    def worker(k: int) -> None:
        with httpx.Client(base_url=server.base, headers={"X-API-Key": server.key}, timeout=120) as client:
            i = 0
            while time.time() < stop:
                i += 1
                t = time.perf_counter()
                try:
                    r = client.post(
                        "/v1/inspections",
                        files=[("images", ("view.jpg", unique_jpeg(image, 1_000_000 * (k + 1) + i), "image/jpeg"))],
                        data={"item": json.dumps({"rma": f"LOAD-{k}-{i}"})},
                        headers={"Idempotency-Key": f"load-{k}-{i}"},
                    )
                    ms = (time.perf_counter() - t) * 1000
                    with lock:
                        if r.status_code in {200, 201}:
                            lat.append(ms)
                            ids.append(r.json()["id"])
                        else:
                            errors.append(str(r.status_code))
                except httpx.HTTPError as exc:
                    with lock:
                        errors.append(type(exc).__name__)

    t0 = time.time()
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.time() - t0
    stored = 0
    with httpx.Client(base_url=server.base, headers={"X-API-Key": server.key}, timeout=60) as client:
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            params: dict[str, Any] = {"limit": 200}
            if cursor:
                params["cursor"] = cursor
            page = client.get("/v1/inspections", params=params).json()
            for item in page["items"]:
                if str((item.get("item") or {}).get("rma", "")).startswith("LOAD-"):
                    seen.add(item["id"])
            cursor = page.get("next_cursor")
            if not cursor:
                break
        stored = len(seen & set(ids))
    out = _percentiles(lat) if lat else {"n": 0}
    return {
        **out,
        "clients": clients,
        "seconds": round(wall, 1),
        "ok": len(lat),
        "errors": len(errors),
        "error_kinds": sorted(set(errors)),
        "stored": stored,
        "lost": len(set(ids)) - stored,
        "duplicated_ids": len(ids) - len(set(ids)),
        "throughput_per_s": round(len(lat) / wall, 2),
    }


def live_fps(server: Server, seconds: float = 6.0) -> float:
    """Frames per second of the operator page's MJPEG live view, as a browser receives them."""
    import httpx

    frames = 0
    t0 = time.time()
    with httpx.stream("GET", f"{server.base}/station/stream.mjpg", headers={"X-API-Key": server.key}, timeout=30) as r:
        buf = b""
        for chunk in r.iter_bytes():
            buf += chunk
            frames += buf.count(b"\xff\xd9")
            buf = buf[-1:]
            if time.time() - t0 > seconds:
                break
    return round(frames / (time.time() - t0), 2)


# ------------------------------------------------------------------ overhead floor


def _bare_server(port: int) -> None:
    import uvicorn

    from inspector.bench_bare import bare_app

    # no access log: the floor is the leanest server, not ours
    uvicorn.run(bare_app(), host="127.0.0.1", port=port, log_level="warning", access_log=False)


def http_floor(image: bytes, n: int) -> dict[str, Any]:
    """Sequential POSTs of the bench upload to an empty route (``bench_bare``), timed as the API path is."""
    import httpx

    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "inspector.bench", "bare-server", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                if httpx.get(f"{base}/v1/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("the bare HTTP server did not start")
            time.sleep(0.2)
        with httpx.Client(base_url=base, timeout=60) as client:
            count = [0]

            def post() -> None:
                count[0] += 1
                view = unique_jpeg(image, count[0])
                client.post("/v1/inspections", files=[("images", ("view.jpg", view, "image/jpeg"))]).raise_for_status()

            return _percentiles(_time(post, n))
    finally:
        _stop(proc)


def durable_write_floor(image: bytes, folder: Path, n: int) -> dict[str, Any]:
    """Keeping an upload so that a crash loses nothing, at its barest.

    The image to a temporary name, fsynced, renamed, its folder fsynced; then one row in
    SQLite (WAL, synchronous=FULL) committed. The store does this and more for every view.
    """
    import sqlite3

    folder.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(folder / "floor.db", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, path TEXT, body TEXT)")
    count = [0]

    def write() -> None:
        count[0] += 1
        final = folder / f"{count[0]}.jpg"
        tmp = final.with_suffix(".tmp")
        with tmp.open("wb") as f:
            f.write(image)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(final)
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO t (path, body) VALUES (?, ?)", (str(final), "{}" * 200))
        db.execute("COMMIT")

    try:
        return _percentiles(_time(write, n))
    finally:
        db.close()


def floor_beside(timed: dict[str, Any], backend: str, image: bytes, work: Path, n: int) -> dict[str, Any]:
    """:func:`overhead_floor` against the decode and forward pass of a ``detectors`` run that timed ``backend``."""
    return {
        "backend": backend,
        **overhead_floor(
            image,
            work,
            n,
            decode_ms=timed["_decode_for_model_p50_ms"],
            forward_ms=timed[backend]["forward_p50_ms"],
        ),
    }


def overhead_floor(image: bytes, work: Path, n: int, *, decode_ms: float, forward_ms: float) -> dict[str, Any]:
    """The least overhead any pipeline behind this API could have: bare HTTP + decode + durable write.

    Each part is measured alone, so their sum is a lower bound on the API path's time beyond
    the forward pass; set against the 25% target it shows what the target allows.
    """
    http = http_floor(image, n)
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        write = durable_write_floor(image, Path(tmp), n)
    total = round(http["p50_ms"] + decode_ms + write["p50_ms"], 2)
    return {
        "http_p50_ms": http["p50_ms"],
        "decode_p50_ms": decode_ms,
        "durable_write_p50_ms": write["p50_ms"],
        "floor_ms": total,
        "forward_p50_ms": forward_ms,
        "floor_ratio": round(total / forward_ms, 3),
        "allowed_ms_at_25_percent": round(0.25 * forward_ms, 2),
        "http": http,
        "durable_write": write,
    }


# --------------------------------------------------------------------------- main


def _bench_image(work: Path) -> Path:
    import cv2

    from inspector.data.synth import render_sample

    path = work / "bench_1280x960.jpg"
    if not path.is_file():
        sample = render_sample(7, size=BENCH_IMAGE_SIZE)
        cv2.imwrite(str(path), sample.image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return path


def _ensure_exports(weights: Path, imgsz: int, threads: int) -> tuple[int, int]:
    """Build (or reuse, when fresh) every exported artefact for the bench frame's shape; returns the shape."""
    import functools

    from inspector.detect import artifacts

    shape = artifacts.export_shape(imgsz, BENCH_IMAGE_SIZE[0] / BENCH_IMAGE_SIZE[1])
    calibration = functools.cache(lambda: tuple(artifacts.calibration_images(shape)))  # rendered once for both
    for backend in EXPORTED:
        t = time.perf_counter()
        fresh = artifacts.is_fresh(weights, backend, shape)
        path = artifacts.ensure(weights, backend, shape, threads=threads, calibration=calibration)
        took = "reused" if fresh else f"built in {time.perf_counter() - t:.0f} s"
        print(f"export {backend}: {path.name} ({took})", flush=True)
    return shape


def _markdown(results: dict[str, Any]) -> str:
    s = results["summary"]
    model = results["model"]
    shape = model.get("export_shape_hw") or ["?", "?"]
    lines = [
        "# Benchmark",
        "",
        f"Machine: {results['machine']['cpu']}, {results['machine']['cores']} cores; "
        f"threads {results['machine']['threads']}; load average {results['machine'].get('loadavg_1m_at_start')}"
        f" at the start, {results['machine'].get('loadavg_1m_at_end')} at the end; "
        f"speed (fp32 conv) {results['machine'].get('conv_gflops_at_start')} GFLOP/s at the start, "
        f"{results['machine'].get('conv_gflops_at_end')} at the end; "
        f"model {model['version']} at {model['imgsz']} px (exports {shape[0]}x{shape[1]}).",
        "",
        "| summary | value |",
        "| --- | --- |",
    ]
    lines += [f"| {k} | {v} |" for k, v in s.items()]
    lines += [
        "",
        f"Detector on one {BENCH_IMAGE_SIZE[0]}x{BENCH_IMAGE_SIZE[1]} JPEG (read, decode, detect). One at a time:"
        " p50/p95/p99 and images/s; stream: images/s with one image in flight per core (the backend compiled"
        " for throughput); forward: the model's forward pass alone. Plain ultralytics reads and resizes the"
        " whole picture; ours decode it as the API does, no larger than the model's input"
        f" ({results.get('decode_for_model_p50_ms')} ms instead of {results.get('decode_p50_ms')} ms p50).",
        "",
        "| backend | p50 ms | p95 ms | p99 ms | images/s | stream images/s | forward p50 ms | peak RSS MB | mAP50 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in results["detector"].items():
        if "error" in r:
            lines.append(f"| {name} | error: {r['error']} | | | | | | | |")
            continue
        m = results.get("accuracy", {}).get(name, {}).get("map50", "")
        stream = (r.get("stream") or {}).get("throughput_per_s", "")
        cells = [
            name,
            r["p50_ms"],
            r["p95_ms"],
            r["p99_ms"],
            r["throughput_per_s"],
            stream,
            r.get("forward_p50_ms", ""),
            r["peak_rss_mb"],
            m,
        ]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    api = results.get("api", {})
    if api:
        lines += [
            "",
            f"API path (POST /v1/inspections, one view, stored), {api.get('backend')} backend:",
            "",
            "| | p50 ms | p95 ms | p99 ms | per s |",
            "| --- | --- | --- | --- | --- |",
        ]
        for name in ("sequential", "load", "with_camera"):
            if name in api and "p50_ms" in api[name]:
                r = api[name]
                lines.append(f"| {name} | {r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} | {r['throughput_per_s']} |")
        stages = api.get("server_stages_p50_ms")
        if stages:
            lines += ["", "Server-side stages (p50 ms): " + ", ".join(f"{k} {v}" for k, v in stages.items()) + "."]
        if "load" in api:
            lo = api["load"]
            lines += [
                "",
                f"Load: {lo['clients']} clients for {lo['seconds']} s: {lo['ok']} ok, {lo['errors']} errors, "
                f"{lo['lost']} lost, {lo['duplicated_ids']} duplicated.",
            ]
    fl = results.get("overhead_floor")
    if fl:
        lines += [
            "",
            f"Overhead floor, measured alone in this run: an empty FastAPI route under uvicorn taking the same"
            f" upload from the same client ({fl['http_p50_ms']} ms p50), the JPEG decode ({fl['decode_p50_ms']} ms)"
            f" and the barest durable write of the upload (fsynced file, folder and SQLite commit:"
            f" {fl['durable_write_p50_ms']} ms) add up to {fl['floor_ms']} ms, {fl['floor_ratio']} of the"
            f" {fl['backend']} forward pass ({fl['forward_p50_ms']} ms); 25% of it is"
            f" {fl['allowed_ms_at_25_percent']} ms.",
        ]
    lines += ["", "Reproduce: `make bench` (writes bench/results.json and this file)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inspector.bench", description=__doc__)
    sub = parser.add_subparsers(dest="part")
    d = sub.add_parser("detectors")
    d.add_argument("--backends", required=True)
    d.add_argument("--weights", type=Path, required=True)
    d.add_argument("--image", type=Path, required=True)
    d.add_argument("--imgsz", type=int, required=True)
    d.add_argument("--threads", type=int, required=True)
    d.add_argument("-n", type=int, default=50)
    d.add_argument("--rss", action="store_true", help="one backend: its process's peak RSS")
    m = sub.add_parser("map")
    m.add_argument("--backend", required=True)
    m.add_argument("--weights", type=Path, required=True)
    m.add_argument("--data", type=Path, required=True)
    m.add_argument("--imgsz", type=int, required=True)
    m.add_argument("--threads", type=int, required=True)
    b = sub.add_parser("bare-server", help="the overhead floor's empty HTTP server")
    b.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", type=Path, default=Path("bench"))
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, a 10 s load test")
    parser.add_argument("--load-seconds", type=float, default=60.0)
    parser.add_argument("--synth-images", type=int, default=1000)
    parser.add_argument("--map-images", type=int, default=300, help="synthetic test images for the mAP parity")
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated subset to run")
    parser.add_argument("--no-synth", action="store_true", help="skip the synthetic data engine's timing")
    parser.add_argument(
        "--floor-only",
        action="store_true",
        help="only the overhead floor against the first of --backends, into OUT/overhead_floor.json",
    )
    args = parser.parse_args(argv)

    if args.part == "detectors":
        names = args.backends.split(",")
        if args.rss:
            print(json.dumps(run_rss(names[0], args.weights, args.image, args.imgsz, args.threads, args.n)))
        else:
            print(json.dumps(run_detectors(names, args.weights, args.image, args.imgsz, args.threads, args.n)))
        return 0
    if args.part == "map":
        print(json.dumps(run_map(args.backend, args.weights, args.data, args.imgsz, args.threads)))
        return 0
    if args.part == "bare-server":
        _bare_server(args.port)
        return 0

    from inspector import runtime
    from inspector.registry import resolve_weights, serving_hints

    threads = runtime.configure()
    weights, version = resolve_weights(None)
    meta_path = weights.parent / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    # the active model's own input size (a newly promoted model may have been trained at another)
    imgsz = int(serving_hints(version).get("imgsz") or (meta.get("recipe") or {}).get("imgsz") or 640)
    backends = [b for b in args.backends.split(",") if b]
    unknown = sorted(set(backends) - set(BACKENDS))
    if unknown:
        parser.error(f"unknown backend(s) {', '.join(unknown)}: choose from {', '.join(BACKENDS)}")
    out_dir: Path = args.out
    work = (out_dir / "work").resolve()  # data.yaml files name their folders absolutely
    work.mkdir(parents=True, exist_ok=True)
    n = 20 if args.quick else 60
    image = _bench_image(work)
    shape = _ensure_exports(weights, imgsz, threads)

    results: dict[str, Any] = {
        "summary": {},
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "threads": threads,
            "python": platform.python_version(),
            # other work on the machine during the run: a busy machine depresses every figure
            "loadavg_1m_at_start": round(os.getloadavg()[0], 2),
            # and a busy host does too, unseen by the load average: how fast this machine is now
            "conv_gflops_at_start": runtime.cpu_speed(),
        },
        "model": {"version": version, "weights": str(weights), "imgsz": imgsz, "export_shape_hw": list(shape)},
        "detector": {},
    }
    common = ["--weights", str(weights), "--image", str(image), "--imgsz", str(imgsz), "--threads", str(threads)]
    print(f"detectors, interleaved: {', '.join(backends)} ...", flush=True)
    timed = _subprocess(["detectors", "--backends", ",".join(backends), *common, "-n", str(n)], threads)
    if "error" in timed:
        raise SystemExit(f"the detector benchmark failed: {timed['error']}")
    if args.floor_only:
        floor = floor_beside(timed, backends[0], image.read_bytes(), work, n)
        floor.update(machine=results["machine"], model=results["model"])
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "overhead_floor.json").write_text(json.dumps(floor, indent=2) + "\n")
        print(json.dumps(floor, indent=2))
        return 0
    results["decode_p50_ms"] = timed.pop("_decode_p50_ms", None)
    results["decode_for_model_p50_ms"] = timed.pop("_decode_for_model_p50_ms", None)
    for backend in backends:
        rss = _subprocess(["detectors", "--backends", backend, "--rss", *common, "-n", "20"], threads)
        results["detector"][backend] = {**timed[backend], **rss}
        print(f"  {backend}: {results['detector'][backend]}", flush=True)

    # The same model's accuracy through each artefact, on a synthetic test set rendered with another seed.
    from inspector.data.synth import generate, measure_speed

    test_dir = work / "map-test"
    data_yaml = test_dir / "data.yaml"
    if not data_yaml.is_file():
        # Most of the set lands in the test split; the generator keeps a little for training.
        data_yaml = generate(
            test_dir, 60 if args.quick else args.map_images, seed=424242, val=0.05, test=0.9, progress=False
        )
    results["accuracy"] = {}
    for backend in [b for b in backends if b != "plain-ultralytics"]:
        print(f"accuracy: {backend} ...", flush=True)
        results["accuracy"][backend] = _subprocess(
            [
                "map",
                "--backend",
                backend,
                "--weights",
                str(weights),
                "--data",
                str(data_yaml),
                "--imgsz",
                str(imgsz),
                "--threads",
                str(threads),
            ],
            threads,
        )

    if not args.no_synth:
        print("synthetic data engine ...", flush=True)
        results["synth"] = measure_speed(100 if args.quick else args.synth_images)

    det = results["detector"]
    ours = {k: v for k, v in det.items() if k != "plain-ultralytics" and "throughput_per_s" in v}
    fastest = max(ours, key=lambda k: best_throughput(ours[k])) if ours else None
    # the API serves one request at a time per model: the backend with the lowest single-image latency
    serve_backend = min(ours, key=lambda k: ours[k]["p50_ms"]) if ours else "ultralytics"
    print(f"API path with the {serve_backend} backend ...", flush=True)
    body = image.read_bytes()
    # The API as the WMS sees it: the server without a camera (nothing else competes for the cores).
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        server = Server(Path(tmp) / "data", serve_backend, threads, imgsz, camera=False)
        try:
            results["api"] = {"backend": serve_backend, "camera": False, **api_latency(server, body, n)}
            results["api"]["load"] = load_test(server, body, 8, 10.0 if args.quick else args.load_seconds)
            results["api"]["server_peak_rss_mb"] = server.peak_rss_mb()
        finally:
            server.close()
    # The bench station as shipped: camera, live view and capture trigger running, and the API beside them.
    print("live view and the API beside the camera ...", flush=True)
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        server = Server(Path(tmp) / "data", serve_backend, threads, imgsz, camera=True)
        try:
            # after the API requests: the first seconds of a fresh server (model warm-up, the trigger's
            # first captures) are not the station's steady state
            results["api"]["with_camera"] = api_latency(server, body, n)["sequential"]
            results["api"]["live_fps"] = live_fps(server)
            results["api"]["server_with_camera_peak_rss_mb"] = server.peak_rss_mb()
        finally:
            server.close()

    fwd = ours.get(serve_backend, {}).get("forward_p50_ms")
    if fwd:
        print("overhead floor: bare HTTP, decode, durable write ...", flush=True)
        # decode and forward pass timed again just before the floor's other parts: this host's speed drifts
        # within a run, and a ratio of figures taken minutes apart measures the drift
        again = _subprocess(["detectors", "--backends", serve_backend, *common, "-n", str(n)], threads)
        if "error" not in again:
            results["overhead_floor"] = floor_beside(again, serve_backend, body, work, n)

    station_latency = out_dir / "station_latency.json"
    if station_latency.is_file():
        measured = json.loads(station_latency.read_text())
        if measured.get("model_version") == version:  # not a figure left over from another model
            results["station_latency"] = measured

    plain = det.get("plain-ultralytics", {})
    api_p50 = results["api"]["sequential"]["p50_ms"]
    base_map = results["accuracy"].get("ultralytics", {}).get("map50")
    fast_map = results["accuracy"].get(fastest or "", {}).get("map50")
    plain_tput = plain.get("throughput_per_s")
    results["summary"] = {
        "speedup_vs_ultralytics": round(best_throughput(ours[fastest]) / plain_tput, 2)
        if fastest and plain_tput
        else None,
        "overhead_ratio": round((api_p50 - fwd) / fwd, 3) if fwd else None,
        # the least any pipeline behind this API could add (bare HTTP + decode + durable write), same run
        "overhead_floor_ratio": results.get("overhead_floor", {}).get("floor_ratio"),
        "api_p50_ms": api_p50,
        "api_p99_ms": results["api"]["sequential"]["p99_ms"],
        "live_fps": results["api"]["live_fps"],
        "peak_rss_mb": max(
            [results["api"]["server_peak_rss_mb"], results["api"]["server_with_camera_peak_rss_mb"]]
            + [v.get("peak_rss_mb", 0) for v in det.values()]
        ),
        "fastest_backend": fastest,
        "speedup_one_at_a_time": round(ours[fastest]["throughput_per_s"] / plain_tput, 2)
        if fastest and plain_tput
        else None,
        "api_backend": serve_backend,
        "map50_fastest_minus_pytorch": round(fast_map - base_map, 4)
        if isinstance(fast_map, float) and isinstance(base_map, float)
        else None,
        "load_errors": results["api"]["load"]["errors"],
        "load_lost": results["api"]["load"]["lost"],
        "synth_seconds_per_1000": results.get("synth", {}).get("seconds_per_1000"),
    }
    results["machine"]["loadavg_1m_at_end"] = round(os.getloadavg()[0], 2)
    results["machine"]["conv_gflops_at_end"] = runtime.cpu_speed()
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out_dir / "results.md").write_text(_markdown(results))
    print(_markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
