"""The category mapping in force: which rubric, detector family and value table each retailer category gets.

A WMS sends its own category names; this shows how the station reads them, and
``?category=`` resolves one name exactly as an inspection would.
"""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from inspector.api.deps import AnyKey, SettingsDep, SlotDep
from inspector.api.problems import Problem, responses
from inspector.config import Settings
from inspector.items import FAMILIES, MAX_CATEGORY_LENGTH, check_category
from inspector.taxonomy import RUBRICS, VALUE_TABLES, Taxonomy, load_taxonomy

router = APIRouter(prefix="/v1/taxonomy", tags=["policy"])


class EntryOut(BaseModel):
    key: str = Field(description="as written in the file; a key ending in '/' is a prefix")
    match: str = Field(description="exact, or prefix: the category and every one below it")
    rubric: str | None
    family: str | None
    value_table: str | None
    same_as: str | None
    description: str


class MappingOut(BaseModel):
    category: str | None
    entry: str | None = Field(description="the entry that matched; null: not mapped (generic rubric and table)")
    via: list[str] = Field(description="the same_as entries followed after it")
    rubric: str
    family: str | None
    value_table: str
    version: str


class TaxonomyOut(BaseModel):
    version: str = Field(description="recorded on every inspection under versions.taxonomy")
    source: str = Field(description="pipeline: the one serving; file: read from the settings (no model loaded)")
    description: str
    entries: list[EntryOut]
    rubrics: list[str]
    families: list[str]
    value_tables: list[str]
    resolved: MappingOut | None = Field(None, description="how ?category= maps, when given")


def _in_force(settings: Settings, pipeline: object | None) -> tuple[Taxonomy, str]:
    served = getattr(pipeline, "taxonomy", None)
    if isinstance(served, Taxonomy):
        return served, "pipeline"
    try:
        return load_taxonomy(settings.disposition.taxonomy_file), "file"
    except (OSError, ValueError) as exc:
        raise Problem(503, f"the taxonomy file cannot be read: {exc}", code="taxonomy_unavailable") from exc


def describe(taxonomy: Taxonomy, source: str, category: str | None) -> dict[str, Any]:
    """The mapping as served, and ``category`` resolved when given."""
    entries = [
        {
            "key": key,
            "match": "prefix" if key.endswith("/") else "exact",
            "rubric": e.rubric,
            "family": e.family,
            "value_table": e.value_table,
            "same_as": e.same_as,
            "description": e.description,
        }
        for key, e in taxonomy.categories.items()
    ]
    return {
        "version": taxonomy.version,
        "source": source,
        "description": taxonomy.description,
        "entries": entries,
        "rubrics": list(RUBRICS),
        "families": list(FAMILIES),
        "value_tables": list(VALUE_TABLES),
        "resolved": taxonomy.resolve(category).to_dict() if category is not None else None,
    }


@router.get(
    "", response_model=TaxonomyOut, summary="The category mapping in force", responses=responses(401, 403, 422, 503)
)
async def get_taxonomy(
    _key: AnyKey,
    settings: SettingsDep,
    slot: SlotDep,
    category: str | None = Query(
        None, max_length=MAX_CATEGORY_LENGTH, description="resolve this category as an inspection would"
    ),
) -> dict[str, Any]:
    if category is not None:
        try:
            category = check_category(category)
        except ValueError as exc:
            raise Problem(422, str(exc), code="invalid_category") from exc
    taxonomy, source = await anyio.to_thread.run_sync(_in_force, settings, slot.pipeline)
    return describe(taxonomy, source, category)
