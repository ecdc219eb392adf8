"""Writing the synthetic bench out as a YOLO dataset, contact sheets (samples, faintest defects), and timing it.

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
from inspector.data.synth.visibility import defect_visibility
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
    return bench.render(int(rng.integers(1 << 31)), empty=bool(rng.random() < EMPTY_P), with_clean=with_clean, mix=mix)


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
    (root / "labels" / split / f"{stem}.txt").write_text(
        label_text(r.xyxy, r.class_ids, decimals=6, width=w, height=h), encoding="utf-8"
    )
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
    only: str | None = None,
) -> Path:
    """Render ``n_images`` into a YOLO dataset (images/, labels/, meta/ per split); returns its data.yaml.

    ``mix`` changes how many items carry defects and how many: a training set may be richer in
    defects than the test sets, which keep the default. ``only`` renders one split's images alone:
    with another ``mix``, the validation images of a defect-rich training render drawn as the bench
    draws them (where operating points and base rates are measured), still never trained on.
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
    indices = [i for i in range(n_images) if only is None or split_of(seed, i, val, test) == only]
    if not indices:
        raise ValueError(f"no image of the {n_images} falls in the {only!r} split")
    tasks = ((out_dir, int(seed), i, w, h, float(val), float(test), mix) for i in indices)
    split_counts: Counter[str] = Counter()
    class_counts: Counter[int] = Counter()
    family_counts: Counter[str] = Counter()
    n_empty = n_free = 0
    t0 = time.perf_counter()
    with _Results(tasks, n_workers, len(indices)) as results:
        for res in _progress(results, len(indices), progress):
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
    n_items = len(indices) - n_empty
    summary = {
        "generator": "inspector.data.synth",
        "seed": int(seed),
        "images": len(indices),
        **({"only": only, "of_images": n_images} if only else {}),
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
    return _write_grid(path, tiles, cols)


def _write_grid(path: Path, tiles: list[npt.NDArray[np.uint8]], cols: int) -> Path:
    """Tiles of one size as a PNG grid, ``cols`` wide (the last row filled with black)."""
    tiles = list(tiles)
    while len(tiles) % cols:
        tiles.append(np.zeros_like(tiles[0]))
    sheet = np.vstack([np.hstack(tiles[i : i + cols]) for i in range(0, len(tiles), cols)])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), sheet, [cv2.IMWRITE_PNG_COMPRESSION, 9]):
        raise OSError(f"cannot write {path}")
    return path


def faintest_defects(
    path: Path,
    seed: int = 0,
    images: int = 200,
    n: int = 24,
    size: tuple[int, int] = (1280, 960),
    cols: int = 6,
    tile: int = 192,
) -> tuple[Path, list[dict[str, Any]]]:
    """Measure every labelled defect of ``images`` dataset pictures after the camera; draw the ``n`` faintest.

    Each tile is the camera's own pixels around one defect, twice enlarged for a small one (nearest
    neighbour, so nothing is smoothed), its box drawn 3 px outside it, and its measure under it: the
    Rose number at the 1280x960 station camera, the contrast over the noise and the visible area.
    Returns the PNG and every defect's measure, faintest first.
    """
    names = default_labelmap().names
    found: list[tuple[float, dict[str, Any], npt.NDArray[np.uint8]]] = []
    for i in range(images):
        r = _render(image_seed(seed, i), size, with_clean=True)
        for d, box, cid in zip(r.meta["defects"], r.xyxy[1:], r.class_ids[1:], strict=True):
            v = defect_visibility(r.image, r.clean, box)
            row = {"index": i, "class": names[int(cid)], "box": [round(float(b), 1) for b in box], **v.to_dict()}
            row["scene"] = d["visibility"]  # the number the renderer kept it by, before the camera
            found.append((v.reference, row, _defect_tile(r.image, box, tile)))
    found.sort(key=lambda t: t[0])
    tiles = [_caption(t, row) for _, row, t in found[:n]] or [np.zeros((tile + 34, tile, 3), np.uint8)]
    return _write_grid(path, tiles, cols), [row for _, row, _ in found]


def _defect_tile(image: npt.NDArray[np.uint8], box: npt.ArrayLike, tile: int) -> npt.NDArray[np.uint8]:
    """The pixels around a defect (at least half the tile, more for a large defect) with its box, as a square."""
    x0, y0, x1, y1 = (float(v) for v in np.asarray(box, np.float64).reshape(4))
    side = int(max(tile // 2, 1.4 * max(x1 - x0, y1 - y0) + 8))
    h, w = image.shape[:2]
    side = min(side, h, w)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left = int(np.clip(round(cx - side / 2), 0, w - side))
    top = int(np.clip(round(cy - side / 2), 0, h - side))
    crop = np.ascontiguousarray(image[top : top + side, left : left + side])
    k = tile / side
    out = np.asarray(cv2.resize(crop, (tile, tile), interpolation=cv2.INTER_NEAREST), np.uint8)
    p0 = (int((x0 - left) * k) - 3, int((y0 - top) * k) - 3)
    p1 = (int(np.ceil((x1 - left) * k)) + 3, int(np.ceil((y1 - top) * k)) + 3)
    cv2.rectangle(out, p0, p1, (0, 220, 255), 1, cv2.LINE_AA)
    return out


def _caption(tile: npt.NDArray[np.uint8], row: dict[str, Any]) -> npt.NDArray[np.uint8]:
    strip = np.zeros((34, tile.shape[1], 3), np.uint8)
    top = f"{row['class']}  R {row['reference']:.1f}"
    low = f"{row['contrast']:.1f}/{row['noise']:.1f} grey, {int(row['area_px'])} px"
    for y, line in ((13, top), (28, low)):
        cv2.putText(strip, line, (4, y), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (230, 230, 230), 1, cv2.LINE_AA)
    framed = np.vstack([tile, strip])
    framed[:, -1] = 40  # a thin seam between tiles
    return framed


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
