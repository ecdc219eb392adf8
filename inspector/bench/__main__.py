"""``make bench``: measure the station against plain ultralytics, in one run, on this machine.

Each detector backend runs in its own subprocess so that its peak RSS is its own.
Results go to ``bench/results.json`` (starting with ``"summary"``) and ``bench/results.md``.

    python -m inspector.bench [--quick] [--load-seconds 60] [--out bench]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from inspector.bench import accuracy, api, floor, live, machine, report, speed
from inspector.bench.subject import BACKENDS, prepare
from inspector.registry import serving_hints


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m inspector.bench", description=__doc__)
    sub = parser.add_subparsers(dest="part")
    model = argparse.ArgumentParser(add_help=False)  # what every measuring part loads
    model.add_argument("--weights", type=Path, required=True)
    model.add_argument("--imgsz", type=int, required=True)
    model.add_argument("--threads", type=int, required=True)
    d = sub.add_parser("detectors", parents=[model])
    d.add_argument("--backends", required=True)
    d.add_argument("--image", type=Path, required=True)
    d.add_argument("-n", type=int, default=50)
    d.add_argument("--rss", action="store_true", help="one backend: its process's peak RSS")
    m = sub.add_parser("map", parents=[model])
    m.add_argument("--backend", required=True)
    m.add_argument("--data", type=Path, required=True)
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
    return parser


def _part(args: argparse.Namespace) -> None:
    """One part in this (child) process: the detectors' or mAP figures printed as JSON, or the bare server."""
    if args.part == "bare-server":
        from inspector.bench import bare  # FastAPI only here: a detector child's peak RSS is the detector's

        bare.serve(args.port)
    elif args.part == "map":
        print(json.dumps(accuracy.run_map(args.backend, args.weights, args.data, args.imgsz, args.threads)))
    elif args.rss:
        backend = args.backends.split(",")[0]
        print(json.dumps(speed.run_rss(backend, args.weights, args.image, args.imgsz, args.threads, args.n)))
    else:
        names = args.backends.split(",")
        print(json.dumps(speed.run_detectors(names, args.weights, args.image, args.imgsz, args.threads, args.n)))


def _run(args: argparse.Namespace, backends: list[str]) -> None:
    """The whole bench in its order, or with ``--floor-only`` the overhead floor alone."""
    from inspector import runtime
    from inspector.data.synth import measure_speed

    threads = runtime.configure()
    out_dir: Path = args.out
    n = 20 if args.quick else 60
    subject = prepare(out_dir, threads)
    results: dict[str, Any] = {
        "summary": {},
        "machine": machine.at_start(threads),
        "model": subject.describe(),
        "detector": {},
    }
    print(f"detectors, interleaved: {', '.join(backends)} ...", flush=True)
    timed = speed.time_backends(subject, backends, n)
    if "error" in timed:
        raise SystemExit(f"the detector benchmark failed: {timed['error']}")
    body = subject.image.read_bytes()
    if args.floor_only:
        floor_only = floor.floor_beside(timed, backends[0], body, subject.work, n)
        report.write_floor(out_dir, {**floor_only, "machine": results["machine"], "model": results["model"]})
        return
    results["decode_p50_ms"] = timed.pop("_decode_p50_ms", None)
    results["decode_for_model_p50_ms"] = timed.pop("_decode_for_model_p50_ms", None)
    results["detector"] = speed.with_rss(subject, backends, timed)

    data_yaml = accuracy.map_test_set(subject.work, 60 if args.quick else args.map_images)
    results["accuracy"] = accuracy.measure(subject, backends, data_yaml)
    if not args.no_synth:
        print("synthetic data engine ...", flush=True)
        results["synth"] = measure_speed(100 if args.quick else args.synth_images)

    serve = speed.serving_backend(results["detector"], serving_hints(subject.version).get("backend"))
    print(f"API path with the {serve} backend ...", flush=True)
    results["api"] = api.measure(subject, serve, body, n, 10.0 if args.quick else args.load_seconds)
    print("live view and the API beside the camera ...", flush=True)
    results["api"].update(live.measure(subject, serve, body, n))
    if results["detector"].get(serve, {}).get("forward_p50_ms"):
        print("overhead floor: bare HTTP, decode, durable write ...", flush=True)
        floor_again = floor.measure_again(subject, serve, body, n)
        if floor_again is not None:
            results["overhead_floor"] = floor_again

    station_latency = report.station_latency(out_dir, subject.version)
    if station_latency is not None:
        results["station_latency"] = station_latency
    results["summary"] = report.summary(results)
    results["machine"].update(machine.at_end())
    report.write(out_dir, results)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.part:
        _part(args)
        return 0
    backends = [b for b in args.backends.split(",") if b]
    unknown = sorted(set(backends) - set(BACKENDS))
    if unknown:
        parser.error(f"unknown backend(s) {', '.join(unknown)}: choose from {', '.join(BACKENDS)}")
    _run(args, backends)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
