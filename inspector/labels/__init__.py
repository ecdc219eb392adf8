"""The disposition label: where a decided item goes next, printed at the bench.

``layout`` turns an inspection record into one set of positioned elements per
label size; ``zpl`` and ``pdf`` draw those same elements for a thermal printer
or a PDF (pure: bytes in memory, no I/O). ``printers`` sends the bytes to a
folder, a CUPS queue or a raw TCP port; ``jobs`` keeps the print queue in the
database and ``worker`` prints it in the background, retrying a printer that is
down, so a decision never waits for paper.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from inspector.labels.layout import content_of, layout
from inspector.labels.pdf import render_pdf
from inspector.labels.zpl import render_zpl

Format = Literal["zpl", "pdf"]
Size = Literal["4x6", "2x1"]

MEDIA_TYPES: dict[str, str] = {"zpl": "application/zpl", "pdf": "application/pdf"}


def render_label(inspection: Mapping[str, Any], fmt: Format, size: Size, *, decision_id: str | None = None) -> bytes:
    """The label of ``inspection`` (as the API serves it) after ``decision_id`` (default: the outcome in force)."""
    elements = layout(content_of(inspection, decision_id=decision_id), size)
    return render_zpl(elements) if fmt == "zpl" else render_pdf(elements)


__all__ = ["MEDIA_TYPES", "Format", "Size", "render_label"]
