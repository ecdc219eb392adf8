"""Properties of the recommender: total, deterministic, never a forbidden path, best value when free to choose."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inspector.disposition import Policy, load_policy, recommend
from inspector.disposition.policy import VALUE_PATHS
from inspector.grading.base import CODE_OPENED
from inspector.items import FAMILIES, ITEM_FLAGS, ItemInfo, Sku
from inspector.types import CONDITION_GRADES, DispositionPath, Grade, GradeLevel, Reason

POLICY: Policy = load_policy()
P = DispositionPath
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
RESALE = frozenset(POLICY.rules.hygiene_opened.forbids)


@st.composite
def grades(draw: st.DrawFn) -> Grade:
    levels = draw(st.lists(st.sampled_from(list(GradeLevel)), min_size=1, max_size=4, unique=True))
    weights = [draw(st.floats(0.01, 1.0)) for _ in levels]
    total = sum(weights)
    probs = {lv: w / total for lv, w in zip(levels, weights, strict=True)}
    level = draw(st.sampled_from(levels))
    opened = draw(st.booleans())
    reasons = [Reason(text="broken seal", code=CODE_OPENED)] if opened else []
    return Grade(level=level, probabilities=probs, reasons=tuple(reasons))


skus = st.one_of(
    st.none(),
    st.builds(
        Sku,
        sku=st.just("S"),
        category=st.sampled_from(FAMILIES),
        price_new=st.floats(0.0, 3000.0),
        hygiene=st.booleans(),
        has_battery=st.booleans(),
        recalled=st.booleans(),
        personalised=st.booleans(),
        vendor_return_days=st.integers(0, 120),
        weight_kg=st.floats(0.0, 30.0),
    ),
)
items = st.builds(
    ItemInfo,
    sku=st.sampled_from([None, "S"]),
    category=st.one_of(st.none(), st.sampled_from(FAMILIES)),
    price=st.one_of(st.none(), st.floats(0.0, 3000.0)),
    days_since_sale=st.one_of(st.none(), st.integers(0, 400)),
    flags=st.frozensets(st.sampled_from(sorted(ITEM_FLAGS))),
)
policies = st.builds(
    lambda regret, conf: POLICY.model_copy(
        update={"review": POLICY.review.model_copy(update={"max_regret": regret, "min_confidence": conf})}
    ),
    st.floats(0.0, 500.0),
    st.floats(0.0, 1.0),
)


@SETTINGS
@given(grade=grades(), sku=skus, item=items, policy=policies)
def test_recommendation_is_total_and_deterministic(
    grade: Grade, sku: Sku | None, item: ItemInfo, policy: Policy
) -> None:
    d = recommend(grade, sku=sku, item=item, policy=policy)
    assert d.path in DispositionPath
    assert d.policy_version == policy.version
    assert [a.path for a in d.alternatives] == list(DispositionPath)
    assert next(a for a in d.alternatives if a.path is d.path).allowed
    assert d.expected_regret >= 0.0
    assert d.reasons
    assert recommend(grade, sku=sku, item=item, policy=policy).to_dict() == d.to_dict()


@SETTINGS
@given(grade=grades(), sku=skus, item=items)
def test_a_forbidden_path_is_never_chosen(grade: Grade, sku: Sku | None, item: ItemInfo) -> None:
    d = recommend(grade, sku=sku, item=item, policy=POLICY)
    known = sku or (
        Sku(sku="x", category=item.category, price_new=item.price) if item.category and item.price is not None else None
    )
    category = known.category if known else item.category
    opened = "opened" in item.flags or any(r.code == CODE_OPENED for r in grade.reasons)
    forbidden: set[DispositionPath] = set()
    if known is not None and known.hygiene and opened:
        forbidden |= RESALE
    if "personalised" in item.flags or (known is not None and known.personalised):
        forbidden.add(P.RESTOCK)
    if opened and category in {"phone", "tablet", "laptop", "appliance"}:
        forbidden.add(P.RESTOCK)
    assert d.path not in forbidden, (d.path, d.rule, forbidden)
    if d.path in VALUE_PATHS and d.path is not P.RETURN_TO_VENDOR and category is not None:
        assert POLICY.channels[d.path].takes(category)
    battery = bool(item.flags & {"battery_swollen", "battery_leaking"})
    assert (d.path is P.HAZARDOUS_DISPOSAL) == battery
    assert (d.path is P.QUARANTINE) == (not battery and known is not None and known.recalled)
    if d.path is P.RETURN_TO_VENDOR:
        assert known is not None and item.days_since_sale is not None
        assert item.days_since_sale <= known.vendor_return_days


@SETTINGS
@given(grade=grades(), sku=skus, item=items, policy=policies)
def test_free_choices_take_the_best_expected_value(
    grade: Grade, sku: Sku | None, item: ItemInfo, policy: Policy
) -> None:
    d = recommend(grade, sku=sku, item=item, policy=policy)
    if d.path not in VALUE_PATHS or d.path is P.RETURN_TO_VENDOR:
        return
    assert grade.level in CONDITION_GRADES
    allowed = [a for a in d.alternatives if a.allowed and a.path in VALUE_PATHS and a.path is not P.RETURN_TO_VENDOR]
    assert all(d.expected_value >= a.expected_value - 1e-9 for a in allowed)
    assert d.expected_regret <= policy.review.max_regret + 1e-9


NEVER_REVIEW = POLICY.model_copy(
    update={"review": POLICY.review.model_copy(update={"max_regret": 1e12, "min_confidence": 0.0})}
)


@SETTINGS
@given(grade=grades(), sku=skus, item=items)
def test_without_review_a_condition_grade_always_gets_the_best_channel(
    grade: Grade, sku: Sku | None, item: ItemInfo
) -> None:
    d = recommend(grade, sku=sku, item=item, policy=NEVER_REVIEW)
    if d.rule in {"battery_hazard", "recalled", "unreadable", "empty", "held", "vendor_return", "unknown_value"}:
        return
    if not any(grade.probabilities.get(g, 0.0) > 0 for g in CONDITION_GRADES):
        assert d.path is P.MANUAL_REVIEW
        return
    allowed = [a for a in d.alternatives if a.allowed and a.path in VALUE_PATHS and a.path is not P.RETURN_TO_VENDOR]
    assert d.path in {a.path for a in allowed}
    assert d.expected_value == max(a.expected_value for a in allowed)
