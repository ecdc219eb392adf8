"""The embedded demo's expected returns: the synthetic bench's return slips name RMAs the station expects.

A real returns centre hears from its WMS what is coming (``PUT /v1/returns/{rma}``).
On the synthetic bench nobody does, so every item would be inspected without a
price and end in manual review. With ``returns.demo`` on, each rendered item that
carries a return slip (or an LPN sticker) is announced before it enters: one line,
sometimes two, with a SKU of the item's family from the served catalogue, a price
paid, a reason and the days since the sale (source "demo"). Everything is drawn
from the RMA itself, so the same slip always announces the same return. A second
line comes only with an item whose LPN sticker picks its line: an unattended demo
never waits for an operator to choose one.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from inspector.items import Sku
from station.labels import DEFAULT_LPN_PATTERN, DEFAULT_RMA_PATTERN

log = logging.getLogger(__name__)

Put = Callable[[str, list[dict[str, Any]]], None]
"""Stores one expected return: (RMA, its lines as the WMS would send them)."""

REASONS: tuple[str, ...] = (
    "changed mind",
    "defective",
    "not as described",
    "damaged in transit",
    "wrong size or fit",
    "arrived too late",
)
_RMA = re.compile(DEFAULT_RMA_PATTERN)
_LPN = re.compile(DEFAULT_LPN_PATTERN)
TWO_LINES_P = 0.25  # how often a return holds a second item besides the one on the bench
# Most returns come with their slip: the demo bench lays one beside 9 items in 10 (the datasets keep 0.45),
# so most items of the demo are known by the RMA the camera reads.
DEMO_SLIP_SHARE = 0.9


class DemoReturns:
    """Turns a rendered item's metadata into the expected return its slip or sticker names."""

    def __init__(self, put: Put, catalogue: Mapping[str, Sku]) -> None:
        self._put = put
        self._by_family: dict[str, list[Sku]] = {}
        for sku in catalogue.values():
            self._by_family.setdefault(sku.category.lower(), []).append(sku)
        self.announced = 0

    def lines_for(self, meta: Mapping[str, Any]) -> tuple[str, list[dict[str, Any]]] | None:
        """(RMA, lines) for the item ``meta`` describes; None when it carries no slip and no LPN."""
        texts = [str(c.get("text") or "").upper() for c in meta.get("codes") or [] if isinstance(c, Mapping)]
        rma = next((t for t in texts if _RMA.match(t)), None)  # the slip also carries a product barcode
        lpn = next((t for t in texts if _LPN.match(t)), None)  # and the item its own EAN
        family = str(meta.get("family") or "")
        if not family or not (rma or lpn):
            return None
        rma = rma or f"RMA-DEMO-{lpn}"
        rng = np.random.default_rng(int.from_bytes(hashlib.sha256(rma.encode()).digest()[:8], "big"))
        item = self._line(rng, family, lpn, meta.get("sku"))
        if lpn is None or rng.random() >= TWO_LINES_P:
            return rma, [{"line": 1, **item}]
        others = [f for f in sorted(self._by_family) if f != family.lower()] or [family]
        other = self._line(rng, str(rng.choice(others)), None, None)
        pair = [item, other] if rng.random() < 0.5 else [other, item]
        return rma, [{"line": n, **line} for n, line in enumerate(pair, start=1)]

    def _line(self, rng: np.random.Generator, family: str, lpn: str | None, drawn: Any) -> dict[str, Any]:
        """One line: a SKU of ``family`` (the item's own drawn attributes when the catalogue has none)."""
        skus = self._by_family.get(family.lower())
        if skus:
            sku = skus[int(rng.integers(len(skus)))]
            sku_id, category, price_new = sku.sku, sku.category, sku.price_new
        else:
            attrs = drawn if isinstance(drawn, Mapping) else {}
            sku_id, category = None, family
            price_new = float(attrs.get("price_new") or rng.uniform(20.0, 400.0))
        return {
            "lpn": lpn,
            "sku": sku_id,
            "category": category,
            "price": round(price_new * float(rng.uniform(0.6, 1.0)), 2),
            "reason": str(rng.choice(REASONS)),
            "days_since_sale": int(rng.integers(1, 60)),
            "flags": ["opened"] if rng.random() < 0.3 else [],
        }

    def announce(self, meta: Mapping[str, Any]) -> None:
        """Store the expected return of a rendered item (the synthetic camera calls this before it enters)."""
        found = self.lines_for(meta)
        if found is None:
            return
        rma, lines = found
        self._put(rma, lines)
        self.announced += 1
        log.debug("demo: %s expected with %d line(s)", rma, len(lines))
