"""Machine-readable codes drawn on labels: EAN-13 bars and QR codes.

They are drawn module by module with the real encodings, so OpenCV's barcode and
QR detectors read them back when they are large enough in the picture; the
station reads RMA and LPN labels that way.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np
import numpy.typing as npt

U8 = npt.NDArray[np.uint8]

# EAN-13 digit patterns (7 modules each, 1 = bar) for the L, G and R sets.
_L = ("0001101", "0011001", "0010011", "0111101", "0100011", "0110001", "0101111", "0111011", "0110111", "0001011")
_G = ("0100111", "0110011", "0011011", "0100001", "0011101", "0111001", "0000101", "0010001", "0001001", "0010111")
_R = ("1110010", "1100110", "1101100", "1000010", "1011100", "1001110", "1010000", "1000100", "1001000", "1110100")
# The first digit is carried by the L/G parity of the left half.
_PARITY = ("LLLLLL", "LLGLGG", "LLGGLG", "LLGGGL", "LGLLGG", "LGGLLG", "LGGGLL", "LGLGLG", "LGLGGL", "LGGLGL")
EAN13_MODULES = 95
EAN13_QUIET = 11  # modules of white either side (the standard asks for 11 on the left, 7 on the right)


def ean13_check_digit(first12: str) -> int:
    """The EAN-13 check digit of twelve digits."""
    if len(first12) != 12 or not first12.isdigit():
        raise ValueError(f"EAN-13 needs 12 digits before the check digit, got {first12!r}")
    total = sum(int(c) * (3 if i % 2 else 1) for i, c in enumerate(first12))
    return (10 - total % 10) % 10


def ean13_modules(code: str) -> str:
    """The 95 bar/space modules of a 13-digit (or 12-digit, check added) EAN-13 code."""
    if len(code) == 12:
        code += str(ean13_check_digit(code))
    if len(code) != 13 or not code.isdigit():
        raise ValueError(f"EAN-13 needs 13 digits, got {code!r}")
    if int(code[12]) != ean13_check_digit(code[:12]):
        raise ValueError(f"bad EAN-13 check digit in {code!r}")
    parity = _PARITY[int(code[0])]
    left = "".join((_L if p == "L" else _G)[int(d)] for p, d in zip(parity, code[1:7], strict=True))
    right = "".join(_R[int(d)] for d in code[7:])
    return "101" + left + "01010" + right + "101"


def random_ean13(rng: np.random.Generator) -> str:
    """A valid EAN-13 number (GS1 prefixes 400-440 look like retail goods)."""
    body = str(int(rng.integers(400, 440))) + "".join(str(int(d)) for d in rng.integers(0, 10, 9))
    return body + str(ean13_check_digit(body))


def draw_ean13(code: str, module: int = 2, height: int | None = None, with_digits: bool = True) -> U8:
    """A white label patch (grey uint8) with the EAN-13 bars, quiet zones and human-readable digits."""
    mods = ean13_modules(code)
    if len(code) == 12:
        code += str(ean13_check_digit(code))
    module = max(1, int(module))
    bar_h = height or max(12, int(module * 38))
    digits_h = int(module * 9) if with_digits else 0
    w = (EAN13_MODULES + 2 * EAN13_QUIET) * module
    img = np.full((bar_h + digits_h + 2 * module, w, 1), 255, np.uint8)
    x0 = EAN13_QUIET * module
    bits = np.frombuffer(mods.encode(), np.uint8) == ord("1")
    cols = np.repeat(bits, module)
    img[module : module + bar_h, x0 : x0 + cols.size, 0][:, cols] = 0
    if with_digits and module >= 2:
        scale = module * 0.28
        y = module + bar_h + digits_h - module
        cv2.putText(img, code[0], (module, y), cv2.FONT_HERSHEY_SIMPLEX, scale, 0, max(1, module // 2), cv2.LINE_AA)
        for part, start in ((code[1:7], 3), (code[7:], 50)):
            cv2.putText(
                img,
                part,
                (x0 + (start + 2) * module, y),
                cv2.FONT_HERSHEY_SIMPLEX,
                scale,
                0,
                max(1, module // 2),
                cv2.LINE_AA,
            )
    return img[:, :, 0]


@lru_cache(maxsize=256)
def _qr_core(text: str) -> bytes:
    encoder = cv2.QRCodeEncoder.create()
    raw = np.asarray(encoder.encode(text), np.uint8)
    if raw.ndim != 2 or raw.size == 0:
        raise ValueError(f"cannot encode {text!r} as a QR code")
    # The encoder adds a quiet zone of its own; crop it to control ours exactly.
    dark = np.argwhere(raw < 128)
    (y0, x0), (y1, x1) = dark.min(0), dark.max(0)
    core = np.ascontiguousarray(raw[y0 : y1 + 1, x0 : x1 + 1])
    return bytes([core.shape[0]]) + core.tobytes()


def qr_modules(text: str, quiet: int = 4) -> int:
    """Side of the QR code of ``text`` in modules, quiet zone included."""
    return _qr_core(text)[0] + 2 * quiet


def draw_qr(text: str, module: int = 3, quiet: int = 4) -> U8:
    """A QR code (grey uint8, black on white) with its quiet zone, ``module`` pixels per module."""
    raw = _qr_core(text)
    n = raw[0]
    core: U8 = np.pad(np.frombuffer(raw[1:], np.uint8).reshape(n, n), quiet, constant_values=255)
    m = max(1, int(module))
    return np.repeat(np.repeat(core, m, axis=0), m, axis=1)


def random_rma(rng: np.random.Generator) -> str:
    return f"RMA-{int(rng.integers(2023, 2027))}-{int(rng.integers(0, 10**6)):06d}"


def random_lpn(rng: np.random.Generator) -> str:
    return f"LPN{int(rng.integers(10**9, 10**10))}"


def decode_codes(image: U8) -> list[tuple[str, str]]:
    """Read every QR and EAN code OpenCV finds in a BGR or grey image: (symbology, text) pairs."""
    found: list[tuple[str, str]] = []
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    qr = cv2.QRCodeDetector()
    ok, texts, _, _ = qr.detectAndDecodeMulti(grey)
    if ok:
        found += [("QR", t) for t in texts if t]
    if not found:  # the single-code detector finds some codes the multi one misses
        text, _, _ = qr.detectAndDecode(grey)
        if text:
            found.append(("QR", text))
    bar = cv2.barcode.BarcodeDetector()
    res = bar.detectAndDecodeWithType(grey)
    if res[0]:
        found += [(str(kind), str(text)) for text, kind in zip(res[1], res[2], strict=False) if text]
    return found
