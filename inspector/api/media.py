"""The images of an inspection as bytes: checked, hashed, decoded for the model, encoded back, drawn on.

Uploads are sized from their headers before anything is decoded, and decoded no
larger than the serving model needs; what the store keeps is the bytes as sent.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from inspector.draw import draw_detections
from inspector.errors import InvalidInput, TooLarge, Unsupported
from inspector.imageio import ImageError, declared_pixels, decode_image, decode_view
from inspector.store.images import MEDIA_TYPES, sha256_hex
from inspector.types import Detections, Frame

log = logging.getLogger("inspector.api")

# Part of every annotated copy's name: change it when the drawing changes, and old copies are no longer used.
ANNOTATION_VERSION = "1"

# ImageError codes that are a more specific kind of bad input.
_IMAGE_ERRORS: dict[str, type[InvalidInput]] = {"unsupported_format": Unsupported, "too_many_pixels": TooLarge}


def sniff_media_type(data: bytes) -> str:
    """The media type of JPEG, PNG or WebP bytes from their magic numbers."""
    if data[:3] == b"\xff\xd8\xff":
        return MEDIA_TYPES["JPEG"]
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return MEDIA_TYPES["PNG"]
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return MEDIA_TYPES["WEBP"]
    return "application/octet-stream"


def encode_jpeg(image: np.ndarray[Any, Any], quality: int = 95) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("could not encode the frame as JPEG")
    return bytes(buf.tobytes())


def digests_of(images: Sequence[bytes]) -> list[str]:
    """The sha256 of each image (hashlib lets go of the GIL: run it beside the decode)."""
    return [sha256_hex(b) for b in images]


def request_pixels(blobs: list[bytes], max_pixels: int, max_request_pixels: int) -> int:
    """The pixels the views will take once decoded, from their headers; :class:`TooLarge` over either limit."""
    sizes = [declared_pixels(b) for b in blobs]
    for n, size in enumerate(sizes):
        if size > max_pixels:
            raise TooLarge(
                f"images[{n}]: {size} pixels is over the limit of {max_pixels}", code="too_many_pixels", view=n
            )
    total = sum(sizes)
    if total > max_request_pixels:
        raise TooLarge(
            f"the views add up to {total} pixels, over the limit of {max_request_pixels} for one inspection",
            code="too_many_pixels",
        )
    return total


def decode_all(blobs: list[bytes], max_pixels: int, fit: int | None = None) -> list[Frame]:
    """The views as frames, each decoded no larger than a model of input side ``fit`` needs."""
    out = []
    for n, data in enumerate(blobs):
        try:
            image, full_size = decode_view(data, fit=fit, max_pixels=max_pixels, name=f"images[{n}]")
        except ImageError as exc:
            raise _IMAGE_ERRORS.get(exc.code, InvalidInput)(str(exc), code=exc.code, view=n) from exc
        out.append(Frame(image=image, camera_id=f"view{n}", full_size=full_size))
    return out


def detections_of(records: Sequence[dict[str, Any]]) -> Detections:
    """Rebuild drawable detections from their stored JSON rows."""
    if not records:
        return Detections.empty(("item",))
    top = max(int(r["class_id"]) for r in records)
    names = [str(i) for i in range(top + 1)]
    for r in records:
        names[int(r["class_id"])] = str(r["class_name"])
    return Detections(
        xyxy=np.array([r["xyxy"] for r in records], dtype=np.float32),
        confidence=np.array([r["confidence"] for r in records], dtype=np.float32),
        class_id=np.array([r["class_id"] for r in records], dtype=np.int64),
        class_names=tuple(names),
    )


def annotated_jpeg(data: bytes, records: Sequence[dict[str, Any]], max_pixels: int) -> bytes:
    """A stored view with its stored detections drawn, as JPEG."""
    image = decode_image(data, max_pixels=max_pixels)
    return encode_jpeg(draw_detections(image, detections_of(records)), quality=90)


def annotated_path(image: Path, records: Sequence[dict[str, Any]]) -> Path:
    """Where the annotated copy of the stored view ``image`` lives: beside it, named by the view and its detections.

    The retention pruner finds every copy of a view as ``<sha256>.annotated-*.jpg`` next to it.
    """
    canon = json.dumps([ANNOTATION_VERSION, list(records)], sort_keys=True, separators=(",", ":"))
    tag = hashlib.sha256(canon.encode("utf-8")).hexdigest()[:16]
    return image.with_name(f"{image.name}.annotated-{tag}.jpg")


def cached_annotated_jpeg(image: Path, data: bytes, records: Sequence[dict[str, Any]], max_pixels: int) -> bytes:
    """The annotated JPEG of a stored view, decoded and drawn once; repeats read the copy kept beside ``image``.

    A copy that cannot be written (a full or read-only disk) is only a lost cache: the JPEG is served anyway.
    """
    path = annotated_path(image, records)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    jpeg = annotated_jpeg(data, records, max_pixels)
    keep_copy(path, jpeg)
    return jpeg


def heat_path(image: Path, inspection_id: str, n: int) -> Path:
    """Where the anomaly map of view ``n`` of an inspection lives: beside the stored view, pruned with it."""
    tag = hashlib.sha256(f"{inspection_id}:{n}".encode()).hexdigest()[:16]
    return image.with_name(f"{image.name}.anomaly-{tag}.png")


# The kept anomaly map's longest side: the models' maps are far coarser (a 28 x 28 grid, smoothed), so a
# larger copy would only cost time and disk; the heat-map picture scales it back over the item.
HEAT_SIDE = 320


def encode_heat(heat: np.ndarray[Any, Any], threshold: float) -> bytes:
    """The anomaly map as a grey PNG: 0 is nothing strange, 128 the model's threshold, 255 twice it or more."""
    scale = 2.0 * threshold if threshold > 0 else max(float(np.max(heat)), 1e-6)
    small: np.ndarray[Any, Any] = np.asarray(heat, np.float32)
    h, w = small.shape[:2]
    if max(h, w) > HEAT_SIDE:
        f = HEAT_SIDE / max(h, w)
        small = cv2.resize(small, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    grey = np.clip(small / scale * 255.0, 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".png", grey)
    if not ok:
        raise ValueError("could not encode the anomaly map as PNG")
    return bytes(buf.tobytes())


def heat_overlay_png(data: bytes, heat_png: bytes, anomaly: dict[str, Any], max_pixels: int) -> bytes:
    """The stored view at its size with the anomaly map laid over its item crop and the unexplained regions boxed.

    Colder than half the threshold stays see-through, so the operator still sees the item under it.
    """
    image = decode_image(data, max_pixels=max_pixels)
    grey = cv2.imdecode(np.frombuffer(heat_png, np.uint8), cv2.IMREAD_GRAYSCALE)
    if grey is None:
        raise ValueError("the stored anomaly map cannot be read")
    h, w = image.shape[:2]
    x1, y1, x2, y2 = (round(float(v)) for v in anomaly["crop"])
    x1, y1, x2, y2 = max(0, x1), max(0, y1), min(w, x2), min(h, y2)
    if x2 > x1 and y2 > y1:
        heat = cv2.resize(grey, (x2 - x1, y2 - y1), interpolation=cv2.INTER_LINEAR)
        colour = cv2.applyColorMap(heat, cv2.COLORMAP_JET).astype(np.float32)
        alpha = (np.clip((heat.astype(np.float32) - 64.0) / 128.0, 0.0, 1.0) * 0.65)[..., None]
        part = image[y1:y2, x1:x2].astype(np.float32)
        image[y1:y2, x1:x2] = (part * (1.0 - alpha) + colour * alpha).astype(np.uint8)
    for region in anomaly.get("regions", []):
        rx1, ry1, rx2, ry2 = (round(float(v)) for v in region["xyxy"])
        cv2.rectangle(image, (rx1, ry1), (rx2, ry2), (255, 255, 255), 2)
    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise ValueError("could not encode the heat map as PNG")
    return bytes(buf.tobytes())


def keep_copy(path: Path, data: bytes) -> None:
    """Write a copy derived from a stored view beside it, whole or not at all; a failure is only logged."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            Path(tmp).replace(path)  # readers see the whole copy or none
        finally:
            Path(tmp).unlink(missing_ok=True)
    except OSError as exc:
        log.warning("the copy %s could not be kept: %s", path.name, exc)
