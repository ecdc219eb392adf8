"""The recommender: one table row per hard rule, the value arithmetic by hand, regret, and the policy checks."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from inspector.config import DispositionConfig
from inspector.disposition import Catalogue, Policy, load_catalogue, load_policy, recommend
from inspector.disposition.loaders import POLICY_FILE, parse_policy
from inspector.grading.base import CODE_OPENED
from inspector.items import ItemInfo, Sku
from inspector.types import Disposition, DispositionPath, Grade, GradeLevel, Reason

P = DispositionPath
A, B, C, D = GradeLevel.A, GradeLevel.B, GradeLevel.C, GradeLevel.D


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy()


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


def certain(level: GradeLevel, *codes: str) -> Grade:
    return Grade.certain(level, [Reason(text=c, code=c) for c in codes])


def decide(policy: Policy, catalogue: Catalogue, grade: Grade, sku: str | None, **item: Any) -> Disposition:
    info = ItemInfo(sku=sku, **item)
    return recommend(grade, sku=catalogue.resolve(sku, info), item=info, policy=policy)


# name, grade, SKU, item fields, expected path, expected rule
RULES: list[tuple[str, Grade, str | None, dict[str, Any], DispositionPath, str | None]] = [
    ("swollen battery", certain(A), "PH-X900", {"flags": {"battery_swollen"}}, P.HAZARDOUS_DISPOSAL, "battery_hazard"),
    (
        "leaking battery beats recall",
        certain(A),
        "PH-R100",
        {"flags": {"battery_leaking"}},
        P.HAZARDOUS_DISPOSAL,
        "battery_hazard",
    ),
    (
        "battery flag without a catalogue entry",
        certain(B),
        None,
        {"flags": {"battery_swollen"}},
        P.HAZARDOUS_DISPOSAL,
        "battery_hazard",
    ),
    ("recalled SKU", certain(A), "PH-R100", {}, P.QUARANTINE, "recalled"),
    ("recalled beats wrong item", certain(GradeLevel.WRONG_ITEM), "AP-HTR01", {}, P.QUARANTINE, "recalled"),
    ("recalled hygiene SKU", certain(A), "BT-BAB01", {"flags": {"opened"}}, P.QUARANTINE, "recalled"),
    ("unreadable pictures", certain(GradeLevel.UNREADABLE), "PH-X900", {}, P.MANUAL_REVIEW, "unreadable"),
    ("empty box", certain(GradeLevel.EMPTY), "LT-W140", {}, P.MANUAL_REVIEW, "empty"),
    ("wrong item", certain(GradeLevel.WRONG_ITEM), "SH-RUN42", {}, P.MANUAL_REVIEW, "held"),
    ("suspected counterfeit", certain(A), "BT-PRF01", {"flags": {"suspected_counterfeit"}}, P.MANUAL_REVIEW, "held"),
    (
        "not functional inside the vendor window",
        certain(B),
        "PH-X900",
        {"flags": {"not_functional"}, "days_since_sale": 10},
        P.RETURN_TO_VENDOR,
        "vendor_return",
    ),
    (
        "grade D inside the vendor window",
        certain(D),
        "LT-W140",
        {"days_since_sale": 89},
        P.RETURN_TO_VENDOR,
        "vendor_return",
    ),
    (
        "last day of the vendor window",
        certain(D),
        "AP-KET01",
        {"days_since_sale": 365},
        P.RETURN_TO_VENDOR,
        "vendor_return",
    ),
    ("day after the vendor window", certain(D), "TB-P110", {"days_since_sale": 61}, P.HARVEST_PARTS, None),
    ("defective, days since sale unknown", certain(D), "TB-P110", {}, P.HARVEST_PARTS, None),
    ("cosmetic C is not a vendor defect", certain(C), "LT-W140", {"days_since_sale": 5}, P.REFURBISH, None),
    (
        "no vendor agreement",
        certain(B),
        "PH-M250",
        {"flags": {"not_functional"}, "days_since_sale": 3},
        P.OPEN_BOX,
        None,
    ),
    ("opened hygiene product", certain(A), "BT-SHP01", {"flags": {"opened"}}, P.RECYCLE, "hygiene_opened"),
    ("hygiene product with a broken seal seen", certain(A, CODE_OPENED), "BT-PRF01", {}, P.RECYCLE, "hygiene_opened"),
    ("sealed hygiene product", certain(A), "BT-SHP01", {}, P.RESTOCK, None),
    (
        "opened hygiene, defective in the vendor window",
        certain(B),
        "BX-RAZ01",
        {"flags": {"opened", "not_functional"}, "days_since_sale": 5},
        P.RETURN_TO_VENDOR,
        "vendor_return",
    ),
    ("personalised SKU", certain(A), "PH-ENG1", {}, P.OPEN_BOX, "personalised"),
    ("personalised flag", certain(A), "SH-RUN42", {"flags": {"personalised"}}, P.OPEN_BOX, "personalised"),
    ("opened phone is not new", certain(A), "PH-X900", {"flags": {"opened"}}, P.OPEN_BOX, "opened_not_new"),
    ("opened garment may be restocked", certain(A), "GM-JKT-M", {"flags": {"opened"}}, P.RESTOCK, None),
    ("unlisted SKU valued from the request", certain(A), "ZZ-1", {"category": "shoe", "price": 80.0}, P.RESTOCK, None),
    ("unlisted SKU without a price", certain(A), "ZZ-1", {"category": "shoe"}, P.MANUAL_REVIEW, "unknown_value"),
    ("no SKU at all", certain(B), None, {}, P.MANUAL_REVIEW, "unknown_value"),
]


@pytest.mark.parametrize(("name", "grade", "sku", "item", "path", "rule"), RULES, ids=[r[0] for r in RULES])
def test_hard_rules(
    policy: Policy,
    catalogue: Catalogue,
    name: str,
    grade: Grade,
    sku: str | None,
    item: dict[str, Any],
    path: DispositionPath,
    rule: str | None,
) -> None:
    d = decide(policy, catalogue, grade, sku, **item)
    assert (d.path, d.rule) == (path, rule), [r.text for r in d.reasons]
    assert d.policy_version == policy.version
    assert [a.path for a in d.alternatives] == list(DispositionPath)
    chosen = next(a for a in d.alternatives if a.path is d.path)
    assert chosen.allowed and chosen.note == "chosen"
    if rule is not None:
        assert any(r.code.endswith(rule) for r in d.reasons)


@pytest.mark.parametrize(
    ("sku", "item", "code"),
    [
        ("TB-P110", {"days_since_sale": 61}, "vendor_window_closed"),
        ("TB-P110", {}, "vendor_window_unknown"),
    ],
)
def test_vendor_rule_says_why_it_did_not_fire(
    policy: Policy, catalogue: Catalogue, sku: str, item: dict[str, Any], code: str
) -> None:
    d = decide(policy, catalogue, certain(D), sku, **item)
    assert any(r.code == code for r in d.reasons)


def test_forbidden_paths_are_marked(policy: Policy, catalogue: Catalogue) -> None:
    d = decide(policy, catalogue, certain(A), "BT-SHP01", flags={"opened"})
    alts = {a.path: a for a in d.alternatives}
    for path in policy.rules.hygiene_opened.forbids:
        assert not alts[path].allowed and alts[path].note == "forbidden by hygiene_opened"
    assert alts[P.RECYCLE].allowed
    shoe = decide(policy, catalogue, certain(B), "SH-RUN42")
    assert {a.path: a for a in shoe.alternatives}[P.REFURBISH].note == "not offered for shoe"


def test_disabled_switches_do_not_fire(policy: Policy, catalogue: Catalogue) -> None:
    rules = policy.rules.model_copy(update={"recalled": policy.rules.recalled.model_copy(update={"enabled": False})})
    lenient = policy.model_copy(update={"rules": rules})
    assert decide(lenient, catalogue, certain(A), "PH-R100").path is P.RESTOCK
    assert decide(policy, catalogue, certain(A), "PH-R100").path is P.QUARANTINE


# ------------------------------------------------------------- value arithmetic


def small_policy(max_regret: float = 5.0, min_confidence: float = 0.0) -> Policy:
    """Two channels whose values are easy to work out by hand."""
    return parse_policy(
        {
            "version": "test-1",
            "labour_rate": 20.0,
            "channels": {
                "RESTOCK": {"recovery": {"A": 1.0, "B": 0.5, "C": 0.0, "D": -0.2}, "handling": 2.0},
                "LIQUIDATE": {
                    "recovery": {"A": 0.3, "B": 0.3, "C": 0.2, "D": 0.1},
                    "fee_rate": 0.1,
                    "freight_per_kg": 1.0,
                    "labour_hours": {"A": 0.1, "B": 0.1, "C": 0.1, "D": 0.1},
                },
            },
            "rules": {
                "hygiene_opened": {"forbids": ["RESTOCK", "LIQUIDATE"]},
                "personalised": {"forbids": ["RESTOCK"]},
                "opened_not_new": {"forbids": ["RESTOCK"], "categories": ["phone"]},
            },
            "review": {"max_regret": max_regret, "min_confidence": min_confidence, "cost": 4.0},
        }
    )


SKU = Sku(sku="S1", category="shoe", price_new=100.0, weight_kg=2.0)
# value by hand, price 100, weight 2, labour 20/h:
#   RESTOCK   A: 100 - 2 = 98          B: 50 - 2 = 48        C: 0 - 2 = -2       D: -20 - 2 = -22
#   LIQUIDATE A: 30 - 3 - 2 - 2 = 23   B: 23                 C: 20 - 2 - 2 - 2 = 14   D: 10 - 1 - 2 - 2 = 5
RESTOCK = {A: 98.0, B: 48.0, C: -2.0, D: -22.0}
LIQUIDATE = {A: 23.0, B: 23.0, C: 14.0, D: 5.0}


@pytest.mark.parametrize(
    ("probs", "max_regret", "path", "ev", "regret"),
    [
        ({A: 1.0}, 5.0, P.RESTOCK, 98.0, 0.0),
        ({A: 0.5, B: 0.5}, 5.0, P.RESTOCK, 73.0, 0.0),
        ({D: 1.0}, 5.0, P.LIQUIDATE, 5.0, 0.0),
        # 0.5 A + 0.5 C: RESTOCK 48 vs LIQUIDATE 18.5; knowing the grade gets 0.5*98 + 0.5*14 = 56: regret 8
        ({A: 0.5, C: 0.5}, 10.0, P.RESTOCK, 48.0, 8.0),
        ({A: 0.5, C: 0.5}, 5.0, P.MANUAL_REVIEW, 56.0 - 4.0, 8.0),
        # 0.2 A + 0.8 D: RESTOCK 2, LIQUIDATE 8.6; knowing: 0.2*98 + 0.8*5 = 23.6: regret 15
        ({A: 0.2, D: 0.8}, 20.0, P.LIQUIDATE, 8.6, 15.0),
    ],
)
def test_expected_value_and_regret_by_hand(
    probs: Mapping[GradeLevel, float], max_regret: float, path: DispositionPath, ev: float, regret: float
) -> None:
    level = max(probs, key=lambda g: probs[g])
    d = recommend(Grade(level=level, probabilities=probs), sku=SKU, item=ItemInfo(), policy=small_policy(max_regret))
    assert d.path is path
    assert d.expected_value == pytest.approx(ev)
    assert d.expected_regret == pytest.approx(regret)
    alts = {a.path: a for a in d.alternatives}
    assert alts[P.RESTOCK].expected_value == pytest.approx(sum(p * RESTOCK[g] for g, p in probs.items()))
    assert alts[P.LIQUIDATE].expected_value == pytest.approx(sum(p * LIQUIDATE[g] for g, p in probs.items()))
    assert alts[P.REFURBISH].note == "not a channel of this policy"
    if path is P.MANUAL_REVIEW:
        assert d.rule == "expected_regret"


def test_low_confidence_holds_only_when_the_path_depends_on_the_grade() -> None:
    pol = small_policy(max_regret=100.0, min_confidence=0.6)
    split = Grade(level=A, probabilities={A: 0.5, C: 0.5})
    d = recommend(split, sku=SKU, item=ItemInfo(), policy=pol)
    assert (d.path, d.rule) == (P.MANUAL_REVIEW, "low_confidence")
    # A or B: RESTOCK is best either way, so the low confidence costs nothing
    same = Grade(level=A, probabilities={A: 0.5, B: 0.5})
    assert recommend(same, sku=SKU, item=ItemInfo(), policy=pol).path is P.RESTOCK


def test_ties_go_to_the_earlier_path() -> None:
    pol = small_policy()
    twin = pol.channels[P.LIQUIDATE]
    tied = pol.model_copy(update={"channels": {P.DONATE: twin, P.LIQUIDATE: twin}})
    d = recommend(Grade.certain(B), sku=SKU, item=ItemInfo(), policy=tied)
    assert d.path is P.LIQUIDATE  # LIQUIDATE comes before DONATE in DispositionPath


def test_nothing_allowed_goes_to_review() -> None:
    hygiene = Sku(sku="H", category="bottle", price_new=10.0, hygiene=True)
    d = recommend(Grade.certain(A), sku=hygiene, item=ItemInfo(flags=frozenset({"opened"})), policy=small_policy())
    assert (d.path, d.rule) == (P.MANUAL_REVIEW, "no_allowed_path")


def test_per_category_recovery() -> None:
    pol = small_policy()
    restock = pol.channels[P.RESTOCK]
    special = restock.model_copy(
        update={"recovery_by_category": {"shoe": restock.recovery.model_copy(update={"A": 0.1})}}
    )
    pol = pol.model_copy(update={"channels": {**pol.channels, P.RESTOCK: special}})
    d = recommend(Grade.certain(A), sku=SKU, item=ItemInfo(), policy=pol)
    assert d.path is P.LIQUIDATE  # restocking shoes now nets 10 - 2 = 8 < 23


def test_a_grade_without_condition_mass_is_reviewed(policy: Policy) -> None:
    odd = Grade(level=A, probabilities={GradeLevel.WRONG_ITEM: 1.0})
    rules = policy.rules.model_copy(update={"held": policy.rules.held.model_copy(update={"enabled": False})})
    d = recommend(odd, sku=SKU, item=ItemInfo(), policy=policy.model_copy(update={"rules": rules}))
    assert (d.path, d.rule) == (P.MANUAL_REVIEW, "no_condition_grade")


def test_reasons_are_plain_words(policy: Policy, catalogue: Catalogue) -> None:
    d = decide(policy, catalogue, certain(C), "PH-X900")
    texts = " | ".join(r.text for r in d.reasons)
    assert "grade C" in texts and "PH-X900" in texts and "899.00 EUR" in texts
    assert "best expected net recovery: REFURBISH" in texts and "expected regret" in texts
    assert d.to_dict()["policy_version"] == policy.version


# ------------------------------------------------------------------ policy file


def _shipped() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(POLICY_FILE.read_text())
    return data


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: p["channels"].update(QUARANTINE={"recovery": {}}), "holds, not channels"),
        (lambda p: p["rules"]["hygiene_opened"].update(forbids=["MANUAL_REVIEW"]), "safety paths"),
        (lambda p: p["rules"]["personalised"].update(forbids=[]), "at least 1 item"),
        (lambda p: p["rules"]["opened_not_new"].update(categories=["spaceship"]), "unknown categories"),
        (lambda p: p["rules"]["vendor_return"].update(defective_grades=["EMPTY"]), "condition grades"),
        (lambda p: p["rules"]["vendor_return"].update(defective_flags=["sticky"]), "unknown flags"),
        (lambda p: p["channels"]["RESTOCK"].update(handling=-1), "greater than or equal to 0"),
        (lambda p: p["channels"]["REPAIR"].update(parts={"A": -0.1}), "must not be negative"),
        (lambda p: p["channels"]["REPAIR"].update(categories=["spaceship"]), "unknown category"),
        (lambda p: p["channels"]["RESTOCK"].update(fee_rate=1.5), "less than or equal to 1"),
        (lambda p: p["channels"].update(TELEPORT={"recovery": {}}), "channels.TELEPORT"),
        (lambda p: p["hold_costs"].update(RESTOCK=3), "QUARANTINE and HAZARDOUS_DISPOSAL only"),
        (lambda p: p.update(colour="red"), "Extra inputs are not permitted"),
        (lambda p: p.pop("version"), "version"),
        (lambda p: p["review"].pop("max_regret"), "review.max_regret"),
    ],
)
def test_policy_errors_name_the_field(change: Callable[[dict[str, Any]], None], message: str) -> None:
    data = _shipped()
    change(data)
    with pytest.raises(ValueError, match=message):
        parse_policy(data)


def test_policy_model_is_strict() -> None:
    with pytest.raises(ValidationError):
        Policy.model_validate({**_shipped(), "unknown": 1})


def test_shipped_policy_documents_regret_and_covers_every_channel(policy: Policy) -> None:
    text = POLICY_FILE.read_text()
    assert "Expected regret" in text and "version" in text
    assert set(policy.channels) == {
        P.RESTOCK, P.OPEN_BOX, P.REFURBISH, P.REPAIR, P.RETURN_TO_VENDOR,
        P.LIQUIDATE, P.DONATE, P.HARVEST_PARTS, P.RECYCLE,
    }  # fmt: skip
    assert DispositionConfig().policy_file is None
