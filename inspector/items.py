"""What the station knows about the returned item besides its pictures.

``Sku`` is a catalogue entry (what the product is and the rules that bind it);
``ItemInfo`` is what the WMS or the operator says about this one return.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Product families the detector and the family classifier know; a SKU's category is one of them.
FAMILIES: tuple[str, ...] = ("phone", "tablet", "laptop", "boxed", "bottle", "shoe", "garment", "appliance")

# Flags an operator or the WMS may raise on one return (they drive the hard rules).
ITEM_FLAGS: frozenset[str] = frozenset(
    {
        "opened",  # packaging opened by the customer
        "battery_swollen",
        "battery_leaking",
        "suspected_counterfeit",
        "personalised",
        "not_functional",  # customer or bench test says it does not work
        "missing_accessories",
    }
)


@dataclass(frozen=True, slots=True)
class Sku:
    """A catalogue entry: category, value and the rules that bind the product."""

    sku: str
    category: str
    price_new: float
    name: str = ""
    hygiene: bool = False  # personal-care or hygiene product: never resold once opened
    has_battery: bool = False
    recalled: bool = False
    personalised: bool = False
    vendor_return_days: int = 0  # 0 = no vendor return agreement
    weight_kg: float = 1.0

    def __post_init__(self) -> None:
        if not self.sku:
            raise ValueError("Sku.sku must not be empty")
        if self.category not in FAMILIES:
            raise ValueError(f"unknown category {self.category!r}; expected one of {', '.join(FAMILIES)}")
        if self.price_new < 0 or self.weight_kg < 0 or self.vendor_return_days < 0:
            raise ValueError("price, weight and vendor return days must not be negative")


@dataclass(frozen=True, slots=True)
class ItemInfo:
    """What the WMS or operator tells about this return (all optional)."""

    rma: str | None = None
    lpn: str | None = None
    sku: str | None = None
    category: str | None = None
    return_reason: str | None = None
    price: float | None = None  # what the customer paid, if known
    days_since_sale: int | None = None
    flags: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        unknown = set(self.flags) - ITEM_FLAGS
        if unknown:
            raise ValueError(f"unknown item flags {sorted(unknown)}; expected some of {sorted(ITEM_FLAGS)}")
        if self.category is not None and self.category not in FAMILIES:
            raise ValueError(f"unknown category {self.category!r}; expected one of {', '.join(FAMILIES)}")
        if self.price is not None and self.price < 0:
            raise ValueError("price must not be negative")
        object.__setattr__(self, "flags", frozenset(self.flags))
