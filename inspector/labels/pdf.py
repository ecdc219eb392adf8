"""The label as a one-page PDF: a 1-bit raster at 300 dpi (CCITT G4 inside), the exact label size.

Any printer driver or PDF viewer prints it; the bars and squares are whole
pixels at 300 dpi (a 2-dot module of the ZPL label is 3 pixels here), so they
scan as well as the thermal print.
"""

from __future__ import annotations

import functools
import io
from datetime import UTC

import numpy as np
import numpy.typing as npt
import zxingcpp
from PIL import Image, ImageDraw, ImageFont

from inspector.labels.layout import DPI, Code128, Fill, Label, QrCode, Text

PDF_DPI = 300
SCALE = PDF_DPI / DPI

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
Dark = npt.NDArray[np.bool_]  # True where the symbol is dark, one entry per pixel or module


def _px(dots: float) -> int:
    return round(dots * SCALE)


@functools.lru_cache(maxsize=64)
def _font(size: int) -> Font:
    """A bold sans when the system has one, else Pillow's own scalable font (always there)."""
    try:
        return ImageFont.truetype("DejaVuSans-Bold.ttf", size)
    except OSError:
        return ImageFont.load_default(size=size)


def _lines(text: str, font: Font, width: int) -> list[str]:
    lines: list[str] = []
    for word in text.split():
        joined = f"{lines[-1]} {word}" if lines else word
        if lines and font.getlength(joined) <= width:
            lines[-1] = joined
        else:
            lines.append(word)
    return lines or [""]


def _text(draw: ImageDraw.ImageDraw, e: Text) -> None:
    """``e``'s text in its box, in the largest size up to its own that fits the box's width and lines."""
    width = _px(e.width)
    size = _px(e.height)
    while True:
        font = _font(size)
        lines = _lines(e.text, font, width)
        if size <= 8 or (len(lines) <= e.lines and max(font.getlength(line) for line in lines) <= width):
            break
        size -= 2
    colour = 1 if e.inverse else 0
    step = size + _px(e.gap)
    for i, line in enumerate(lines[: e.lines]):
        used = font.getlength(line)
        x = _px(e.x) + {"L": 0.0, "C": (width - used) / 2, "R": width - used}[e.align]
        draw.text((x, _px(e.y) + i * step), line, font=font, fill=colour)


def _modules(barcode: zxingcpp.Barcode) -> Dark:
    """The symbol as booleans (True = dark), one per module, without quiet zones."""
    image = np.asarray(zxingcpp.write_barcode_to_image(barcode, scale=1, add_quiet_zones=False))
    return np.asarray(image < 128)


def _paste(canvas: Image.Image, dark: Dark, x: int, y: int) -> None:
    canvas.paste(Image.fromarray(np.where(dark, 0, 255).astype(np.uint8)).convert("1"), (x, y))


def _code128(canvas: Image.Image, e: Code128) -> None:
    row = _modules(zxingcpp.create_barcode(e.value, zxingcpp.BarcodeFormat.Code128))[0]
    bars = np.repeat(row, max(1, _px(e.module)))
    _paste(canvas, np.tile(bars, (_px(e.height), 1)), _px(e.x), _px(e.y))


def _qr(canvas: Image.Image, e: QrCode) -> None:
    squares = _modules(zxingcpp.create_barcode(e.value, zxingcpp.BarcodeFormat.QRCode, ec_level="M"))
    side = max(1, _px(e.module))
    _paste(canvas, np.kron(squares, np.ones((side, side), dtype=bool)).astype(bool), _px(e.x), _px(e.y))


def raster(label: Label) -> Image.Image:
    """The label as a 1-bit image at 300 dpi."""
    canvas = Image.new("1", (_px(label.sheet.width), _px(label.sheet.height)), 1)
    draw = ImageDraw.Draw(canvas)
    for e in label.elements:
        if isinstance(e, Fill):
            draw.rectangle((_px(e.x), _px(e.y), _px(e.x + e.width) - 1, _px(e.y + e.height) - 1), fill=0)
        elif isinstance(e, Text):
            _text(draw, e)
        elif isinstance(e, Code128):
            _code128(canvas, e)
        else:
            _qr(canvas, e)
    return canvas


def render_pdf(label: Label) -> bytes:
    """One page of the label's size; the same bytes for the same label (its dates are the label's own)."""
    canvas = raster(label)
    out = io.BytesIO()
    when = label.when.astimezone(UTC).timetuple()
    canvas.save(out, "PDF", resolution=PDF_DPI, title=label.title, creationDate=when, modDate=when)
    return out.getvalue()
