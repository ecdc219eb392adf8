"""``inspector recommend``: a grade and a SKU in, the disposition out (table or JSON)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from inspector.items import ITEM_FLAGS
from inspector.types import Grade, GradeLevel


def parse_grade(level: str, probabilities: str | None) -> Grade:
    """``B`` or ``B`` with ``A=0.2,B=0.7,C=0.1`` -> a :class:`Grade`."""
    try:
        lvl = GradeLevel(level.strip().upper())
    except ValueError:
        raise ValueError(f"unknown grade {level!r}; expected one of {', '.join(g.value for g in GradeLevel)}") from None
    if not probabilities:
        return Grade.certain(lvl, rubric_version="cli")
    probs: dict[GradeLevel, float] = {}
    for part in probabilities.split(","):
        key, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"--probabilities: expected GRADE=P pairs separated by commas, got {part!r}")
        try:
            g = GradeLevel(key.strip().upper())
            p = float(value)
        except ValueError:
            raise ValueError(f"--probabilities: cannot read {part!r}") from None
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"--probabilities: {g.value}={p} is not in [0, 1]")
        probs[g] = probs.get(g, 0.0) + p
    total = sum(probs.values())
    if abs(total - 1.0) > 0.01:
        raise ValueError(f"--probabilities must sum to 1, got {total:.3f}")
    return Grade(level=lvl, probabilities={g: p / total for g, p in probs.items()}, rubric_version="cli")


def recommend_command(
    grade: Annotated[str, typer.Option("--grade", help="A, B, C, D, WRONG_ITEM, EMPTY or UNREADABLE")],
    sku: Annotated[str | None, typer.Option("--sku", help="SKU id, looked up in the catalogue")] = None,
    probabilities: Annotated[
        str | None, typer.Option("--probabilities", help="grade probabilities, e.g. A=0.2,B=0.7,C=0.1")
    ] = None,
    category: Annotated[
        str | None, typer.Option("--category", help="for a SKU not in the catalogue: any category (GET /v1/taxonomy)")
    ] = None,
    price: Annotated[float | None, typer.Option("--price", min=0.0, help="price paid, for an unlisted SKU")] = None,
    flag: Annotated[
        list[str] | None, typer.Option("--flag", help=f"item flag, repeatable: {', '.join(sorted(ITEM_FLAGS))}")
    ] = None,
    days_since_sale: Annotated[int | None, typer.Option("--days-since-sale", min=0)] = None,
    catalogue: Annotated[Path | None, typer.Option("--catalogue", help="SKU catalogue (.csv or .json)")] = None,
    policy: Annotated[Path | None, typer.Option("--policy", help="policy YAML (default: the shipped policy)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
) -> None:
    """Recommend a disposition for a graded item: hard rules first, then the best expected net recovery."""
    from inspector.config import Settings
    from inspector.disposition.loaders import load_catalogue, load_policy
    from inspector.disposition.recommender import recommend
    from inspector.items import ItemInfo
    from inspector.taxonomy import load_taxonomy

    settings = Settings().disposition
    g = parse_grade(grade, probabilities)
    cat = load_catalogue(catalogue or settings.catalogue_file)
    pol = load_policy(policy or settings.policy_file)
    item = ItemInfo(
        sku=sku, category=category, price=price, days_since_sale=days_since_sale, flags=frozenset(flag or ())
    )
    if sku is not None and sku not in cat and category is None:
        raise ValueError(f"unknown SKU {sku!r} (not in {cat.source}): give --category and --price")
    entry = cat.resolve(sku, item)
    taxonomy = load_taxonomy(settings.taxonomy_file)
    decision = recommend(g, sku=entry, item=item, policy=pol, taxonomy=taxonomy)
    if as_json:
        out = {
            "sku": asdict(entry) if entry is not None else None,
            "item": {**asdict(item), "flags": sorted(item.flags)},
            "grade": g.to_dict(),
            "disposition": decision.to_dict(),
        }
        typer.echo(json.dumps(out, indent=2))
        return
    from rich.table import Table

    from inspector.cli.output import console as make_console

    console = make_console()
    console.print(
        f"[bold]{decision.path.value}[/bold]  expected value {decision.expected_value:,.2f} {pol.currency}, "
        f"expected regret {decision.expected_regret:,.2f} {pol.currency}"
        + (f", rule {decision.rule}" if decision.rule else "")
        + f"  (policy {decision.policy_version})"
    )
    for r in decision.reasons:
        console.print(f"  - {r.text}")
    table = Table(title="alternatives")
    for col in ("path", f"expected value ({pol.currency})", "allowed", "note"):
        table.add_column(col)
    for a in decision.alternatives:
        table.add_row(a.path.value, f"{a.expected_value:,.2f}", "yes" if a.allowed else "no", a.note)
    console.print(table)
