"""The disposition label, rendered: what it says, the ZPL a printer gets, and the bar codes a scanner reads back.

The ZPL is parsed field by field (framing, the values of the ^BC and ^BQ bar
codes, every field inside the label at 203 dpi); the PDF is rasterised with
poppler's ``pdftoppm`` at 300 dpi and its bar codes decoded with zxing-cpp.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zxingcpp
from PIL import Image

from inspector.labels import render_label
from inspector.labels.layout import SHEETS, barcodable, content_of
from inspector.labels.zpl import escaped

ID = "3f2b9a1e-1111-4222-8333-444455556666"


def inspection(
    *decisions: dict[str, Any], rma: str | None = "RMA-2026-000001", lpn: str | None = "LPN00012345"
) -> dict[str, Any]:
    """An inspection as the API serves it: recommended B / REFURBISH, with ``decisions`` oldest first."""
    return {
        "id": ID,
        "created_at": "2026-12-07T09:30:00+00:00",
        "station_id": "bench-1",
        "item": {"rma": rma, "lpn": lpn},
        "grade": {"level": "B"},
        "disposition": {"path": "REFURBISH"},
        "decisions": list(decisions),
    }


def decision(n: int, action: str = "accept", grade: str = "B", route: str = "REFURBISH") -> dict[str, Any]:
    when = f"2026-12-07T1{n}:00:00Z"
    return {"id": f"d{n}", "action": action, "grade": grade, "disposition": route, "created_at": when}


OVERRIDE = decision(2, "override", "D", "RECYCLE")

# ----------------------------------------------------------------- content


@pytest.mark.parametrize(
    ("decisions", "decision_id", "expected"),
    [
        ((), None, ("REFURBISH", "B", "NOT DECIDED", "2026-12-07 09:30")),
        ((decision(1),), None, ("REFURBISH", "B", "ACCEPTED", "2026-12-07 11:00")),
        ((decision(1), OVERRIDE), None, ("RECYCLE", "D", "OVERRIDDEN", "2026-12-07 12:00")),
        ((decision(1), OVERRIDE), "d1", ("REFURBISH", "B", "ACCEPTED", "2026-12-07 11:00")),
    ],
    ids=["recommended", "accepted", "the newest decision", "the decision asked for"],
)
def test_the_label_says_the_outcome_of_its_decision(
    decisions: tuple[dict[str, Any], ...], decision_id: str | None, expected: tuple[str, str, str, str]
) -> None:
    c = content_of(inspection(*decisions), decision_id=decision_id)
    assert (c.route, c.grade, c.status, f"{c.when:%Y-%m-%d %H:%M}") == expected
    assert (c.rma, c.lpn, c.inspection_id, c.station_id) == ("RMA-2026-000001", "LPN00012345", ID, "bench-1")


def test_a_decision_the_inspection_does_not_have_is_refused() -> None:
    with pytest.raises(ValueError, match="no decision d9"):
        content_of(inspection(decision(1)), decision_id="d9")


@pytest.mark.parametrize(
    ("value", "ok"),
    [("RMA-2026-000001", True), ("LPN 12", True), ("a>b", False), ("^XZ", False), ("~JA", False), ("Hà Nội", False)],
)
def test_only_plain_ascii_goes_into_a_bar_code(value: str, ok: bool) -> None:
    assert barcodable(value) is ok


def test_text_fields_cannot_end_early_or_start_a_command() -> None:
    assert escaped("RMA^XZ~JA_1 Hà") == "RMA_5EXZ_7EJA_5F1 H_C3_A0"


# --------------------------------------------------------------------- ZPL


@dataclass
class Field:
    x: int
    y: int
    body: str  # the commands after ^FO up to ^FS
    data: str

    def arg(self, command: str) -> list[int] | None:
        m = re.search(rf"\^{command}([^\^]*)", self.body)
        if m is None:
            return None
        return [int(v) for v in re.findall(r"\d+", m.group(1))]


def parse_zpl(raw: bytes) -> tuple[int, int, list[Field]]:
    """The label's width and length in dots and its fields; asserts one ^XA .. ^XZ around them."""
    text = raw.decode()
    assert text.startswith("^XA") and text.rstrip().endswith("^XZ")
    assert text.count("^XA") == 1 and text.count("^XZ") == 1
    size = {k: int(v) for k, v in re.findall(r"\^(PW|LL)(\d+)", text)}
    fields = []
    for chunk in text.split("^FS"):
        m = re.search(r"\^FO(\d+),(\d+)(.*)", chunk, re.S)
        if m is not None:
            body, _, data = m.group(3).partition("^FD")
            fields.append(Field(int(m.group(1)), int(m.group(2)), body, data))
    return size["PW"], size["LL"], fields


def qr_modules(value: str) -> int:
    """The side of the QR code of ``value`` (error correction M) in modules."""
    symbol = zxingcpp.create_barcode(value, zxingcpp.BarcodeFormat.QRCode, ec_level="M")
    return int(np.asarray(zxingcpp.write_barcode_to_image(symbol, add_quiet_zones=False)).shape[0])


def extent(f: Field) -> tuple[int, int]:
    """The right and bottom edges a field can reach, from its own commands (a Code 128 as if all in code set B)."""
    if (box := f.arg("GB")) is not None:
        return f.x + box[0], f.y + box[1]
    if (bc := f.arg("BC")) is not None:
        module = (f.arg("BY") or [0])[0]
        return f.x + (11 * len(f.data) + 35) * module, f.y + bc[0]
    if (qr := f.arg("BQN")) is not None:
        # the printer may pick the next larger version (4 modules more) and sets the code 10 dots lower
        side = (qr_modules(f.data.split(",", 1)[1]) + 4) * qr[1]
        return f.x + side, f.y + 10 + side
    font, block = f.arg("A0N"), f.arg("FB")
    assert font is not None and block is not None, f"a text field without a font and a box: {f.body}"
    lines, gap = block[1], block[2]
    return f.x + block[0], f.y + lines * font[0] + (lines - 1) * gap


@pytest.mark.parametrize("size", ["4x6", "2x1"])
@pytest.mark.parametrize(
    "item",
    [
        {"rma": "RMA-2026-000001", "lpn": "LPN00012345"},
        {"rma": None, "lpn": None},
        {"rma": "RMA-" + "7" * 60, "lpn": "LPN>^XZ"},
    ],
    ids=["rma and lpn", "neither", "too long and unsafe"],
)
def test_every_zpl_field_lies_inside_the_label(size: str, item: dict[str, Any]) -> None:
    width, length, fields = parse_zpl(render_label(inspection(decision(1), **item), "zpl", size))
    assert (width, length) == (SHEETS[size].width, SHEETS[size].height) == {"4x6": (812, 1218), "2x1": (406, 203)}[size]
    assert fields
    for f in fields:
        right, bottom = extent(f)
        assert 0 <= f.x < right <= width and 0 <= f.y < bottom <= length, f"{f} reaches {right},{bottom}"


def test_the_4x6_zpl_carries_rma_lpn_and_id_in_its_bar_codes() -> None:
    _, _, fields = parse_zpl(render_label(inspection(decision(1, "override", "C", "RETURN_TO_VENDOR")), "zpl", "4x6"))
    assert [f.data for f in fields if f.arg("BC") is not None] == ["RMA-2026-000001", "LPN00012345"]
    assert [f.data for f in fields if f.arg("BQN") is not None] == [f"MA,{ID}"]
    text = [f.data for f in fields if f.arg("A0N") is not None]
    assert "RETURN TO VENDOR" in text and "GRADE C" in text and "OVERRIDDEN" in text
    assert "2026-12-07 11:00 UTC" in text and "bench-1" in text


def test_the_2x1_zpl_holds_route_grade_and_the_qr_code() -> None:
    _, _, fields = parse_zpl(render_label(inspection(decision(1, route="HAZARDOUS_DISPOSAL")), "zpl", "2x1"))
    assert [f.data for f in fields if f.arg("BC") is not None] == []
    assert [f.data for f in fields if f.arg("BQN") is not None] == [f"MA,{ID}"]
    text = [f.data for f in fields if f.arg("A0N") is not None]
    assert "HAZARDOUS DISPOSAL" in text and "GRADE B" in text


def test_a_value_no_bar_code_can_hold_is_printed_as_text_only() -> None:
    _, _, fields = parse_zpl(render_label(inspection(decision(1), rma="RMA-" + "7" * 60, lpn="LPN>^XZ"), "zpl", "4x6"))
    assert [f for f in fields if f.arg("BC") is not None] == []
    text = [f.data for f in fields if f.arg("A0N") is not None]
    assert "RMA-" + "7" * 60 in text and escaped("LPN>^XZ") in text
    assert "(too long for a bar code)" in text and "(characters a bar code cannot hold)" in text


# --------------------------------------------------------------------- PDF

PDFTOPPM = shutil.which("pdftoppm")


def decoded(pdf: bytes, tmp_path: Path) -> tuple[list[tuple[str, str]], tuple[int, int]]:
    """The bar codes on the page at 300 dpi (format, text), top to bottom, and the page size in pixels."""
    if PDFTOPPM is None:
        why = "pdftoppm is not installed (Debian: poppler-utils; make test installs it)"
        if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes"):
            pytest.fail(f"{why}: CI must decode the PDF labels", pytrace=False)
        pytest.skip(why)
    (tmp_path / "label.pdf").write_bytes(pdf)
    subprocess.run([PDFTOPPM, "-r", "300", "-png", "-singlefile", "label.pdf", "page"], cwd=tmp_path, check=True)
    page = Image.open(tmp_path / "page.png")
    found = sorted(zxingcpp.read_barcodes(page), key=lambda b: b.position.top_left.y)
    return [(b.format.name, b.text) for b in found], page.size


@pytest.mark.parametrize(
    ("size", "pixels", "codes"),
    [
        ("4x6", (1200, 1800), [("Code128", "RMA-2026-000001"), ("Code128", "LPN00012345"), ("QRCode", ID)]),
        ("2x1", (600, 300), [("QRCode", ID)]),
    ],
)
def test_the_pdf_bar_codes_decode_to_rma_lpn_and_id(
    size: str, pixels: tuple[int, int], codes: list[tuple[str, str]], tmp_path: Path
) -> None:
    found, page = decoded(render_label(inspection(decision(1)), "pdf", size), tmp_path)
    assert page == pixels  # the label's own size at 300 dpi
    assert found == codes


def test_a_pdf_without_rma_or_lpn_still_carries_the_id(tmp_path: Path) -> None:
    found, _ = decoded(render_label(inspection(decision(1), rma=None, lpn=None), "pdf", "4x6"), tmp_path)
    assert found == [("QRCode", ID)]


def test_the_same_label_renders_to_the_same_bytes() -> None:
    for fmt in ("zpl", "pdf"):
        first = render_label(inspection(decision(1)), fmt, "4x6")  # type: ignore[arg-type]
        assert first == render_label(inspection(decision(1)), fmt, "4x6")  # type: ignore[arg-type]
