"""ZPL II for thermal label printers (Zebra and compatibles) at 203 dpi.

Text is UTF-8 (``^CI28``) and hex-escaped (``^FH``), so nothing a client sent
can end a field or start a command; bar codes only ever carry values that
:func:`~inspector.labels.layout.barcodable` let through.
"""

from __future__ import annotations

from inspector.labels.layout import Code128, Fill, Label, QrCode, Text, barcodable

_PLAIN = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 .,:;/#()+*=&%$@!?'-")


def escaped(text: str) -> str:
    """``text`` for a ``^FH_`` field: every character outside a plain set as ``_XX`` hex of its UTF-8 bytes."""
    return "".join(c if c in _PLAIN else "".join(f"_{b:02X}" for b in c.encode()) for c in text)


def _field(e: Text | Fill | Code128 | QrCode) -> str:
    if isinstance(e, Fill):
        return f"^FO{e.x},{e.y}^GB{e.width},{e.height},{min(e.width, e.height)},B^FS"
    if isinstance(e, Text):
        reverse = "^FR" if e.inverse else ""
        # ^FB's last line holds what does not fit, so the box is given exactly the lines it was fitted to
        block = f"^FB{e.width},{e.lines},{e.gap},{e.align},0"
        return f"^FO{e.x},{e.y}^A0N,{e.height},{e.height}{block}{reverse}^FH_^FD{escaped(e.text)}^FS"
    if not barcodable(e.value):  # the layout never asks for one; a field must not be able to end early
        raise ValueError(f"{e.value!r} cannot be put in a bar code field")
    if isinstance(e, Code128):
        # automatic code sets (mode A): digit runs are packed in pairs by the printer
        return f"^FO{e.x},{e.y}^BY{e.module}^BCN,{e.height},N,N,N,A^FD{e.value}^FS"
    # error correction M, automatic input mode
    return f"^FO{e.x},{e.y}^BQN,2,{e.module}^FDMA,{e.value}^FS"


def render_zpl(label: Label) -> bytes:
    """One label, ``^XA`` .. ``^XZ``, one command per line."""
    sheet = label.sheet
    head = ["^XA", "^CI28", f"^PW{sheet.width}", f"^LL{sheet.height}", "^LH0,0"]
    return ("\n".join([*head, *(_field(e) for e in label.elements), "^PQ1", "^XZ"]) + "\n").encode()
