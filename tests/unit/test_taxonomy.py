"""The open taxonomy: well-formed categories, resolution (exact, prefix, longest, case, same_as), validation,
the shipped mapping, and its use by the grader (rubric, family) and the recommender (value table)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from inspector.disposition import Policy, load_policy, recommend
from inspector.grading import FamilyPrediction, RubricSet, grade_item, load_rubrics
from inspector.grading.base import CODE_CATEGORY_MAPPED, CODE_GENERIC_RUBRIC, CODE_WRONG_ITEM
from inspector.items import FAMILIES, ItemInfo, Sku
from inspector.taxonomy import GENERIC, Taxonomy, load_taxonomy, parse_taxonomy
from inspector.types import DispositionPath, Grade, GradeLevel
from tests.unit.grading_builders import defect, view


def entry(rubric: str, family: str | None = None, table: str | None = None) -> dict[str, Any]:
    return {"rubric": rubric, "family": family, "value_table": table or rubric}


def taxonomy(**entries: dict[str, Any]) -> Taxonomy:
    """Keys use '__' for '/' so that they can be keyword arguments."""
    return parse_taxonomy({"version": "t1", "categories": {k.replace("__", "/"): v for k, v in entries.items()}})


TAX = taxonomy(
    electronics__=entry("appliance", None, "appliance"),
    electronics__phones__=entry("phone", "phone"),
    electronics__phones__rugged=entry("boxed", "phone", "generic"),
    Personal_Care=entry("bottle", "bottle"),
    mobile={"same_as": "electronics/phones/android"},
    handy={"same_as": "mobile"},
)

# category, entry that matches (None: unmapped), rubric, family, value table, same_as hops
RESOLUTION: list[tuple[str | None, str | None, str, str | None, str, tuple[str, ...]]] = [
    ("electronics", "electronics/", "appliance", None, "appliance", ()),  # a prefix matches its own department
    ("electronics/audio/headphones", "electronics/", "appliance", None, "appliance", ()),
    ("electronics/phones", "electronics/phones/", "phone", "phone", "phone", ()),
    ("electronics/phones/android", "electronics/phones/", "phone", "phone", "phone", ()),  # the longest prefix
    ("electronics/phones/rugged", "electronics/phones/rugged", "boxed", "phone", "generic", ()),  # exact wins
    ("electronics/phones/rugged/x1", "electronics/phones/", "phone", "phone", "phone", ()),  # exact is not a prefix
    ("ELECTRONICS/Phones", "electronics/phones/", "phone", "phone", "phone", ()),  # case is ignored
    ("electronics / phones", "electronics/phones/", "phone", "phone", "phone", ()),  # spaces around levels too
    ("personal_care", "Personal_Care", "bottle", "bottle", "bottle", ()),
    ("personal_care/shampoo", None, GENERIC, None, GENERIC, ()),  # an exact key is not a prefix
    ("mobile", "mobile", "phone", "phone", "phone", ("electronics/phones/",)),
    ("handy", "handy", "phone", "phone", "phone", ("mobile", "electronics/phones/")),  # a chain
    ("toys/lego", None, GENERIC, None, GENERIC, ()),
    ("electronicsx", None, GENERIC, None, GENERIC, ()),  # prefixes stop at a level
    ("shoe", "shoe", "shoe", "shoe", "shoe", ()),  # the families map to themselves
    (None, None, GENERIC, None, GENERIC, ()),
]


@pytest.mark.parametrize(("category", "matched", "rubric", "family", "table", "via"), RESOLUTION)
def test_resolution(
    category: str | None, matched: str | None, rubric: str, family: str | None, table: str, via: tuple[str, ...]
) -> None:
    got = TAX.resolve(category)
    assert (got.entry, got.rubric, got.family, got.value_table, got.via) == (matched, rubric, family, table, via)
    assert got.mapped == (matched is not None) and got.version == "t1"


def test_unmapped_reason_names_the_category() -> None:
    assert TAX.resolve("toys/lego").describe("rubric") == "category 'toys/lego' is not mapped: generic rubric"
    assert "mapped by 'handy -> mobile -> electronics/phones/'" in TAX.resolve("handy").describe("table")


def test_a_file_may_remap_a_family() -> None:
    assert taxonomy(phone=entry("generic", None)).resolve("phone").rubric == GENERIC


# entries, what the error says (it names the entry)
INVALID: list[tuple[dict[str, Any], str]] = [
    ({"a": {"same_as": "a"}}, "entry 'a': same_as cycle a -> a"),
    ({"a": {"same_as": "b"}, "b": {"same_as": "c/x"}, "c/": {"same_as": "a"}}, "same_as cycle a -> b -> c/ -> a"),
    ({"a": entry("spaceship")}, "entry 'a': unknown rubric 'spaceship'"),
    ({"a": entry("phone", "robot")}, "entry 'a': unknown family 'robot'"),
    ({"a": entry("phone", "phone", "gold")}, "entry 'a': unknown value_table 'gold'"),
    ({"a": {"same_as": "nowhere"}}, "entry 'a': same_as 'nowhere' is not mapped by any entry"),
    ({"a": {"same_as": "phone", "rubric": "phone"}}, "same_as takes no rubric"),
    ({"a": {"rubric": "phone"}}, "gives rubric and value_table"),
    ({"a": {"rubric": "phone", "value_table": "phone", "colour": "red"}}, "colour: Extra inputs are not permitted"),
    ({"Toys": entry("boxed"), "toys": entry("generic")}, "entry 'toys': the same category as entry 'Toys'"),
    ({"toys//lego": entry("boxed")}, "entry 'toys//lego': category 'toys//lego' has an empty level"),
    ({"/": entry("boxed")}, "entry '/': category must not be empty"),
]


@pytest.mark.parametrize(("entries", "message"), INVALID)
def test_invalid_mappings_name_the_entry(entries: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_taxonomy({"version": "bad", "categories": entries}, "tax.yaml")


def test_version_is_required() -> None:
    with pytest.raises(ValueError, match=r"tax\.yaml: version: Field required"):
        parse_taxonomy({"categories": {}}, "tax.yaml")


DEPARTMENTS = ["electronics", "personal_care", "apparel", "footwear", "toys", "books", "small_appliance"]


@pytest.mark.parametrize("category", [*DEPARTMENTS, *FAMILIES, "electronics/phones/android", "Apparel/Men/Shirts"])
def test_shipped_mapping_maps_the_common_departments(category: str) -> None:
    assert load_taxonomy().resolve(category).mapped


def test_shipped_mapping_maps_families_as_themselves() -> None:
    shipped = load_taxonomy()
    for family in FAMILIES:
        got = shipped.resolve(family)
        assert (got.rubric, got.family, got.value_table) == (family, family, family)


@pytest.mark.parametrize(
    ("text", "error", "message"),
    [
        (None, FileNotFoundError, "taxonomy file not found"),
        ("version: x\ncategories: {a: {same_as: b}, b: {same_as: a}}\n", ValueError, "map.yaml: .*same_as cycle"),
        ("version: x\ncategories: {toys: {rubric: lego, value_table: generic}}\n", ValueError, "unknown rubric 'lego'"),
        ("- a list\n", ValueError, "expected a mapping"),
    ],
)
def test_load_errors_name_the_file(tmp_path: Path, text: str | None, error: type[Exception], message: str) -> None:
    path = tmp_path / "map.yaml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(error, match=message):
        load_taxonomy(path)


# ------------------------------------------------------------------ categories are the retailer's strings

GOOD = ["electronics", "personal_care", "Electronics/Phones", "Home & Garden/Tools", "đồ gia dụng", "x" * 200]
BAD = [
    ("", "must not be empty"),
    ("a//b", "empty level"),
    ("/a", "empty level"),
    ("a\tb", "control"),
    ("x" * 201, "at most"),
]


@pytest.mark.parametrize("category", GOOD)
def test_any_well_formed_category_is_accepted_and_kept(category: str) -> None:
    assert ItemInfo(category=f" {category} ").category == category
    assert Sku(sku="S", category=category, price_new=1.0).category == category


@pytest.mark.parametrize(("category", "message"), BAD)
def test_malformed_categories_are_refused(category: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ItemInfo(category=category)
    with pytest.raises(ValueError, match=message):
        Sku(sku="S", category=category, price_new=1.0)


# ------------------------------------------------------------------ the grader and the recommender use it


@pytest.fixture(scope="module")
def rubric() -> RubricSet:
    return load_rubrics()


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy()


def graded(rubric: RubricSet, category: str, family: FamilyPrediction | None = None) -> Grade:
    sku = Sku(sku="S", category=category, price_new=300.0)
    scratch = view(defect("scratch", 0.5, 0.5, 0.005))
    return grade_item([scratch], rubric=rubric, sku=sku, family=family, taxonomy=TAX)


def test_the_grade_uses_the_mapped_rubric_and_says_so(rubric: RubricSet) -> None:
    g = graded(rubric, "electronics/phones/android")
    assert "by the phone rubric" in g.reasons[0].text
    mapped = next(r for r in g.reasons if r.code == CODE_CATEGORY_MAPPED)
    assert mapped.text.startswith("category 'electronics/phones/android' is mapped by 'electronics/phones/'")
    assert mapped.params["rubric"] == "phone"


def test_an_unmapped_category_is_graded_by_the_generic_rubric(rubric: RubricSet) -> None:
    g = graded(rubric, "toys/lego")
    assert "by the generic rubric" in g.reasons[0].text
    assert [r.text for r in g.reasons if r.code == CODE_GENERIC_RUBRIC] == [
        "category 'toys/lego' is not mapped: generic rubric"
    ]


@pytest.mark.parametrize(
    ("category", "wrong"),
    [("electronics/phones", True), ("mobile", True), ("electronics/audio", False), ("toys/lego", False)],
)
def test_the_wrong_item_check_uses_the_mapped_family(rubric: RubricSet, category: str, wrong: bool) -> None:
    g = graded(rubric, category, FamilyPrediction("shoe", 0.97))
    assert (g.level is GradeLevel.WRONG_ITEM) == wrong
    assert any(r.code == CODE_WRONG_ITEM for r in g.reasons) == wrong


def certain_b() -> Grade:
    return Grade.certain(GradeLevel.B)


@pytest.mark.parametrize(
    ("category", "refurbish_allowed", "reason"),
    [
        ("electronics/phones", True, "category 'electronics/phones' is mapped by 'electronics/phones/'"),
        ("toys/lego", False, "category 'toys/lego' is not mapped: generic value table"),
    ],
)
def test_the_value_table_decides_the_channels(
    policy: Policy, category: str, refurbish_allowed: bool, reason: str
) -> None:
    item = ItemInfo(category=category, price=300.0)
    d = recommend(certain_b(), sku=None, item=item, policy=policy, taxonomy=TAX)
    refurbish = next(a for a in d.alternatives if a.path is DispositionPath.REFURBISH)
    assert refurbish.allowed == refurbish_allowed
    assert any(r.code == "value_table" and r.text.startswith(reason) for r in d.reasons)
    assert d.rule != "unknown_value"


def test_the_value_table_picks_the_recovery(policy: Policy) -> None:
    """A garment's donation is valued at fair market value; 'apparel/men' gets it through the shipped mapping."""
    item = ItemInfo(category="apparel/men", price=100.0)

    def donation(taxonomy: Taxonomy | None) -> float:
        d = recommend(certain_b(), sku=None, item=item, policy=policy, taxonomy=taxonomy)
        return next(a.expected_value for a in d.alternatives if a.path is DispositionPath.DONATE)

    assert donation(load_taxonomy()) > donation(None)
