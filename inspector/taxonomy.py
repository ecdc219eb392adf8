"""The retailer's categories -> the rubric that grades them, the detector family, the policy's value table.

A category is the retailer's own string (``electronics/phones``); the station knows
eight detector families, one rubric per family plus ``generic``, and the policy values
items by the same names (a channel's ``categories``, ``recovery_by_category``, a rule's
``categories``): those names are the *value tables*. The mapping file says which is which:

.. code-block:: yaml

    version: "2026.12-1"
    categories:
      electronics/phones: {rubric: phone, family: phone, value_table: phone}
      electronics/: {rubric: generic, family: null, value_table: generic}   # the department and below
      mobile: {same_as: electronics/phones}

A key ending in ``/`` is a prefix: it matches that category and every one below it.
Matching ignores case; an exact key beats a prefix, and the longest prefix wins.
``same_as`` names another category, resolved the same way. An unmapped category is
graded by the generic rubric and valued by the generic table. The eight families map
to themselves unless the file says otherwise.

Resolution is pure; :func:`load_taxonomy` is the only function that reads a file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from inspector.items import FAMILIES, category_key, check_category
from inspector.yamlfile import read_mapping

GENERIC = "generic"  # the rubric and the value table of an item whose category is not mapped
RUBRICS: tuple[str, ...] = (*FAMILIES, GENERIC)
VALUE_TABLES: tuple[str, ...] = (*FAMILIES, GENERIC)
TAXONOMY_FILE = Path(__file__).resolve().parent / "taxonomy.yaml"
IDENTITY_VERSION = "families"  # the version of the mapping that knows only the eight families


@dataclass(frozen=True, slots=True)
class CategoryMapping:
    """What one category resolves to, and by which entry (None: not mapped)."""

    category: str | None
    rubric: str
    family: str | None
    value_table: str
    entry: str | None = None
    via: tuple[str, ...] = ()  # the same_as entries followed after ``entry``
    version: str = ""

    @property
    def mapped(self) -> bool:
        return self.entry is not None

    @property
    def plain(self) -> bool:
        """A family named as itself: nothing worth telling the operator."""
        return self.category is not None and category_key(self.category) == self.rubric == self.value_table

    def describe(self, what: str) -> str:
        """A reason's text for the rubric (``what="rubric"``) or the value table (``"table"``)."""
        target = f"{self.rubric} rubric" if what == "rubric" else f"{self.value_table} value table"
        if self.category is None:
            return f"category unknown: {target}"
        if not self.mapped:
            return f"category {self.category!r} is not mapped: {target}"
        chain = " -> ".join((self.entry or "", *self.via))
        return f"category {self.category!r} is mapped by {chain!r} (taxonomy {self.version}): {target}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "entry": self.entry,
            "via": list(self.via),
            "rubric": self.rubric,
            "family": self.family,
            "value_table": self.value_table,
            "version": self.version,
        }


class Entry(BaseModel):
    """One category's mapping, or ``same_as`` another category."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rubric: str | None = Field(None, description=f"grading rubric: one of {', '.join(RUBRICS)}")
    family: str | None = Field(
        None, description=f"detector family for the wrong-item check ({', '.join(FAMILIES)}); null: no check"
    )
    value_table: str | None = Field(None, description=f"the policy's value table: one of {', '.join(VALUE_TABLES)}")
    same_as: str | None = Field(None, description="map exactly as this other category")
    description: str = ""

    @model_validator(mode="after")
    def _complete(self) -> Entry:
        if self.same_as is not None:
            if self.rubric or self.family or self.value_table:
                raise ValueError("same_as takes no rubric, family or value_table of its own")
        elif self.rubric is None or self.value_table is None:
            raise ValueError("an entry gives rubric and value_table (family optional), or same_as")
        return self


def _family_entries(raw: Any) -> Any:
    """Add the eight families as themselves unless the file maps them."""
    if not isinstance(raw, dict) or not isinstance(raw.get("categories", {}), dict):
        return raw
    given = raw.get("categories") or {}
    keys = {category_key(str(k)) for k in given}
    added = {f: {"rubric": f, "family": f, "value_table": f} for f in FAMILIES if f not in keys}
    return {**raw, "categories": {**given, **added}}


class Taxonomy(BaseModel):
    """The mapping file, validated: every entry resolves, no cycle, only known rubrics, families and tables."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(min_length=1, description="recorded on every inspection")
    description: str = ""
    categories: dict[str, Entry] = Field(default_factory=dict)
    _exact: dict[str, str] = PrivateAttr(default_factory=dict)
    _prefix: dict[str, str] = PrivateAttr(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _with_families(cls, raw: Any) -> Any:
        return _family_entries(raw)

    @model_validator(mode="after")
    def _consistent(self) -> Taxonomy:
        for key, entry in self.categories.items():
            name = key[:-1] if key.endswith("/") else key
            try:
                if check_category(name) != name:
                    raise ValueError("no spaces around a key")
                if entry.same_as is not None:
                    check_category(entry.same_as)
            except ValueError as exc:
                raise ValueError(f"entry {key!r}: {exc}") from None
            index = self._prefix if key.endswith("/") else self._exact
            norm = category_key(key)
            if norm in index:
                raise ValueError(f"entry {key!r}: the same category as entry {index[norm]!r} (case is ignored)")
            index[norm] = key
            for field, value, known in (
                ("rubric", entry.rubric, RUBRICS),
                ("family", entry.family, FAMILIES),
                ("value_table", entry.value_table, VALUE_TABLES),
            ):
                if value is not None and value not in known:
                    raise ValueError(f"entry {key!r}: unknown {field} {value!r}; expected one of {', '.join(known)}")
        for key in self.categories:
            self._chain(key)
        return self

    @classmethod
    def identity(cls) -> Taxonomy:
        """The eight families as themselves, nothing else: every other category is unmapped."""
        return cls(version=IDENTITY_VERSION)

    def match(self, category: str) -> str | None:
        """The entry that matches a category: exact first, then the longest prefix; None when none does."""
        key = category_key(category)
        if key in self._exact:
            return self._exact[key]
        levels = key.split("/")
        for n in range(len(levels), 0, -1):
            found = self._prefix.get("/".join(levels[:n]) + "/")
            if found is not None:
                return found
        return None

    def _chain(self, key: str) -> list[str]:
        """``key`` and the entries its same_as leads to; ValueError on a cycle or a target nothing maps."""
        chain = [key]
        entry = self.categories[key]
        while entry.same_as is not None:
            target = self.match(entry.same_as)
            if target is None:
                raise ValueError(f"entry {chain[-1]!r}: same_as {entry.same_as!r} is not mapped by any entry")
            if target in chain:
                loop = " -> ".join([*chain[chain.index(target) :], target])
                raise ValueError(f"entry {key!r}: same_as cycle {loop}")
            chain.append(target)
            entry = self.categories[target]
        return chain

    def resolve(self, category: str | None) -> CategoryMapping:
        """Rubric, family and value table of a category; the generic ones when nothing maps it."""
        found = self.match(category) if category is not None else None
        if found is None:
            return CategoryMapping(category, GENERIC, None, GENERIC, version=self.version)
        chain = self._chain(found)
        entry = self.categories[chain[-1]]
        return CategoryMapping(
            category=category,
            rubric=entry.rubric or GENERIC,
            family=entry.family,
            value_table=entry.value_table or GENERIC,
            entry=found,
            via=tuple(chain[1:]),
            version=self.version,
        )


def _error_text(loc: tuple[int | str, ...], msg: str) -> str:
    where = ".".join(str(p) for p in loc)
    what = msg.removeprefix("Value error, ")
    return f"{where}: {what}" if where else what


def parse_taxonomy(raw: Any, source: str = "taxonomy") -> Taxonomy:
    """Validate a parsed mapping file; one ValueError naming the source, the entry and what is wrong."""
    try:
        return Taxonomy.model_validate(raw)
    except ValidationError as exc:
        details = "; ".join(_error_text(e["loc"], e["msg"]) for e in exc.errors())
        raise ValueError(f"{source}: {details}") from None


def load_taxonomy(path: Path | None = None) -> Taxonomy:
    """The mapping file (None: the one shipped with the station)."""
    path = path or TAXONOMY_FILE
    if not path.is_file():
        raise FileNotFoundError(f"taxonomy file not found: {path}")
    return parse_taxonomy(read_mapping(path), str(path))


FAMILIES_ONLY = Taxonomy.identity()  # what grading and valuing use when no mapping is given
