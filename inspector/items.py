"""What the station knows about the returned item besides its pictures.

``Sku`` is a catalogue entry (what the product is and the rules that bind it);
``ItemInfo`` is what the WMS or the operator says about this one return.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

# Product families the detector and the family classifier know. A category is the retailer's own
# string; the taxonomy (inspector/taxonomy.py) maps it to a family, a rubric and a value table.
FAMILIES: tuple[str, ...] = ("phone", "tablet", "laptop", "boxed", "bottle", "shoe", "garment", "appliance")
MAX_CATEGORY_LENGTH = 200

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


def check_flags(flags: Iterable[str]) -> list[str]:
    """The flags sorted, once each; ValueError naming any this station does not know."""
    given = set(flags)
    unknown = sorted(given - ITEM_FLAGS)
    if unknown:
        raise ValueError(f"unknown flags {unknown}; expected some of {sorted(ITEM_FLAGS)}")
    return sorted(given)


def check_category(value: str) -> str:
    """A well-formed category, as given but for surrounding spaces; ValueError says what is wrong.

    Any printable text up to ``MAX_CATEGORY_LENGTH`` characters, ``/`` between the levels of a
    hierarchy (``electronics/phones``) with no empty level: the retailer's names are kept, not judged.
    """
    text = value.strip()
    if not text:
        raise ValueError("category must not be empty")
    if len(text) > MAX_CATEGORY_LENGTH:
        raise ValueError(f"category is {len(text)} characters long; at most {MAX_CATEGORY_LENGTH}")
    if not text.isprintable():
        raise ValueError(f"category {text!r} holds control characters")
    if any(not level.strip() for level in text.split("/")):
        raise ValueError(f"category {text!r} has an empty level: levels are joined by single '/'")
    return text


def category_key(value: str) -> str:
    """How categories compare: case-insensitive, spaces around each level ignored."""
    return "/".join(level.strip() for level in value.casefold().split("/"))


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
    extra: Mapping[str, str] = field(default_factory=dict, hash=False)  # the retailer's other columns, kept

    def __post_init__(self) -> None:
        if not self.sku:
            raise ValueError("Sku.sku must not be empty")
        object.__setattr__(self, "category", check_category(self.category))
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
    line: int | None = None  # which line of the RMA, when it holds several items (an expected return's)

    def __post_init__(self) -> None:
        unknown = set(self.flags) - ITEM_FLAGS
        if unknown:
            raise ValueError(f"unknown item flags {sorted(unknown)}; expected some of {sorted(ITEM_FLAGS)}")
        if self.category is not None:
            object.__setattr__(self, "category", check_category(self.category))
        if self.price is not None and self.price < 0:
            raise ValueError("price must not be negative")
        object.__setattr__(self, "flags", frozenset(self.flags))
