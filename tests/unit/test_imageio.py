"""Decoding untrusted uploads: every kind of image the bench meets, and the bad ones."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from inspector.imageio import ImageError, decode_image


def _pil_bytes(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _rgb() -> Image.Image:
    arr = np.zeros((60, 80, 3), np.uint8)
    arr[:, :40] = (255, 0, 0)  # left half red (RGB)
    return Image.fromarray(arr)


@pytest.mark.parametrize(
    ("make", "shape"),
    [
        (lambda: _pil_bytes(_rgb(), "JPEG", quality=95), (60, 80, 3)),
        (lambda: _pil_bytes(_rgb(), "PNG"), (60, 80, 3)),
        (lambda: _pil_bytes(_rgb(), "WEBP", lossless=True), (60, 80, 3)),
        (lambda: _pil_bytes(_rgb().convert("L"), "PNG"), (60, 80, 3)),
        (lambda: _pil_bytes(_rgb().convert("RGBA"), "PNG"), (60, 80, 3)),
        (lambda: _pil_bytes(_rgb().convert("CMYK"), "JPEG"), (60, 80, 3)),
        (lambda: _pil_bytes(Image.fromarray(np.full((60, 80), 40000, np.uint16)), "PNG"), (60, 80, 3)),
        (lambda: _pil_bytes(_rgb().convert("P"), "PNG"), (60, 80, 3)),
    ],
)
def test_decodes_to_bgr(make: object, shape: tuple[int, int, int]) -> None:
    out = decode_image(make())  # type: ignore[operator]
    assert out.shape == shape and out.dtype == np.uint8


def test_colour_order_is_bgr() -> None:
    out = decode_image(_pil_bytes(_rgb(), "PNG"))
    assert tuple(out[10, 10]) == (0, 0, 255)


def test_exif_orientation_is_applied() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    out = decode_image(_pil_bytes(_rgb(), "JPEG", exif=exif, quality=95))
    assert out.shape == (80, 60, 3)
    assert out[5, 30, 2] > 200 and out[75, 30, 2] < 60  # the red half is now on top


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "empty_image"),
        (b"\x00" * 200, "bad_image"),
        (_pil_bytes(_rgb(), "GIF"), "unsupported_format"),
        (_pil_bytes(_rgb(), "JPEG")[:-200], "corrupt_image"),
        (_pil_bytes(Image.new("RGB", (4, 4)), "PNG"), "image_too_small"),
    ],
)
def test_bad_images_are_refused_with_a_code(data: bytes, code: str) -> None:
    with pytest.raises(ImageError) as err:
        decode_image(data)
    assert err.value.code == code


def test_pixel_bomb_is_refused_before_decoding() -> None:
    ok, buf = cv2.imencode(".png", np.zeros((100, 100, 3), np.uint8))
    assert ok
    with pytest.raises(ImageError) as err:
        decode_image(buf.tobytes(), max_pixels=5000)
    assert err.value.code == "too_many_pixels"
