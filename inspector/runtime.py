"""Process set-up that must happen before torch or ultralytics are imported.

Ultralytics reaches for the network (settings sync, fonts, auto-install of
requirements) and pins torch to one thread. The station runs offline and sets
its own thread count, so every entry point calls :func:`configure` first.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from inspector.paths import cache_dir

_FONT_NAMES = ("Arial.ttf", "Arial.Unicode.ttf")
_configured_threads: int | None = None


def _bundled_font() -> Path | None:
    """A TTF that ships inside an installed package (matplotlib's DejaVu Sans)."""
    try:
        import matplotlib
    except ImportError:  # pragma: no cover - matplotlib is an ultralytics dependency
        return None
    font = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    return font if font.is_file() else None


def ultralytics_config_dir() -> Path:
    return cache_dir() / "ultralytics"


def configure(threads: int | None = None) -> int:
    """Make ultralytics offline, give it a local font, and fix the thread count.

    Safe to call many times; returns the thread count in force.
    """
    global _configured_threads
    n = threads or int(os.environ.get("INSPECTOR_THREADS", "0")) or max(1, os.cpu_count() or 1)
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ["YOLO_AUTOINSTALL"] = "False"
    os.environ.setdefault("YOLO_VERBOSE", "False")
    os.environ["OMP_NUM_THREADS"] = str(n)
    os.environ.setdefault("MKL_NUM_THREADS", str(n))
    cfg = ultralytics_config_dir()
    os.environ["YOLO_CONFIG_DIR"] = str(cfg)
    # ultralytics looks for its fonts in <YOLO_CONFIG_DIR>/Ultralytics before downloading them.
    font_dir = cfg / "Ultralytics"
    font_dir.mkdir(parents=True, exist_ok=True)
    src = _bundled_font()
    if src is not None:
        for name in _FONT_NAMES:
            dst = font_dir / name
            if not dst.exists():
                tmp = dst.with_suffix(".tmp")
                shutil.copyfile(src, tmp)
                tmp.replace(dst)
    if _configured_threads != n:
        import torch

        torch.set_num_threads(n)
        _configured_threads = n
    return n


def cpu_speed(seconds: float = 1.0) -> float:
    """The machine's fp32 3x3-convolution throughput now, in GFLOP/s, at the configured threads.

    Why: this machine is a share of a host, and it has run at about half its usual speed for
    tens of minutes. Every latency, throughput and time-budgeted training result scales with it,
    so benchmarks and model cards record it beside their figures; compare two runs only at
    similar speeds.
    """
    import time

    import torch

    conv = torch.nn.Conv2d(64, 64, 3, padding=1, bias=False)
    x = torch.rand(4, 64, 96, 96)
    flop = 2.0 * 64 * 64 * 9 * 4 * 96 * 96  # multiply-adds of one call, counted twice
    with torch.inference_mode():
        conv(x)  # first call: oneDNN picks its kernel
        n, t0 = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - t0) < seconds:
            conv(x)
            n += 1
    return round(n * flop / elapsed / 1e9, 1)
