"""Writing the synthetic bench out as a YOLO dataset, a contact sheet, and timing it.

Image ``i`` of a dataset with seed ``s`` depends on (s, i) only: it can be
rendered by any worker process, in any order, and comes out the same. Workers
write their files themselves and send back a few numbers, so memory does not
grow with the number of images.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from inspector.data.draw import draw_boxes
from inspector.data.formats.yolo import label_text
from inspector.data.synth.defects import DEFECTS
from inspector.data.synth.scene import DEFAULT_MIX, EMPTY_P, Bench, DefectMix, Sample
from inspector.items import FAMILIES
from inspector.labelmap import default_labelmap

SPLITS = ("train", "val", "test")
JPEG_QUALITY = 95  # the camera's own compression is already in the picture


def image_seed(seed: int, index: int) -> int:
    """The seed of image ``index`` in a dataset generated with ``seed``."""
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1, np.uint64)[0] >> 1)


def split_of(seed: int, index: int, val: float, test: float) -> str:
    u = float(np.random.default_rng([0x5B11, int(seed), int(index)]).random())
    return "val" if u < val else ("test" if u < val + test else "train")


def render_sample(seed: int, size: tuple[int, int] = (640, 480)) -> Sample:
    """A random bench and a random item (sometimes none), as in a dataset."""
    r = _render(seed, size, with_clean=True)
    assert r.clean is not None
    return Sample(image=r.image, clean=r.clean, xyxy=r.xyxy, class_ids=r.class_ids, meta=r.meta)


def _render(seed: int, size: tuple[int, int], with_clean: bool, mix: DefectMix = DEFAULT_MIX) -> Any:
    rng = np.random.default_rng([0x5A4D, int(seed)])
    bench = Bench(int(rng.integers(1 << 31)), size)
    return bench.render(
        int(rng.integers(1 << 31)), empty=bool(rng.random() < EMPTY_P), with_clean=with_clean, mix=mix
    )


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)
    cv2.setNumThreads(1)


def _write_one(task: tuple[Path, int, int, int, int, float, float, DefectMix]) -> dict[str, Any]:
    root, seed, index, w, h, val, test, mix = task
    t0 = time.perf_counter()
    split = split_of(seed, index, val, test)
    r = _render(image_seed(seed, index), (w, h), with_clean=False, mix=mix)
    stem = f"{index:06d}"
    img_path = root / "images" / split / f"{stem}.jpg"
    if not cv2.imwrite(str(img_path), r.image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
        raise OSError(f"cannot write {img_path}")
    (root / "labels" / split / f"{stem}.txt").write_text(label_text(r.xyxy, r.class_ids, decimals=6, width=w, height=h), encoding="utf-8")
    meta = {"image": f"images/{split}/{stem}.jpg", "index": index, "dataset_seed": seed, **r.meta}
    (root / "meta" / split / f"{stem}.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    return {
        "split": split,
        "classes": [int(c) for c in r.class_ids],
        "empty": bool(r.meta["empty"]),
        "defect_free": (not r.meta["empty"]) and not r.meta["defects"],
        "family": r.meta["family"],
        "seconds": time.perf_counter() - t0,
    }


def _check_out_dir(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"{out_dir} exists and is not a folder")
    for sub in ("images", "labels", "data.yaml"):
        p = out_dir / sub
        if p.exists() and (p.is_file() or any(p.iterdir())):
            raise ValueError(f"{out_dir} already holds a dataset ({sub}); choose a new folder or remove it first")


def generate(
    out_dir: Path,
    n_images: int,
    seed: int,
    size: tuple[int, int] = (640, 480),
    val: float = 0.15,
    test: float = 0.15,
    progress: bool = True,
    workers: int | None = None,
    mix: DefectMix = DEFAULT_MIX,
) -> Path:
    """Render ``n_images`` into a YOLO dataset (images/, labels/, meta/ per split); returns its data.yaml.

    ``mix`` changes how many items carry defects and how many: a training set may be richer in
    defects than the test sets, which keep the default.
    """
    if n_images < 1:
        raise ValueError("the number of images must be at least 1")
    if not (0.0 <= val < 1.0 and 0.0 <= test < 1.0 and val + test < 1.0):
        raise ValueError(f"val ({val}) and test ({test}) must be fractions that leave room for training")
    w, h = int(size[0]), int(size[1])
    if w < 64 or h < 48:
        raise ValueError(f"image size {w}x{h} is too small (at least 64x48)")
    out_dir = Path(out_dir)
    _check_out_dir(out_dir)
    for split in SPLITS:
        for sub in ("images", "labels", "meta"):
            (out_dir / sub / split).mkdir(parents=True, exist_ok=True)
    n_workers = workers if workers is not None else min(2, os.cpu_count() or 1)
    tasks = ((out_dir, int(seed), i, w, h, float(val), float(test), mix) for i in range(n_images))
    split_counts: Counter[str] = Counter()
    class_counts: Counter[int] = Counter()
    family_counts: Counter[str] = Counter()
    n_empty = n_free = 0
    t0 = time.perf_counter()
    with _Results(tasks, n_workers, n_images) as results:
        for res in _progress(results, n_images, progress):
            split_counts[res["split"]] += 1
            class_counts.update(res["classes"])
            if res["family"]:
                family_counts[res["family"]] += 1
            n_empty += res["empty"]
            n_free += res["defect_free"]
    seconds = time.perf_counter() - t0
    names = default_labelmap().names
    lines = [
        "# Synthetic returns bench (inspector data synth). Paths are relative to this file's folder.",
        "train: images/train",
        "val: images/val",
        "test: images/test",
        f"nc: {len(names)}",
        "names:",
        *[f"  {i}: {n}" for i, n in enumerate(names)],
    ]
    data_yaml = out_dir / "data.yaml"
    data_yaml.write_text("\n".join(lines) + "\n", encoding="utf-8")
    n_items = n_images - n_empty
    summary = {
        "generator": "inspector.data.synth",
        "seed": int(seed),
        "images": n_images,
        "size": [w, h],
        "splits": {s: split_counts.get(s, 0) for s in SPLITS},
        "boxes_per_class": {names[k]: class_counts.get(k, 0) for k in range(len(names))},
        "families": {f: family_counts.get(f, 0) for f in FAMILIES},
        "empty_images": n_empty,
        "defect_free_items": n_free,
        "defect_free_share": round(n_free / n_items, 4) if n_items else None,
        "seconds": round(seconds, 2),
        "workers": n_workers,
        "defect_mix": {"defect_free_p": mix.defect_free_p, "defects_per_item": list(mix.counts)},
    }
    (out_dir / "dataset.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return data_yaml


class _Results:
    """Results in index order, from a pool of spawned workers or from this process."""

    def __init__(self, tasks: Iterator[Any], workers: int, n: int) -> None:
        self.tasks, self.workers, self.n = tasks, workers, n
        self.pool: Any = None

    def __enter__(self) -> Iterator[dict[str, Any]]:
        if self.workers > 1 and self.n >= 4 * self.workers:
            # spawn, not fork: torch's thread pools do not survive a fork
            self.pool = mp.get_context("spawn").Pool(self.workers, initializer=_init_worker)
            return iter(self.pool.imap(_write_one, self.tasks, chunksize=4))
        return (_write_one(t) for t in self.tasks)

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.terminate() if exc[0] is not None else self.pool.close()
            self.pool.join()


def _progress(it: Iterator[dict[str, Any]], n: int, show: bool) -> Iterator[dict[str, Any]]:
    if not show:
        yield from it
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("rendering"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), transient=True
    ) as bar:
        task = bar.add_task("render", total=n)
        for res in it:
            bar.advance(task)
            yield res


# --------------------------------------------------------------------------- contact sheet


def contact_sheet(
    path: Path,
    seed: int = 0,
    n: int = 24,
    size: tuple[int, int] = (640, 480),
    cols: int = 6,
    tile_width: int = 256,
    boxes: bool = True,
) -> Path:
    """A grid of ``n`` labelled samples as a PNG.

    Every family and defect class shows, with two defect-free items and an empty bench.
    """
    names = default_labelmap().names
    tiles = []
    th = round(tile_width * size[1] / size[0])
    scale = np.array([tile_width / size[0], th / size[1]] * 2, np.float32)
    for k in range(n):
        fam = FAMILIES[k % len(FAMILIES)]
        bench = Bench(int(seed) * 1000 + k, size)
        free, empty = k % 11 == 10, k == n - 1
        wanted = (DEFECTS[k % len(DEFECTS)], DEFECTS[(k + 3) % len(DEFECTS)])
        r = bench.render(k, family=fam, defect_free=free, empty=empty, n_defects=1 + k % 3, classes=wanted)
        if not (free or empty or r.meta["defects"]):  # neither class fits this family: let it choose
            r = bench.render(k, family=fam, n_defects=1 + k % 3, defect_free=False)
        img = np.asarray(cv2.resize(r.image, (tile_width, th), interpolation=cv2.INTER_AREA), np.uint8)
        tiles.append(draw_boxes(img, r.xyxy * scale, r.class_ids, names) if boxes else img)
    while len(tiles) % cols:
        tiles.append(np.zeros_like(tiles[0]))
    sheet = np.vstack([np.hstack(tiles[i : i + cols]) for i in range(0, len(tiles), cols)])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), sheet, [cv2.IMWRITE_PNG_COMPRESSION, 9]):
        raise OSError(f"cannot write {path}")
    return path


# ---------------------------------------------------------------------------------- speed


def measure_speed(n: int = 1000, size: tuple[int, int] = (640, 480), workers: int | None = None) -> dict[str, float]:
    """Generate ``n`` images into a temporary folder and time it.

    Besides wall-clock figures it reports the CPU seconds spent per image (this process and its
    workers), which stays meaningful when other jobs share the machine.
    """
    import resource

    def cpu() -> float:
        own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

    with tempfile.TemporaryDirectory(prefix="inspector-synth-") as tmp:
        c0, t0 = cpu(), time.perf_counter()
        generate(Path(tmp) / "ds", n, seed=0, size=size, progress=False, workers=workers)
        seconds = time.perf_counter() - t0
        cpu_seconds = cpu() - c0
    used = workers if workers is not None else min(2, os.cpu_count() or 1)
    return {
        "images": float(n),
        "seconds": round(seconds, 3),
        "images_per_s": round(n / seconds, 3),
        "seconds_per_1000": round(seconds * 1000.0 / n, 3),
        "cpu_seconds_per_image": round(cpu_seconds / n, 4),
        "workers": float(used),
        "width": float(size[0]),
        "height": float(size[1]),
    }
