"""The run's results: the headline summary, ``results.json`` and ``results.md``, and ``overhead_floor.json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from inspector.bench.speed import best_throughput, fastest, ours
from inspector.bench.subject import BENCH_IMAGE_SIZE


def summary(results: dict[str, Any]) -> dict[str, Any]:
    """The figures the targets are judged by, from the measured results."""
    det = results["detector"]
    own = ours(det)
    best = fastest(det)
    api = results["api"]
    fwd = own.get(api["backend"], {}).get("forward_p50_ms")
    plain_tput = det.get("plain-ultralytics", {}).get("throughput_per_s")
    api_p50 = api["sequential"]["p50_ms"]
    base_map = results["accuracy"].get("ultralytics", {}).get("map50")
    fast_map = results["accuracy"].get(best or "", {}).get("map50")
    return {
        "speedup_vs_ultralytics": round(best_throughput(own[best]) / plain_tput, 2) if best and plain_tput else None,
        "overhead_ratio": round((api_p50 - fwd) / fwd, 3) if fwd else None,
        # the least any pipeline behind this API could add (bare HTTP + decode + durable write), same run
        "overhead_floor_ratio": results.get("overhead_floor", {}).get("floor_ratio"),
        "api_p50_ms": api_p50,
        "api_p99_ms": api["sequential"]["p99_ms"],
        "live_fps": api["live_fps"],
        "peak_rss_mb": max(
            [api["server_peak_rss_mb"], api["server_with_camera_peak_rss_mb"]]
            + [v.get("peak_rss_mb", 0) for v in det.values()]
        ),
        "fastest_backend": best,
        "speedup_one_at_a_time": round(own[best]["throughput_per_s"] / plain_tput, 2) if best and plain_tput else None,
        "api_backend": api["backend"],
        "map50_fastest_minus_pytorch": round(fast_map - base_map, 4)
        if isinstance(fast_map, float) and isinstance(base_map, float)
        else None,
        "load_errors": api["load"]["errors"],
        "load_lost": api["load"]["lost"],
        "synth_seconds_per_1000": results.get("synth", {}).get("seconds_per_1000"),
    }


def station_latency(out_dir: Path, version: str | None) -> dict[str, Any] | None:
    """The operator page's latency that ``make bench`` measured just before, if it was this model's."""
    path = out_dir / "station_latency.json"
    if not path.is_file():
        return None
    measured: dict[str, Any] = json.loads(path.read_text())
    # not a figure left over from another model
    return measured if measured.get("model_version") == version else None


def write(out_dir: Path, results: dict[str, Any]) -> None:
    """``results.json`` and ``results.md`` into ``out_dir``; the markdown is printed too."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out_dir / "results.md").write_text(markdown(results))
    print(markdown(results))


def write_floor(out_dir: Path, floor: dict[str, Any]) -> None:
    """``overhead_floor.json`` into ``out_dir`` (``--floor-only``), and printed."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "overhead_floor.json").write_text(json.dumps(floor, indent=2) + "\n")
    print(json.dumps(floor, indent=2))


def markdown(results: dict[str, Any]) -> str:
    """``results.md``: the machine and model, the summary, then a table for each part."""
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
