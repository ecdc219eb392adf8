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
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)


# ----------------------------------------------------------------- subprocess parts


def run_detector(backend: str, weights: Path, image: Path, imgsz: int, threads: int, n: int) -> dict[str, Any]:
    """One backend on one JPEG file: read, decode and detect, as a caller would."""
    from inspector import runtime

    runtime.configure(threads)
    if backend == "plain-ultralytics":
        from inspector.detect.yolo import plain_predictor

        predict = plain_predictor(weights, imgsz=imgsz, threads=threads)
        samples = _time(lambda: predict(str(image)), n)
        return {**_percentiles(samples), "peak_rss_mb": _peak_rss_mb()}

    from inspector.config import DetectorConfig
    from inspector.detect import load_detector
    from inspector.imageio import decode_image
    from inspector.types import Frame

    cfg = DetectorConfig.model_validate({"backend": backend, "imgsz": imgsz, "threads": threads})
    det = load_detector(cfg, weights)

    def once() -> int:
        frame = Frame(image=decode_image(image.read_bytes()))
        return len(det.detect([frame])[0])

    samples = _time(once, n)
    result: dict[str, Any] = {**_percentiles(samples), "peak_rss_mb": _peak_rss_mb()}
    if backend.startswith("onnx"):
        from inspector.detect.onnx import OnnxDetector

        assert isinstance(det, OnnxDetector)
        blob, _, _ = det.preprocess(decode_image(image.read_bytes()))
        session = det._session
        name = session.get_inputs()[0].name
        fwd = _time(lambda: session.run(None, {name: blob}), n)
        result["forward_p50_ms"] = round(float(np.percentile(fwd, 50)), 2)
    return result


def run_map(backend: str, weights: Path, data_yaml: Path, imgsz: int, threads: int) -> dict[str, Any]:
    """mAP50 of one backend's artefact on the synthetic test split, through ultralytics' validator."""
    from inspector import runtime
    from inspector.detect.yolo import validate

    runtime.configure(threads)
    suffix = {"ultralytics": ".pt", "onnx": ".onnx", "onnx-int8": ".int8.onnx"}[backend]
    model = weights if suffix == ".pt" else weights.with_suffix(suffix)
    metrics = validate(model, data_yaml, split="test", imgsz=imgsz)
    return {"map50": round(float(metrics["map50"]), 4), "map50_95": round(float(metrics["map50_95"]), 4)}


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


class Server:
    """``inspector serve`` in a subprocess on loopback, with its own data folder."""

    def __init__(self, data_dir: Path, backend: str, threads: int) -> None:
        self.port = _free_port()
        self.data_dir = data_dir
        env = dict(
            os.environ,
            INSPECTOR_THREADS=str(threads),
            INSPECTOR_DETECTOR__BACKEND=backend,
            INSPECTOR_DETECTOR__THREADS=str(threads),
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
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def api_latency(server: Server, image: bytes, n: int) -> dict[str, Any]:
    import httpx

    with httpx.Client(base_url=server.base, headers={"X-API-Key": server.key}, timeout=60) as client:

        def post() -> None:
            r = client.post("/v1/inspections", files=[("images", ("view.jpg", image, "image/jpeg"))])
            r.raise_for_status()

        return _percentiles(_time(post, n))


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
                        files=[("images", ("view.jpg", image, "image/jpeg"))],
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


# --------------------------------------------------------------------------- main


def _bench_image(work: Path) -> Path:
    import cv2

    from inspector.data.synth import render_sample

    path = work / "bench_1280x960.jpg"
    if not path.is_file():
        sample = render_sample(7, size=BENCH_IMAGE_SIZE)
        cv2.imwrite(str(path), sample.image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return path


def _ensure_exports(weights: Path, imgsz: int, threads: int, work: Path) -> None:
    onnx_path = weights.with_suffix(".onnx")
    if not onnx_path.is_file():
        from inspector.detect.yolo import export_onnx

        out = export_onnx(weights, imgsz=imgsz, threads=threads)
        if out != onnx_path:
            out.replace(onnx_path)
    int8 = weights.with_suffix(".int8.onnx")
    if not int8.is_file():
        from inspector.data.synth import render_sample
        from inspector.detect.quantize import quantize_int8

        calib = [render_sample(10_000 + i).image for i in range(48)]
        quantize_int8(onnx_path, int8, calib)


def _markdown(results: dict[str, Any]) -> str:
    s = results["summary"]
    lines = [
        "# Benchmark",
        "",
        f"Machine: {results['machine']['cpu']}, {results['machine']['cores']} cores; "
        f"threads {results['machine']['threads']}; "
        f"model {results['model']['version']} at {results['model']['imgsz']} px.",
        "",
        "| summary | value |",
        "| --- | --- |",
    ]
    lines += [f"| {k} | {v} |" for k, v in s.items()]
    lines += [
        "",
        f"Detector on one {BENCH_IMAGE_SIZE[0]}x{BENCH_IMAGE_SIZE[1]} JPEG (read, decode, detect):",
        "",
        "| backend | p50 ms | p95 ms | p99 ms | images/s | peak RSS MB | mAP50 |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in results["detector"].items():
        if "error" in r:
            lines.append(f"| {name} | error: {r['error']} | | | | | |")
            continue
        m = results.get("accuracy", {}).get(name, {}).get("map50", "")
        cells = [name, r["p50_ms"], r["p95_ms"], r["p99_ms"], r["throughput_per_s"], r["peak_rss_mb"], m]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    api = results.get("api", {})
    if api:
        lines += [
            "",
            "| API path (POST /v1/inspections, one view) | p50 ms | p95 ms | p99 ms | per s |",
            "| --- | --- | --- | --- | --- |",
        ]
        for name in ("sequential", "load"):
            if name in api and "p50_ms" in api[name]:
                r = api[name]
                lines.append(f"| {name} | {r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} | {r['throughput_per_s']} |")
        if "load" in api:
            lo = api["load"]
            lines += [
                "",
                f"Load: {lo['clients']} clients for {lo['seconds']} s: {lo['ok']} ok, {lo['errors']} errors, "
                f"{lo['lost']} lost, {lo['duplicated_ids']} duplicated.",
            ]
    lines += ["", "Reproduce: `make bench` (writes bench/results.json and this file)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inspector.bench", description=__doc__)
    sub = parser.add_subparsers(dest="part")
    d = sub.add_parser("detector")
    d.add_argument("--backend", required=True)
    d.add_argument("--weights", type=Path, required=True)
    d.add_argument("--image", type=Path, required=True)
    d.add_argument("--imgsz", type=int, required=True)
    d.add_argument("--threads", type=int, required=True)
    d.add_argument("-n", type=int, default=50)
    m = sub.add_parser("map")
    m.add_argument("--backend", required=True)
    m.add_argument("--weights", type=Path, required=True)
    m.add_argument("--data", type=Path, required=True)
    m.add_argument("--imgsz", type=int, required=True)
    m.add_argument("--threads", type=int, required=True)
    parser.add_argument("--out", type=Path, default=Path("bench"))
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, a 10 s load test")
    parser.add_argument("--load-seconds", type=float, default=60.0)
    parser.add_argument("--synth-images", type=int, default=1000)
    parser.add_argument("--map-images", type=int, default=300, help="synthetic test images for the mAP parity")
    args = parser.parse_args(argv)

    if args.part == "detector":
        print(json.dumps(run_detector(args.backend, args.weights, args.image, args.imgsz, args.threads, args.n)))
        return 0
    if args.part == "map":
        print(json.dumps(run_map(args.backend, args.weights, args.data, args.imgsz, args.threads)))
        return 0

    from inspector import runtime
    from inspector.registry import resolve_weights

    threads = runtime.configure()
    weights, version = resolve_weights(None)
    meta_path = weights.parent / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    imgsz = int(meta.get("imgsz") or (meta.get("recipe") or {}).get("imgsz") or 640)
    out_dir: Path = args.out
    work = out_dir / "work"
    work.mkdir(parents=True, exist_ok=True)
    n = 20 if args.quick else 60
    image = _bench_image(work)
    _ensure_exports(weights, imgsz, threads, work)

    results: dict[str, Any] = {
        "summary": {},
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "threads": threads,
            "python": platform.python_version(),
        },
        "model": {"version": version, "weights": str(weights), "imgsz": imgsz},
        "detector": {},
    }
    for backend in ("plain-ultralytics", "ultralytics", "onnx", "onnx-int8"):
        print(f"detector: {backend} ...", flush=True)
        results["detector"][backend] = _subprocess(
            [
                "detector",
                "--backend",
                backend,
                "--weights",
                str(weights),
                "--image",
                str(image),
                "--imgsz",
                str(imgsz),
                "--threads",
                str(threads),
                "-n",
                str(n),
            ],
            threads,
        )
        print(f"  {results['detector'][backend]}", flush=True)

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
    for backend in ("ultralytics", "onnx", "onnx-int8"):
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

    print("synthetic data engine ...", flush=True)
    results["synth"] = measure_speed(100 if args.quick else args.synth_images)

    det = results["detector"]
    ours = {k: v for k, v in det.items() if k != "plain-ultralytics" and "throughput_per_s" in v}
    fastest = max(ours, key=lambda k: ours[k]["throughput_per_s"]) if ours else None
    serve_backend = fastest or "ultralytics"
    print(f"API path with the {serve_backend} backend ...", flush=True)
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        server = Server(Path(tmp) / "data", serve_backend, threads)
        try:
            body = image.read_bytes()
            results["api"] = {"backend": serve_backend, "sequential": api_latency(server, body, n)}
            results["api"]["live_fps"] = live_fps(server)
            results["api"]["load"] = load_test(server, body, 8, 10.0 if args.quick else args.load_seconds)
            results["api"]["server_peak_rss_mb"] = server.peak_rss_mb()
        finally:
            server.close()

    station_latency = out_dir / "station_latency.json"
    if station_latency.is_file():
        results["station_latency"] = json.loads(station_latency.read_text())

    plain = det.get("plain-ultralytics", {})
    fwd = ours.get(serve_backend, {}).get("forward_p50_ms")
    api_p50 = results["api"]["sequential"]["p50_ms"]
    base_map = results["accuracy"].get("ultralytics", {}).get("map50")
    fast_map = results["accuracy"].get(fastest or "", {}).get("map50")
    results["summary"] = {
        "speedup_vs_ultralytics": round(ours[fastest]["throughput_per_s"] / plain["throughput_per_s"], 2)
        if fastest and "throughput_per_s" in plain
        else None,
        "overhead_ratio": round((api_p50 - fwd) / fwd, 3) if fwd else None,
        "api_p50_ms": api_p50,
        "api_p99_ms": results["api"]["sequential"]["p99_ms"],
        "live_fps": results["api"]["live_fps"],
        "peak_rss_mb": max([results["api"]["server_peak_rss_mb"]] + [v.get("peak_rss_mb", 0) for v in det.values()]),
        "fastest_backend": fastest,
        "map50_fastest_minus_pytorch": round(fast_map - base_map, 4)
        if isinstance(fast_map, float) and isinstance(base_map, float)
        else None,
        "load_errors": results["api"]["load"]["errors"],
        "load_lost": results["api"]["load"]["lost"],
        "synth_seconds_per_1000": results["synth"].get("seconds_per_1000"),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out_dir / "results.md").write_text(_markdown(results))
    print(_markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
