"""Read the RMA or LPN label in the frame, so the operator does not have to type it.

Return labels carry a QR code or a linear barcode (LPNs are usually Code 128).
zxing-cpp reads all the common symbologies in a few milliseconds and is used
when installed; otherwise OpenCV's QR and barcode detectors are the fallback
(QR plus EAN/UPC only). What a code says is classified as an RMA or an LPN by
configurable patterns; structured QR payloads (``rma=...;lpn=...`` or JSON)
are understood too.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Any, Literal

import cv2
import numpy as np

from inspector.types import Image

log = logging.getLogger(__name__)

DEFAULT_RMA_PATTERN = r"^RMA[-_ :]?[A-Z0-9][A-Z0-9-]{2,39}$"
DEFAULT_LPN_PATTERN = r"^LPN[-_ :]?[A-Z0-9]{4,40}$"

Kind = Literal["rma", "lpn", "other"]


@dataclass(frozen=True, slots=True)
class CodeRead:
    """One code found in the image and what it means for the item."""

    text: str
    symbology: str
    kind: Kind
    value: str
    polygon: tuple[tuple[float, float], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "symbology": self.symbology,
            "kind": self.kind,
            "value": self.value,
            "polygon": [[round(x, 1), round(y, 1)] for x, y in self.polygon],
        }


def _structured(text: str) -> dict[str, str]:
    """``rma=...;lpn=...``, ``RMA:...|LPN:...`` or a JSON object, keyed in lower case."""
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError:
            return {}
        if isinstance(data, dict):
            return {str(k).lower(): str(v) for k, v in data.items() if isinstance(v, (str, int))}
        return {}
    out: dict[str, str] = {}
    for part in re.split(r"[;&|,\n]", stripped.split("?", 1)[-1]):
        m = re.match(r"\s*(rma|lpn)\s*[=:]\s*(\S+)\s*$", part, flags=re.IGNORECASE)
        if m:
            out[m.group(1).lower()] = m.group(2)
    return out


class LabelReader:
    """Finds codes in an image and sorts them into RMA, LPN or other."""

    def __init__(
        self,
        *,
        rma_pattern: str = DEFAULT_RMA_PATTERN,
        lpn_pattern: str = DEFAULT_LPN_PATTERN,
        backend: Literal["auto", "zxing", "opencv"] = "auto",
    ) -> None:
        try:
            self._rma = re.compile(rma_pattern, re.IGNORECASE)
            self._lpn = re.compile(lpn_pattern, re.IGNORECASE)
        except re.error as exc:
            raise ValueError(f"bad RMA/LPN pattern: {exc}") from exc
        self._zxing: Any = None
        if backend in ("auto", "zxing"):
            try:
                import zxingcpp

                self._zxing = zxingcpp
            except ImportError:
                if backend == "zxing":
                    raise ValueError("label backend 'zxing' needs the zxing-cpp package") from None
        self.backend = "zxing-cpp" if self._zxing is not None else "opencv"
        # The ArUco-based detector finds several codes and copes with textured benches.
        self._qr = cv2.QRCodeDetectorAruco()
        self._qr_single = cv2.QRCodeDetector()
        self._barcode = cv2.barcode.BarcodeDetector() if hasattr(cv2, "barcode") else None

    def classify(self, text: str) -> tuple[Kind, str]:
        """What a decoded text is: an RMA, an LPN, or something else (kept as is)."""
        value = text.strip().upper()
        if self._rma.match(value):
            return "rma", value
        if self._lpn.match(value):
            return "lpn", value
        fields = _structured(text)
        if "rma" in fields and self._rma.match(fields["rma"].strip().upper()):
            return "rma", fields["rma"].strip().upper()
        if "lpn" in fields and self._lpn.match(fields["lpn"].strip().upper()):
            return "lpn", fields["lpn"].strip().upper()
        return "other", text.strip()

    def _expand(self, text: str, symbology: str, polygon: tuple[tuple[float, float], ...]) -> list[CodeRead]:
        """One code may carry both numbers (a structured QR payload)."""
        fields = _structured(text)
        reads: list[CodeRead] = []
        for key in ("rma", "lpn"):
            if key in fields:
                kind, value = self.classify(fields[key])
                if kind == key:
                    reads.append(CodeRead(text, symbology, kind, value, polygon))
        if reads:
            return reads
        kind, value = self.classify(text)
        return [CodeRead(text, symbology, kind, value, polygon)]

    def read(self, image: Image) -> list[CodeRead]:
        """Every code found in the image (duplicates removed), RMA and LPN first."""
        found: list[tuple[str, str, tuple[tuple[float, float], ...]]] = []
        try:
            found = self._read_zxing(image) if self._zxing is not None else self._read_opencv(image)
        except cv2.error as exc:  # a reader failure must never stop an inspection
            log.warning("label reading failed: %s", exc)
        reads: list[CodeRead] = []
        seen: set[tuple[str, str]] = set()
        for text, symbology, polygon in found:
            for r in self._expand(text, symbology, polygon):
                if (r.kind, r.value) not in seen:
                    seen.add((r.kind, r.value))
                    reads.append(r)
        order = {"rma": 0, "lpn": 1, "other": 2}
        return sorted(reads, key=lambda r: order[r.kind])

    def _read_zxing(self, image: Image) -> list[tuple[str, str, tuple[tuple[float, float], ...]]]:
        out = []
        for res in self._zxing.read_barcodes(image):
            if not res.valid or not res.text:
                continue
            pos = res.position
            polygon = tuple(
                (float(p.x), float(p.y)) for p in (pos.top_left, pos.top_right, pos.bottom_right, pos.bottom_left)
            )
            out.append((str(res.text), str(res.format), polygon))
        return out

    def _read_opencv(self, image: Image) -> list[tuple[str, str, tuple[tuple[float, float], ...]]]:
        out: list[tuple[str, str, tuple[tuple[float, float], ...]]] = []
        ok, texts, points, _ = self._qr.detectAndDecodeMulti(image)
        if ok and points is not None:
            for text, pts in zip(texts, np.asarray(points), strict=False):
                if text:
                    out.append((str(text), "QR Code", _polygon(pts)))
        if not out:  # the classic detector finds a lone code on a busy background the other one misses
            text, pts, _ = self._qr_single.detectAndDecode(image)
            if text and pts is not None:
                out.append((str(text), "QR Code", _polygon(pts)))
        if self._barcode is not None:
            ok, texts, types, bpoints = self._barcode.detectAndDecodeMulti(image)
            if ok and bpoints is not None:
                kinds: list[Any] = list(types) if types else [""] * len(texts)
                for text, kind, pts in zip(texts, kinds, np.asarray(bpoints), strict=False):
                    if text:
                        out.append((str(text), str(kind or "barcode"), _polygon(pts)))
        return out


def _polygon(points: Any) -> tuple[tuple[float, float], ...]:
    return tuple((float(x), float(y)) for x, y in np.asarray(points, dtype=np.float64).reshape(-1, 2))


def item_codes(reads: list[CodeRead]) -> tuple[str | None, str | None]:
    """The first RMA and the first LPN among the reads."""
    rma = next((r.value for r in reads if r.kind == "rma"), None)
    lpn = next((r.value for r in reads if r.kind == "lpn"), None)
    return rma, lpn
