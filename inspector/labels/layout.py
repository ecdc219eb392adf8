"""What a disposition label says and where each part sits, once for both formats.

The positions are printer dots at 203 dpi (the thermal printers' resolution);
the ZPL renderer writes them as they are and the PDF renderer scales them, so a
4x6 in label looks the same from either. Text sizes are chosen here with a
conservative character width (a printer's font is not measured from here); the
PDF renderer shrinks a text further if its own font runs wider.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

DPI = 203
CHAR_WIDTH = 0.62  # a capital's advance in the printer's scalable font, as a share of its height (conservative)
QUIET_ZONE = 10  # modules of white either side of a Code 128, as the symbology asks
BAR_INSET = 20  # dots between a section's edge and its bars: with the 30-dot margin, 50 dots >= 10 modules of 3


@dataclass(frozen=True, slots=True)
class Sheet:
    """One label stock: its name and its size in dots at 203 dpi."""

    name: str
    width: int
    height: int


SHEETS: dict[str, Sheet] = {"4x6": Sheet("4x6", 4 * DPI, 6 * DPI), "2x1": Sheet("2x1", 2 * DPI, 1 * DPI)}


@dataclass(frozen=True, slots=True)
class Text:
    """Text in a box ``width`` wide, wrapped on spaces into at most ``lines`` lines of ``height`` dots."""

    x: int
    y: int
    width: int
    height: int
    text: str
    lines: int = 1
    gap: int = 0  # extra dots between two lines
    align: Literal["L", "C", "R"] = "L"
    inverse: bool = False  # white on a filled box


@dataclass(frozen=True, slots=True)
class Fill:
    """A black rectangle (the route's band, a rule)."""

    x: int
    y: int
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class Code128:
    """A Code 128 bar code, ``module`` dots per narrowest bar, no text of its own (a :class:`Text` follows)."""

    x: int
    y: int
    module: int
    height: int
    value: str


@dataclass(frozen=True, slots=True)
class QrCode:
    """A QR code (error correction M), ``module`` dots per square."""

    x: int
    y: int
    module: int
    value: str


Element = Text | Fill | Code128 | QrCode


@dataclass(frozen=True, slots=True)
class Label:
    """Everything a renderer draws: the stock, the elements in drawing order, a title for the print queue."""

    sheet: Sheet
    elements: tuple[Element, ...]
    title: str
    when: datetime


@dataclass(frozen=True, slots=True)
class LabelContent:
    """What the label says, read from one inspection and the decision it is printed for."""

    inspection_id: str
    station_id: str
    route: str  # the disposition path, e.g. RETURN_TO_VENDOR
    grade: str
    status: str  # ACCEPTED | OVERRIDDEN | NOT DECIDED
    rma: str | None
    lpn: str | None
    when: datetime


def _when(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def content_of(inspection: Mapping[str, Any], *, decision_id: str | None = None) -> LabelContent:
    """The label's content: after ``decision_id``, else after the newest decision, else the recommendation.

    A :class:`ValueError` when ``decision_id`` is not one of the inspection's decisions.
    """
    decisions: Sequence[Mapping[str, Any]] = inspection.get("decisions") or []
    chosen: Mapping[str, Any] | None = decisions[-1] if decisions else None
    if decision_id is not None:
        chosen = next((d for d in decisions if d.get("id") == decision_id), None)
        if chosen is None:
            raise ValueError(f"inspection {inspection.get('id')} has no decision {decision_id}")
    item = inspection.get("item") or {}
    if chosen is not None:
        route, grade, when = str(chosen["disposition"]), str(chosen["grade"]), _when(chosen["created_at"])
        status = "ACCEPTED" if chosen.get("action") == "accept" else "OVERRIDDEN"
    else:
        route = str(inspection["disposition"]["path"])
        grade = str(inspection["grade"]["level"])
        when, status = _when(inspection["created_at"]), "NOT DECIDED"
    return LabelContent(
        inspection_id=str(inspection["id"]),
        station_id=str(inspection.get("station_id") or ""),
        route=route,
        grade=grade,
        status=status,
        rma=item.get("rma") or None,
        lpn=item.get("lpn") or None,
        when=when,
    )


def barcodable(value: str) -> bool:
    """Whether ``value`` goes into a Code 128 as it is: printable ASCII, none of ZPL's ``^ ~`` or ``>``.

    (``>`` starts a subset switch inside ZPL's ^BC data; anything else is text only.)
    """
    return (
        bool(value)
        and value == value.strip()
        and all(0x20 <= ord(c) <= 0x7E for c in value)
        and not set(value) & set("^~>\\")
    )


def code128_width(value: str, module: int) -> int:
    """An upper bound on the bars' width in dots: every character in code set B, no digit pairs."""
    return (11 * len(value) + 35) * module


def wrapped(text: str, per_line: int) -> list[str]:
    """``text`` wrapped greedily on spaces at ``per_line`` characters (a longer word keeps its own line)."""
    lines: list[str] = []
    for word in text.split():
        if lines and len(lines[-1]) + 1 + len(word) <= per_line:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines or [""]


def fitted(
    x: int, y: int, width: int, height: int, text: str, *, max_size: int, max_lines: int = 1, **style: Any
) -> Text:
    """The largest type (at most ``max_size`` dots) that sets ``text`` in the box, centred in its height."""
    size = max_size
    while True:
        gap = size // 8
        per_line = max(1, int(width / (CHAR_WIDTH * size)))
        lines = wrapped(text, per_line)
        longest = max(len(line) for line in lines)
        used = len(lines) * size + (len(lines) - 1) * gap
        if size <= 8 or (len(lines) <= max_lines and longest <= per_line and used <= height):
            break
        size -= 2
    n = min(len(lines), max_lines)
    used = n * size + (n - 1) * gap
    return Text(x, y + max(0, (height - used) // 2), width, size, text, lines=n, gap=gap, **style)


def _human(code: str) -> str:
    return code.replace("_", " ")


def _code_section(x: int, y: int, width: int, tag: str, value: str) -> list[Element]:
    """A tag, the value as a Code 128 with the value under it, or the value alone when no bar code can hold it."""
    out: list[Element] = [Text(x, y, width, 34, tag)]
    room = width - 2 * BAR_INSET
    module = next((m for m in (3, 2) if code128_width(value, m) <= room), None)
    if barcodable(value) and module is not None:
        out += [
            Code128(x + BAR_INSET, y + 44, module, 110, value),
            fitted(x + BAR_INSET, y + 162, room, 34, value, max_size=32),
        ]
    else:
        why = "too long for a bar code" if barcodable(value) else "characters a bar code cannot hold"
        out += [fitted(x, y + 44, width, 80, value, max_size=56, max_lines=2), Text(x, y + 130, width, 28, f"({why})")]
    return out


def _four_by_six(c: LabelContent, sheet: Sheet) -> list[Element]:
    w, m = sheet.width, 30
    inner = w - 2 * m
    out: list[Element] = [
        Fill(0, 0, w, 300),
        fitted(m, 20, inner, 260, _human(c.route), max_size=120, max_lines=2, align="C", inverse=True),
        fitted(m, 320, 480, 110, f"GRADE {_human(c.grade)}", max_size=96),
        fitted(520, 320, w - m - 520, 110, c.status, max_size=44, align="R"),
        Fill(m, 440, inner, 4),
    ]
    if c.rma:
        out += _code_section(m, 465, inner, "RMA", c.rma)
    if c.lpn:
        out += _code_section(m, 690, inner, "LPN", c.lpn)
    half = len(c.inspection_id) // 2
    right = 290
    out += [
        Fill(m, 915, inner, 4),
        QrCode(m, 945, 7, c.inspection_id),
        Text(right, 950, w - m - right, 30, "INSPECTION"),
        fitted(right, 988, w - m - right, 38, c.inspection_id[:half], max_size=34),
        fitted(right, 1028, w - m - right, 38, c.inspection_id[half:], max_size=34),
        fitted(right, 1088, w - m - right, 42, f"{c.when:%Y-%m-%d %H:%M} UTC", max_size=36),
        fitted(right, 1134, w - m - right, 42, c.station_id, max_size=36),
    ]
    return out


def _two_by_one(c: LabelContent, sheet: Sheet) -> list[Element]:
    """Route, grade and the inspection's QR code: a Code 128 of a typical RMA does not fit 2 in with its margins."""
    w = sheet.width
    right = 120
    return [
        Fill(0, 0, w, 76),
        fitted(8, 4, w - 16, 68, _human(c.route), max_size=60, align="C", inverse=True),
        QrCode(10, 84, 3, c.inspection_id),
        fitted(right, 84, w - right - 8, 50, f"GRADE {_human(c.grade)}", max_size=48),
        fitted(right, 138, w - right - 8, 30, c.rma or c.lpn or c.inspection_id[:13], max_size=26),
        fitted(right, 170, w - right - 8, 28, f"{c.when:%Y-%m-%d %H:%M} {c.station_id}", max_size=22),
    ]


def layout(content: LabelContent, size: str) -> Label:
    """The elements of one label of ``size`` (``4x6`` or ``2x1``)."""
    sheet = SHEETS[size]
    elements = _four_by_six(content, sheet) if size == "4x6" else _two_by_one(content, sheet)
    title = f"{content.route} {content.inspection_id}"
    return Label(sheet=sheet, elements=tuple(elements), title=title, when=content.when)
