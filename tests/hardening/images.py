"""Images made by the tests: good ones, odd-but-valid ones, and the bad-image corpus.

Every odd-but-valid image comes with the BGR pixels the pipeline must see, so a
test can check the decoder did the right thing and not merely "no error".
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

# --------------------------------------------------------------------- helpers


def scene(w: int = 96, h: int = 64) -> np.ndarray:
    """An asymmetric BGR picture: red left half, blue top-right quarter, green bottom-right quarter.

    Every rotation and mirror of it is different, so an orientation error shows.
    """
    img = np.zeros((h, w, 3), np.uint8)
    img[:, : w // 2] = (0, 0, 255)
    img[: h // 2, w // 2 :] = (255, 0, 0)
    img[h // 2 :, w // 2 :] = (0, 255, 0)
    return img


def pil_bytes(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def jpeg(w: int = 160, h: int = 120, seed: int = 0, quality: int = 90) -> bytes:
    rng = np.random.default_rng(seed)
    img = rng.integers(20, 70, (h, w, 3), dtype=np.uint8)
    img[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = (200, 190, 180)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buf.tobytes()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_declaring(w: int, h: int) -> bytes:
    """A PNG of a few hundred bytes whose header declares w x h RGB pixels (a decompression bomb)."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 4096, 9)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def exif_rotated_jpeg(orientation: int = 6) -> tuple[bytes, np.ndarray]:
    """The scene stored on its side with an EXIF orientation tag; returns (bytes, upright BGR)."""
    upright = scene()
    # Orientation 6 means "rotate 90 degrees clockwise to display", so store it rotated counter-clockwise.
    stored = {6: cv2.rotate(upright, cv2.ROTATE_90_COUNTERCLOCKWISE), 8: cv2.rotate(upright, cv2.ROTATE_90_CLOCKWISE)}
    stored[3] = cv2.rotate(upright, cv2.ROTATE_180)
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = pil_bytes(Image.fromarray(stored[orientation][:, :, ::-1]), "JPEG", quality=95, exif=exif)
    return data, upright


def exif_rotated_webp(orientation: int = 6) -> tuple[bytes, np.ndarray]:
    upright = scene()
    stored = cv2.rotate(upright, cv2.ROTATE_90_COUNTERCLOCKWISE)
    exif = Image.Exif()
    exif[0x0112] = orientation
    return pil_bytes(Image.fromarray(stored[:, :, ::-1]), "WEBP", lossless=True, exif=exif), upright


def cmyk_jpeg() -> tuple[bytes, np.ndarray]:
    upright = scene()
    data = pil_bytes(Image.fromarray(upright[:, :, ::-1]).convert("CMYK"), "JPEG", quality=95)
    return data, upright


def grey16_png() -> tuple[bytes, np.ndarray]:
    """A 16-bit grey ramp; the pipeline must see it as 8-bit grey in three equal channels."""
    ramp = np.tile(np.linspace(0, 65535, 96).astype(np.uint16), (64, 1))
    ok, buf = cv2.imencode(".png", ramp)
    assert ok
    grey8 = np.round(ramp / 65535.0 * 255.0).astype(np.uint8)
    return buf.tobytes(), np.dstack([grey8] * 3)


def rgb16_png() -> tuple[bytes, np.ndarray]:
    upright = scene()
    ok, buf = cv2.imencode(".png", upright.astype(np.uint16) * 257)
    assert ok
    return buf.tobytes(), upright


def grey8_png() -> tuple[bytes, np.ndarray]:
    grey = np.tile(np.linspace(0, 255, 96).astype(np.uint8), (64, 1))
    ok, buf = cv2.imencode(".png", grey)
    assert ok
    return buf.tobytes(), np.dstack([grey] * 3)


def animated(fmt: str) -> bytes:
    frames = [Image.new("RGB", (64, 48), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, format=fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buf.getvalue()


# ---------------------------------------------------------------------- corpus


@dataclass(frozen=True)
class Odd:
    """A valid image the station must decode to exactly ``expected`` (BGR, 8-bit, upright)."""

    name: str
    make: Callable[[], tuple[bytes, np.ndarray]]
    tolerance: float  # mean absolute difference allowed (lossy codecs)


@dataclass(frozen=True)
class Bad:
    """An upload the station must refuse with ``status`` and ``code``."""

    name: str
    make: Callable[[], bytes]
    status: int
    code: str
    filename: str = "view.jpg"
    content_type: str = "image/jpeg"


ODD: list[Odd] = [
    Odd("exif-rotated-jpeg-6", lambda: exif_rotated_jpeg(6), 6.0),
    Odd("exif-rotated-jpeg-8", lambda: exif_rotated_jpeg(8), 6.0),
    Odd("exif-rotated-jpeg-3", lambda: exif_rotated_jpeg(3), 6.0),
    Odd("exif-rotated-webp-6", lambda: exif_rotated_webp(6), 1.0),
    Odd("cmyk-jpeg", cmyk_jpeg, 8.0),
    Odd("grey16-png", grey16_png, 1.0),
    Odd("rgb16-png", rgb16_png, 1.0),
    Odd("grey8-png", grey8_png, 0.0),
]


def _truncated_jpeg() -> bytes:
    data = jpeg(320, 240, seed=3)
    return data[: len(data) // 2]


BAD: list[Bad] = [
    Bad("zero-bytes", lambda: b"", 422, "empty_image"),
    Bad("truncated-jpeg", _truncated_jpeg, 422, "corrupt_image"),
    Bad("random-bytes-named-jpg", lambda: np.random.default_rng(9).bytes(20_000), 422, "bad_image"),
    Bad("png-declaring-50000x50000", lambda: png_declaring(50_000, 50_000), 413, "too_many_pixels", "big.png"),
    Bad("png-declaring-8000x6000", lambda: png_declaring(8_000, 6_000), 413, "too_many_pixels", "big.png"),
    Bad("animated-gif", lambda: animated("GIF"), 415, "unsupported_format", "anim.gif", "image/gif"),
    Bad("animated-png", lambda: animated("PNG"), 422, "animated_image", "anim.png", "image/png"),
    Bad("animated-webp", lambda: animated("WEBP"), 422, "animated_image", "anim.webp", "image/webp"),
    Bad("pdf-named-jpg", lambda: b"%PDF-1.4\n" + b"1 0 obj << >> endobj\n" * 50, 422, "bad_image"),
    Bad("text-declared-as-jpeg", lambda: b"hello, this is not a picture\n" * 40, 422, "bad_image"),
    Bad("bmp", lambda: pil_bytes(Image.new("RGB", (64, 48)), "BMP"), 415, "unsupported_format", "a.bmp"),
    Bad("tiny-png", lambda: pil_bytes(Image.new("RGB", (4, 4)), "PNG"), 422, "image_too_small", "a.png"),
]
