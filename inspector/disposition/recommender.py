"""Grade + SKU + item -> the disposition: hard rules first, then the best expected net recovery.

Pure logic: the policy, catalogue entry and grade come in, a :class:`Disposition` goes out.
It is total (every valid input gets an answer, MANUAL_REVIEW when nothing else fits)
and deterministic (ties go to the earlier path in ``DispositionPath`` order).

Order of the hard rules; the first that picks a path decides:

1. battery_hazard: a swollen or leaking battery -> HAZARDOUS_DISPOSAL
2. recalled: a recalled SKU -> QUARANTINE
3. unreadable: the pictures cannot be graded -> MANUAL_REVIEW (retake)
4. empty: no item on the bench -> MANUAL_REVIEW
5. held: wrong item or suspected counterfeit -> MANUAL_REVIEW
6. vendor_return: a defective item inside its vendor return window -> RETURN_TO_VENDOR

Rules that only take paths away (hygiene_opened, personalised, opened_not_new) apply
to every decision; a path they forbid is never chosen.

Then, for every allowed channel p, with P(g) the grade probabilities over A..D:

    EV(p)   = sum_g P(g) * value(p, g)                      (value: see policy.py)
    best    = the allowed channel with the highest EV
    regret  = sum_g P(g) * max_p value(p, g)  -  EV(best)

Regret is what is lost on average by deciding before knowing the true grade (the
expected value of perfect grade information). Above ``review.max_regret``, or with
a grade confidence below ``review.min_confidence`` when the best path depends on the
grade, a person looks first: MANUAL_REVIEW. So does unexplained damage the grade marks
for review (an anomalous region larger than the rubric's ``review_above_share``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from inspector.disposition.catalogue import sku_from_item
from inspector.disposition.policy import VALUE_PATHS, Channel, Policy
from inspector.grading.base import CODE_OPENED, CODE_UNEXPLAINED
from inspector.items import ItemInfo, Sku
from inspector.taxonomy import FAMILIES_ONLY, Taxonomy
from inspector.types import (
    CONDITION_GRADES,
    Alternative,
    Disposition,
    DispositionPath,
    Grade,
    GradeLevel,
    Reason,
)

BATTERY_FLAGS = frozenset({"battery_swollen", "battery_leaking"})
_P = DispositionPath


@dataclass(frozen=True, slots=True)
class _Forced:
    path: DispositionPath
    rule: str
    text: str
    params: Mapping[str, object] = field(default_factory=dict)


def _money(x: float, policy: Policy) -> str:
    return f"{x:,.2f} {policy.currency}"


def condition_distribution(grade: Grade) -> dict[GradeLevel, float] | None:
    """P(A..D), renormalised over the condition grades; None when the grade gives them no mass."""
    mass = {g: float(grade.probabilities.get(g, 0.0)) for g in CONDITION_GRADES}
    total = sum(mass.values())
    if total <= 1e-12:
        return None
    return {g: p / total for g, p in mass.items()}


def channel_values(
    policy: Policy, sku: Sku, table: str | None = None
) -> dict[DispositionPath, dict[GradeLevel, float]]:
    """value(path, true grade) of every channel of the policy for this SKU (``table``: its value table)."""
    return {
        path: {g: channel.value(g, sku, policy.labour_rate, table) for g in CONDITION_GRADES}
        for path, channel in policy.channels.items()
    }


def _ev(values: Mapping[GradeLevel, float], probs: Mapping[GradeLevel, float]) -> float:
    return sum(probs[g] * values[g] for g in CONDITION_GRADES)


def recommend(
    grade: Grade, *, sku: Sku | None, item: ItemInfo, policy: Policy, taxonomy: Taxonomy | None = None
) -> Disposition:
    """The recommended path, every alternative's expected value, the rule that fired and the reasons.

    ``taxonomy`` maps the retailer's category to the policy's value table (default: the eight families only;
    anything else is valued by the generic table).
    """
    rules = policy.rules
    flags = item.flags
    eff = sku if sku is not None else sku_from_item(item)
    category = eff.category if eff is not None else item.category
    mapping = (taxonomy or FAMILIES_ONLY).resolve(category)
    table = mapping.value_table if category is not None else None  # what the policy's categories name
    opened_seen = any(r.code == CODE_OPENED for r in grade.reasons)
    opened = "opened" in flags or opened_seen
    personalised = "personalised" in flags or (eff is not None and eff.personalised)

    reasons: list[Reason] = [_grade_reason(grade, eff, category, policy)]
    if category is not None and not mapping.plain:
        reasons.append(Reason(text=mapping.describe("table"), code="value_table", params=mapping.to_dict()))

    # Rules that take paths away.
    forbidden: dict[DispositionPath, str] = {}
    fired: list[str] = []
    for name, rule, condition in (
        ("hygiene_opened", rules.hygiene_opened, eff is not None and eff.hygiene and opened),
        ("personalised", rules.personalised, personalised),
        ("opened_not_new", rules.opened_not_new, opened),
    ):
        if rule.enabled and condition and rule.applies_to(table):
            fired.append(name)
            for path in rule.forbids:
                forbidden.setdefault(path, name)
            what = rule.description or name.replace("_", " ")
            paths = ", ".join(p.value for p in rule.forbids)
            params = {"rule": name, "forbids": [p.value for p in rule.forbids]}
            reasons.append(Reason(text=f"rule {name}: {what} (forbids {paths})", code=f"rule:{name}", params=params))
    if opened_seen and "opened" not in flags:
        reasons.append(Reason(text="treated as opened: the grade reports a broken seal", code="opened_seen"))

    probs = condition_distribution(grade)
    values = channel_values(policy, eff, table) if eff is not None else None
    evs: dict[DispositionPath, float] = {}
    if values is not None and probs is not None:
        evs = {p: _ev(v, probs) for p, v in values.items()}

    forced = _forced_path(grade, eff, item, policy, forbidden, reasons)
    allowed = _allowed_channels(policy, table, forbidden)
    if forced is not None:
        reasons.append(Reason(text=forced.text, code=f"rule:{forced.rule}", params=forced.params))
        ev = evs.get(forced.path, -policy.hold_cost(forced.path) if forced.path not in VALUE_PATHS else 0.0)
        return Disposition(
            path=forced.path,
            expected_value=ev,
            alternatives=_alternatives(policy, table, evs, values, probs, forbidden, allowed, forced.path),
            rule=forced.rule,
            reasons=tuple(reasons),
            policy_version=policy.version,
            expected_regret=0.0,
        )

    def review(
        rule: str, text: str, ev: float, regret: float = 0.0, params: Mapping[str, object] | None = None
    ) -> Disposition:
        reasons.append(Reason(text=text, code=f"review:{rule}", params=params or {}))
        return Disposition(
            path=_P.MANUAL_REVIEW,
            expected_value=ev,
            alternatives=_alternatives(policy, table, evs, values, probs, forbidden, allowed, _P.MANUAL_REVIEW),
            rule=rule,
            reasons=tuple(reasons),
            policy_version=policy.version,
            expected_regret=regret,
        )

    cost = policy.review.cost
    if eff is None:
        what = f"SKU {item.sku!r} is not in the catalogue" if item.sku else "no SKU given"
        text = f"{what}, and no category and price to value the item: a person decides"
        return review("unknown_value", text, -cost, params={"sku": item.sku})
    if probs is None or values is None:
        text = f"grade {grade.level.value} says nothing about condition"
        return review("no_condition_grade", text, -cost, params={"grade": grade.level.value})
    if not allowed:
        text = f"no channel is allowed for a {category} under these rules"
        return review("no_allowed_path", text, -cost, params={"category": category})

    best = max(allowed, key=lambda p: (evs[p], -list(_P).index(p)))
    informed = sum(probs[g] * max(values[p][g] for p in allowed) for g in CONDITION_GRADES)
    regret = max(0.0, informed - evs[best])
    ranked = sorted(allowed, key=lambda p: (-evs[p], list(_P).index(p)))
    runner = ranked[1] if len(ranked) > 1 else None
    best_text = f"best expected net recovery: {best.value} {_money(evs[best], policy)}"
    if runner is not None:
        best_text += f" (next {runner.value} {_money(evs[runner], policy)})"
    best_params = {
        "path": best.value,
        "value": evs[best],
        "next": runner.value if runner is not None else None,
        "next_value": evs[runner] if runner is not None else None,
        "currency": policy.currency,
    }
    reasons.append(Reason(text=best_text, code="best_value", params=best_params))
    regret_params = {"regret": regret, "limit": policy.review.max_regret, "currency": policy.currency}
    regret_text = f"expected regret {_money(regret, policy)}: the value lost on average if the grade is wrong"

    unexplained = [r for r in grade.reasons if r.code == CODE_UNEXPLAINED and r.params.get("review")]
    if unexplained:
        largest = max(float(r.params.get("area", 0.0)) for r in unexplained)
        return review(
            "unexplained_damage",
            f"unexplained damage over {100 * largest:.1f}% of the item: a person looks at it first",
            informed - cost,
            regret,
            {"area": largest, "regions": len(unexplained)},
        )
    if regret > policy.review.max_regret:
        return review(
            "expected_regret",
            f"{regret_text} exceeds {_money(policy.review.max_regret, policy)}: a person confirms the grade first",
            informed - cost,
            regret,
            regret_params,
        )
    if grade.confidence < policy.review.min_confidence and regret > 1e-9:
        return review(
            "low_confidence",
            f"grade confidence {grade.confidence:.2f} is below {policy.review.min_confidence:.2f} and the path "
            "depends on the grade: a person confirms it first",
            informed - cost,
            regret,
            {"confidence": grade.confidence, "limit": policy.review.min_confidence},
        )
    within = f"{regret_text}, within {_money(policy.review.max_regret, policy)}"
    reasons.append(Reason(text=within, code="regret", params=regret_params))
    return Disposition(
        path=best,
        expected_value=evs[best],
        alternatives=_alternatives(policy, table, evs, values, probs, forbidden, allowed, best),
        rule=fired[0] if fired else None,
        reasons=tuple(reasons),
        policy_version=policy.version,
        expected_regret=regret,
    )


def _grade_reason(grade: Grade, sku: Sku | None, category: str | None, policy: Policy) -> Reason:
    what = f"grade {grade.level.value} (confidence {grade.confidence:.2f})"
    params: dict[str, object] = {"grade": grade.level.value, "confidence": grade.confidence, "category": category}
    if sku is not None:
        params.update(sku=sku.sku, category=sku.category, price=sku.price_new, currency=policy.currency)
        return Reason(
            text=f"{what} of {sku.sku}, a {sku.category} priced {_money(sku.price_new, policy)} new",
            code="input",
            params=params,
        )
    return Reason(text=f"{what} of an unknown SKU{f' ({category})' if category else ''}", code="input", params=params)


def _forced_path(
    grade: Grade,
    sku: Sku | None,
    item: ItemInfo,
    policy: Policy,
    forbidden: Mapping[DispositionPath, str],
    reasons: list[Reason],
) -> _Forced | None:
    rules = policy.rules
    flags = item.flags
    battery = sorted(flags & BATTERY_FLAGS)
    if rules.battery_hazard.enabled and battery:
        what = " and ".join(f.replace("battery_", "") for f in battery)
        text = f"rule battery_hazard: the battery is {what}"
        return _Forced(_P.HAZARDOUS_DISPOSAL, "battery_hazard", text, {"flags": battery})
    if rules.recalled.enabled and sku is not None and sku.recalled:
        text = f"rule recalled: {sku.sku} is under recall, quarantine it"
        return _Forced(_P.QUARANTINE, "recalled", text, {"sku": sku.sku})
    if grade.level is GradeLevel.UNREADABLE:
        return _Forced(_P.MANUAL_REVIEW, "unreadable", "the pictures cannot be graded: retake them or grade by hand")
    if grade.level is GradeLevel.EMPTY:
        return _Forced(_P.MANUAL_REVIEW, "empty", "no item on the bench: an empty return is held for review")
    if rules.held.enabled and (grade.level is GradeLevel.WRONG_ITEM or "suspected_counterfeit" in flags):
        why = "the item is not the SKU returned" if grade.level is GradeLevel.WRONG_ITEM else "suspected counterfeit"
        held = {"wrong_item": grade.level is GradeLevel.WRONG_ITEM}
        return _Forced(_P.MANUAL_REVIEW, "held", f"rule held: {why}, hold it for review", held)
    vendor = rules.vendor_return
    if vendor.enabled and sku is not None and sku.vendor_return_days > 0:
        defective_flags = sorted(flags & set(vendor.defective_flags))
        defective = grade.level in vendor.defective_grades or bool(defective_flags)
        if defective:
            bad_grade = [f"grade {grade.level.value}"] if grade.level in vendor.defective_grades else []
            why = ", ".join([*(f.replace("_", " ") for f in defective_flags), *bad_grade])
            days = item.days_since_sale
            params: dict[str, object] = {
                "flags": defective_flags,
                "grade": grade.level.value if bad_grade else None,
                "days": days,
                "window": sku.vendor_return_days,
            }
            if days is None:
                reasons.append(
                    Reason(
                        text=f"defective ({why}) but the days since sale are unknown: vendor return not checked",
                        code="vendor_window_unknown",
                        params=params,
                    )
                )
            elif days > sku.vendor_return_days:
                reasons.append(
                    Reason(
                        text=f"defective ({why}) but {days} days since sale is past the "
                        f"{sku.vendor_return_days}-day vendor window",
                        code="vendor_window_closed",
                        params=params,
                    )
                )
            elif _P.RETURN_TO_VENDOR in forbidden:
                reasons.append(
                    Reason(
                        text=f"vendor return is forbidden by {forbidden[_P.RETURN_TO_VENDOR]}",
                        code="vendor_forbidden",
                        params={"rule": forbidden[_P.RETURN_TO_VENDOR]},
                    )
                )
            else:
                return _Forced(
                    _P.RETURN_TO_VENDOR,
                    "vendor_return",
                    f"rule vendor_return: defective ({why}) and {days} of {sku.vendor_return_days} vendor-window "
                    "days used: back to the vendor",
                    params,
                )
    return None


def _allowed_channels(
    policy: Policy, category: str | None, forbidden: Mapping[DispositionPath, str]
) -> list[DispositionPath]:
    out = []
    for path, channel in policy.channels.items():
        if path is _P.RETURN_TO_VENDOR or path in forbidden:
            continue
        if category is not None and not channel.takes(category):
            continue
        out.append(path)
    return sorted(out, key=lambda p: list(_P).index(p))


def _note(
    path: DispositionPath,
    channel: Channel | None,
    category: str | None,
    forbidden: Mapping[DispositionPath, str],
    chosen: DispositionPath,
) -> str:
    if path is chosen:
        return "chosen"
    if path in forbidden:
        return f"forbidden by {forbidden[path]}"
    if path is _P.RETURN_TO_VENDOR:
        return "only for a defective item inside its vendor window"
    if path is _P.QUARANTINE:
        return "only for a recalled SKU"
    if path is _P.HAZARDOUS_DISPOSAL:
        return "only for a swollen or leaking battery"
    if path is _P.MANUAL_REVIEW:
        return "a person decides after inspecting the item"
    if channel is None:
        return "not a channel of this policy"
    if category is not None and not channel.takes(category):
        return f"not offered for {category}"
    return ""


def _alternatives(
    policy: Policy,
    category: str | None,
    evs: Mapping[DispositionPath, float],
    values: Mapping[DispositionPath, Mapping[GradeLevel, float]] | None,
    probs: Mapping[GradeLevel, float] | None,
    forbidden: Mapping[DispositionPath, str],
    allowed: list[DispositionPath],
    chosen: DispositionPath,
) -> tuple[Alternative, ...]:
    out: list[Alternative] = []
    informed: float | None = None
    if values is not None and probs is not None and allowed:
        informed = sum(probs[g] * max(values[p][g] for p in allowed) for g in CONDITION_GRADES)
    for path in _P:
        channel = policy.channels.get(path)
        if path in VALUE_PATHS:
            ev = evs.get(path, 0.0)
            ok = path in allowed or path is chosen
        elif path is _P.MANUAL_REVIEW:
            ev = (informed if informed is not None else 0.0) - policy.review.cost
            ok = True
        else:
            ev = -policy.hold_cost(path)
            ok = path is chosen
        note = _note(path, channel, category, forbidden, chosen)
        if channel is not None and path not in evs:
            note = "; ".join(n for n in (note, "value unknown") if n)
        out.append(Alternative(path=path, expected_value=ev, allowed=ok, note=note))
    return tuple(out)
