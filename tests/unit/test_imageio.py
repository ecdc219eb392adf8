"""Decoding untrusted uploads: every kind of image the bench meets, and the bad ones."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from inspector.imageio import ImageError, decode_image, decode_view, reduction


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


@pytest.mark.parametrize(
    ("size", "fit", "factor"),
    [
        ((1280, 960), 640, 2),
        ((960, 1280), 640, 2),
        ((1279, 960), 640, 1),  # under twice the model's side: decoded whole
        ((2560, 1920), 640, 4),
        ((8000, 6000), 640, 8),
        ((1280, 960), None, 1),
        ((640, 480), 640, 1),
    ],
)
def test_reduction_keeps_the_models_side(size: tuple[int, int], fit: int | None, factor: int) -> None:
    assert reduction(size, fit) == factor


def _big(width: int, height: int) -> Image.Image:
    arr = np.zeros((height, width, 3), np.uint8)
    arr[:, : width // 2] = (255, 0, 0)  # left half red (RGB)
    return Image.fromarray(arr)


def test_a_big_jpeg_is_decoded_at_the_models_size_and_says_its_full_size() -> None:
    data = _pil_bytes(_big(1280, 960), "JPEG", quality=95)
    image, full = decode_view(data, fit=640)
    assert image.shape == (480, 640, 3) and full == (1280, 960)
    assert image[240, 100, 2] > 200 and image[240, 540, 2] < 60  # the same picture, halved
    whole, none = decode_view(data)
    assert whole.shape == (960, 1280, 3) and none is None


def test_a_reduced_jpeg_is_turned_upright_with_its_full_size() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    image, full = decode_view(_pil_bytes(_big(1280, 960), "JPEG", exif=exif, quality=95), fit=640)
    assert image.shape == (640, 480, 3) and full == (960, 1280)
    assert image[5, 240, 2] > 200 and image[635, 240, 2] < 60  # the red half is now on top


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_other_formats_decode_whole(fmt: str) -> None:
    image, full = decode_view(_pil_bytes(_big(1280, 960), fmt), fit=640)
    assert image.shape == (960, 1280, 3) and full is None


def test_a_truncated_big_jpeg_is_still_refused() -> None:
    with pytest.raises(ImageError) as err:
        decode_view(_pil_bytes(_big(1280, 960), "JPEG")[:-300], fit=640)
    assert err.value.code == "corrupt_image"
