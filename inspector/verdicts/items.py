"""The bench items an item-level evaluation grades: held-out synthetic renders, or a rendered dataset.

Held-out item ``k`` is the synthetic bench rendered with seed ``HELD_OUT_BASE + k``. Every
training render goes through :func:`inspector.data.synth.dataset.image_seed`, whose seeds are
below 2**63 (a 64-bit hash shifted right by one): the shipped recipes (``default_model.py``:
datasets 1 and 2), the pretraining run (1 and 2), the accuracy bench (424242) and any other
dataset seed. The family classifier renders small seeds (``seed * 1_000_003 + i``). Seeds from
2**63 on are therefore never trained on, whatever dataset seeds a later recipe picks.

Each item passes through JPEG at the quality the dataset writer uses (the camera's compression),
so an item read back from the render cache is the same picture as one rendered in memory.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

HELD_OUT_BASE = 1 << 63
JPEG_QUALITY = 95  # as inspector.data.synth.dataset writes its images


@dataclass(frozen=True)
class BenchItem:
    """One picture with its truth: labelled boxes (station labelmap ids) and the render's sidecar."""

    key: str
    image: npt.NDArray[np.uint8]
    xyxy: npt.NDArray[np.float32]
    class_ids: npt.NDArray[np.int64]
    meta: dict[str, Any]


def parse_seeds(spec: str) -> range:
    """``A:B`` (B excluded) as a range of held-out item numbers."""
    try:
        a, b = (int(p) for p in spec.split(":"))
    except ValueError:
        raise ValueError(f"seeds must be given as A:B (whole numbers), got {spec!r}") from None
    if a < 0 or b <= a:
        raise ValueError(f"seeds A:B need 0 <= A < B, got {spec!r}")
    return range(a, b)


def _jpeg(image: npt.NDArray[np.uint8]) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise OSError("cannot encode a rendered item as JPEG")
    return bytes(buf.tobytes())


def _decode(data: bytes) -> npt.NDArray[np.uint8]:
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise OSError("cannot decode a cached item")
    return np.asarray(img, np.uint8)


Size = tuple[int, int]


def _render(k: int, size: Size) -> tuple[bytes, dict[str, Any]]:
    """Held-out item ``k``, seen by a camera of ``size`` (width, height), as JPEG bytes and a record of its truth."""
    from inspector.data.synth.dataset import render_sample

    s = render_sample(HELD_OUT_BASE + k, size)
    record = {"xyxy": s.xyxy.tolist(), "class_ids": s.class_ids.tolist(), "meta": s.meta}
    return _jpeg(s.image), record


def _write_cached(task: tuple[Path, int, Size]) -> int:
    folder, k, size = task
    data, record = _render(k, size)
    (folder / f"{k}.jpg").write_bytes(data)
    (folder / f"{k}.json").write_text(json.dumps(record), encoding="utf-8")
    return k


def _init_worker() -> None:
    cv2.setNumThreads(1)


def _item(k: int, data: bytes, record: dict[str, Any]) -> BenchItem:
    return BenchItem(
        key=f"held-out-{k}",
        image=_decode(data),
        xyxy=np.asarray(record["xyxy"], np.float32).reshape(-1, 4),
        class_ids=np.asarray(record["class_ids"], np.int64).reshape(-1),
        meta=record["meta"],
    )


def _cache_is_current(folder: Path, probe: int, size: Size) -> bool:
    """The renderer still draws what the cache holds: one item rendered again has the same bytes."""
    jpg, rec = folder / f"{probe}.jpg", folder / f"{probe}.json"
    if not (jpg.is_file() and rec.is_file()):
        return True  # nothing cached to disagree with
    data, record = _render(probe, size)
    same_pixels = hashlib.sha256(data).digest() == hashlib.sha256(jpg.read_bytes()).digest()
    return same_pixels and json.loads(json.dumps(record)) == json.loads(rec.read_text(encoding="utf-8"))


def held_out_items(
    seeds: Sequence[int], cache: Path | None = None, workers: int = 1, size: Size = (640, 480)
) -> Iterator[BenchItem]:
    """Held-out items ``seeds`` in order, as a camera of ``size`` sees them; with ``cache``, rendered once.

    The station is judged at its camera's resolution. The renderer draws at the frame's own
    resolution, so an item seed at another size is another picture (its defects fall elsewhere):
    compare two sizes by their figures, not item by item. The cache keeps one folder per size; a
    folder whose first item the renderer no longer draws the same way is rendered anew.
    """
    if cache is None:
        for k in seeds:
            data, record = _render(k, size)
            yield _item(k, data, record)
        return
    folder = Path(cache) / f"{size[0]}x{size[1]}"
    folder.mkdir(parents=True, exist_ok=True)
    if seeds and not _cache_is_current(folder, seeds[0], size):
        for old in folder.glob("*.j*"):
            old.unlink()
    missing = [k for k in seeds if not ((folder / f"{k}.jpg").is_file() and (folder / f"{k}.json").is_file())]
    if missing:
        tasks = [(folder, k, size) for k in missing]
        if workers > 1 and len(missing) >= 4 * workers:
            # spawn, not fork: torch's thread pools do not survive a fork
            with mp.get_context("spawn").Pool(workers, initializer=_init_worker) as pool:
                for _ in pool.imap_unordered(_write_cached, tasks, chunksize=4):
                    pass
        else:
            for t in tasks:
                _write_cached(t)
    for k in seeds:
        record = json.loads((folder / f"{k}.json").read_text(encoding="utf-8"))
        yield _item(k, (folder / f"{k}.jpg").read_bytes(), record)


def dataset_items(root: Path, split: str = "test") -> Iterator[BenchItem]:
    """The images of one split of a rendered dataset (``inspector data synth``), with labels and sidecars."""
    from inspector.data.formats.yolo import label_boxes, read_labels

    root = Path(root)
    if root.is_file():  # a data.yaml: its folder
        root = root.parent
    images = sorted((root / "images" / split).glob("*.jpg"))
    if not images:
        raise ValueError(f"{root}: no images in images/{split} (a dataset written by `inspector data synth`?)")
    for img in images:
        side = root / "meta" / split / f"{img.stem}.json"
        if not side.is_file():
            raise ValueError(f"{img}: no sidecar {side}; item-level evaluation needs the render's sidecars")
        image = _decode(img.read_bytes())
        h, w = image.shape[:2]
        xyxy, ids = label_boxes(read_labels(img), w, h)
        yield BenchItem(
            key=f"{split}/{img.stem}",
            image=image,
            xyxy=np.asarray(xyxy, np.float32).reshape(-1, 4),
            class_ids=ids,
            meta=json.loads(side.read_text(encoding="utf-8")),
        )
