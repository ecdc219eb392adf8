"""Decoding untrusted image bytes into BGR frames, with limits checked before decoding."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from inspector.types import Image as ImageArray

ALLOWED_FORMATS = frozenset({"JPEG", "PNG", "WEBP"})
DEFAULT_MAX_PIXELS = 40_000_000


class ImageError(ValueError):
    """The bytes are not an image the station accepts; the message says why."""

    def __init__(self, message: str, code: str = "bad_image") -> None:
        super().__init__(message)
        self.code = code


def decode_image(
    data: bytes,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    allowed_formats: frozenset[str] = ALLOWED_FORMATS,
    name: str = "image",
) -> ImageArray:
    """Decode JPEG/PNG/WebP bytes to an HxWx3 BGR uint8 array.

    The header is read first, so a file that declares too many pixels is refused
    before any memory is spent on it. EXIF orientation is applied; grey, 16-bit,
    palette, alpha and CMYK images are converted to 8-bit BGR.
    """
    return decode_view(data, max_pixels=max_pixels, allowed_formats=allowed_formats, name=name)[0]


def reduction(size: tuple[int, int], fit: int | None) -> int:
    """The largest JPEG scale-down (1, 2, 4 or 8) that keeps the long side at ``fit`` pixels or more."""
    if not fit or fit <= 0:
        return 1
    long_side = max(size)
    return next((f for f in (8, 4, 2) if long_side / f >= fit), 1)


def decode_view(
    data: bytes,
    *,
    fit: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    allowed_formats: frozenset[str] = ALLOWED_FORMATS,
    name: str = "image",
) -> tuple[ImageArray, tuple[int, int] | None]:
    """Decode like :func:`decode_image`, at the size a model of input side ``fit`` needs.

    A JPEG whose long side is at least twice ``fit`` is scaled down by the JPEG decoder itself
    (1/2, 1/4 or 1/8, in the DCT): the inverse DCT and colour conversion run on a quarter of the
    pixels or fewer, and the detector's letterbox has nothing left to shrink. Returns the image
    and the (width, height) of the picture as sent when it was decoded smaller, else ``None``.
    Other formats decode whole.
    """
    if not data:
        raise ImageError(f"{name}: empty file", "empty_image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            try:
                img: Image.Image = Image.open(io.BytesIO(data))
            except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
                # PIL's own bomb check reads the header only; it is the same refusal as ours.
                raise ImageError(
                    f"{name}: declares more pixels than the limit of {max_pixels}", "too_many_pixels"
                ) from exc
            fmt = (img.format or "").upper()
            if fmt not in allowed_formats:
                raise ImageError(
                    f"{name}: format {fmt or 'unknown'} is not accepted (use {', '.join(sorted(allowed_formats))})",
                    "unsupported_format",
                )
            w, h = img.size
            if w * h > max_pixels:
                raise ImageError(f"{name}: {w}x{h} pixels is over the limit of {max_pixels}", "too_many_pixels")
            if getattr(img, "n_frames", 1) > 1:
                raise ImageError(f"{name}: animated images are not accepted", "animated_image")
            # OpenCV turns JPEGs upright by their EXIF orientation, but not WebP or PNG.
            upright = fmt == "JPEG" or img.getexif().get(_ORIENTATION, 1) == 1
            reduce = reduction((w, h), fit) if fmt == "JPEG" else 1
            fast = _fast_decode(data, fmt, img.mode, reduce) if upright else None
            if fast is not None:
                if w < 8 or h < 8:
                    raise ImageError(f"{name}: {w}x{h} is too small to inspect", "image_too_small")
                if reduce == 1:
                    return fast, None
                # OpenCV turned it upright: the full size has the same orientation as the array
                fh, fw = (h, w) if (fast.shape[0] >= fast.shape[1]) == (h >= w) else (w, h)
                return fast, (fw, fh)
            img.load()
            img = ImageOps.exif_transpose(img) or img
    except ImageError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"{name}: not a readable image ({exc})", "bad_image") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{name}: corrupt or truncated image ({exc})", "corrupt_image") from exc
    if w < 8 or h < 8:
        raise ImageError(f"{name}: {w}x{h} is too small to inspect", "image_too_small")
    return to_bgr(img), None


def declared_pixels(data: bytes) -> int:
    """Width x height from the header alone (0 when it cannot be read; decoding then says why)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            w, h = Image.open(io.BytesIO(data)).size
    except Exception:  # any unreadable header: decode_image gives the precise refusal
        return 0
    return int(w) * int(h)


_FAST_MODES = frozenset({"RGB", "L", "YCbCr"})
_ORIENTATION = 0x0112  # the EXIF tag


_REDUCED = {
    1: cv2.IMREAD_COLOR,
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}


def _fast_decode(data: bytes, fmt: str, mode: str, reduce: int = 1) -> ImageArray | None:
    """OpenCV's decoder for the common case (8-bit colour or grey JPEG, PNG, WebP): about 3x faster.

    OpenCV applies EXIF orientation itself, but it would quietly return a half-grey picture for a
    truncated JPEG, so a JPEG must end with its end-of-image marker. Anything unusual (CMYK, 16-bit,
    palette, alpha) or anything OpenCV refuses goes through PIL, which explains what is wrong.
    """
    if mode not in _FAST_MODES:
        return None
    if fmt == "JPEG" and data.rstrip(b"\x00")[-2:] != b"\xff\xd9":
        return None
    arr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), _REDUCED[reduce])
    if arr is None or arr.ndim != 3 or arr.dtype != np.uint8:
        return None
    return np.asarray(arr, dtype=np.uint8)


def to_bgr(img: Image.Image) -> ImageArray:
    """Any PIL mode to 8-bit BGR."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        hi = float(arr.max()) or 1.0
        grey = np.clip(arr / (65535.0 if hi > 255 else 255.0) * 255.0, 0, 255).astype(np.uint8)
        rgb = np.stack([grey] * 3, axis=-1)
    else:
        if mode != "RGB":
            img = img.convert("RGBA").convert("RGB") if "A" in mode or mode == "P" else img.convert("RGB")
        rgb = np.asarray(img, dtype=np.uint8)
    return np.ascontiguousarray(rgb[:, :, ::-1])


def read_image(path: Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageArray:
    """Read an image file from disk with the same checks as an upload."""
    if not path.exists():
        raise ImageError(f"{path}: no such file", "not_found")
    if not path.is_file():
        raise ImageError(f"{path}: not a file", "not_a_file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageError(f"{path}: cannot read ({exc.strerror})", "unreadable") from exc
    return decode_image(data, max_pixels=max_pixels, name=str(path))
