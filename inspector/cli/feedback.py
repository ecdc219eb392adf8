"""``inspector feedback export|sample|drift`` and ``inspector replay``: the bench's record, put to learning.

Imports stay light here; the store, the formats and the model load inside the commands.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from inspector.config import Settings
    from inspector.store import Store

feedback_app = typer.Typer(
    help="Label candidates from the bench: export them for labelling, sample them, watch for drift.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

SinceOpt = Annotated[
    str | None, typer.Option("--since", help="a date (2026-12-01), a time (ISO 8601, UTC) or an age (7d, 12h)")
]
DataDirOpt = Annotated[Path | None, typer.Option("--data-dir", help="data folder: database, images (default data/)")]
DbOpt = Annotated[str | None, typer.Option("--db", help="database URL (default SQLite under the data folder)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]

_AGE = re.compile(r"^(\d+)\s*([dhm])$")


def parse_since(text: str | None, now: datetime | None = None) -> datetime | None:
    """``7d``, ``12h``, ``30m``, a date or an ISO time (naive means UTC) -> an aware UTC datetime."""
    if text is None:
        return None
    now = now or datetime.now(UTC)
    m = _AGE.match(text.strip().lower())
    if m:
        n, unit = int(m.group(1)), m.group(2)
        return now - {"d": timedelta(days=n), "h": timedelta(hours=n), "m": timedelta(minutes=n)}[unit]
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"--since must be a date, an ISO time or an age like 7d, got {text!r}") from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _settings(data_dir: Path | None, db: str | None) -> Settings:
    from inspector.config import Settings

    settings = Settings()
    if data_dir is not None:
        settings.storage.data_dir = data_dir
    if db is not None:
        settings.storage.db_url = db
    return settings


def _open(settings: Settings) -> Store:
    from inspector.store import Store

    if settings.storage.db_url is None and not (settings.storage.data_dir / "inspector.db").is_file():
        raise ValueError(f"no station database in {settings.storage.data_dir} (give --data-dir or --db)")
    return Store(settings.storage).open()


def _load(settings: Settings, since: datetime | None, *, views: bool = False) -> tuple[Store, list[dict[str, Any]]]:
    """The stored inspections since ``since``; with ``views``, only those whose pictures retention has kept."""
    from inspector.feedback.source import load_inspections

    store = _open(settings)
    with store.db.read() as s:
        found = load_inspections(s, since=since)
    if not views:
        return store, found
    kept = [i for i in found if not i.get("images_pruned_at")]
    if len(kept) < len(found):
        typer.echo(
            f"left out {len(found) - len(kept)} inspections whose views were pruned (retention.image_days)", err=True
        )
    return store, kept


def _threshold(settings: Settings, inspections: list[dict[str, Any]]) -> float:
    """The operating confidence the detections were served at: the version's, else the configuration's."""
    from inspector import registry

    versions = [i.get("versions", {}).get("model") for i in inspections]
    newest = next((v for v in reversed(versions) if v), None)
    hints = registry.serving_hints(newest, settings.registry.root) if newest else {}
    return float(hints.get("confidence", settings.detector.confidence))


@feedback_app.command("export")
def export_cmd(
    out: Annotated[Path, typer.Option("--out", help="new folder for the dataset")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="labelstudio, cvat, yolo or coco")] = "labelstudio",
    since: SinceOpt = None,
    sampled: Annotated[
        bool, typer.Option("--sampled/--no-sampled", help="add the active-learning sample to the flagged views")
    ] = False,
    data_dir: DataDirOpt = None,
    db: DbOpt = None,
) -> None:
    """Every overridden or flagged view since DATE, with the model's boxes as pre-annotations."""
    from inspector.feedback.candidates import label_candidates, merge
    from inspector.feedback.export import EXPORT_FORMATS, export_candidates
    from inspector.feedback.sampling import sample

    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(EXPORT_FORMATS)}")
    settings = _settings(data_dir, db)
    store, inspections = _load(settings, parse_since(since), views=True)
    try:
        chosen = label_candidates(inspections)
        if sampled:
            extra = sample(inspections, settings.feedback.sampling, threshold=_threshold(settings, inspections))
            chosen = merge(chosen, extra)
        if not chosen:
            raise ValueError("nothing to export: no override, flag or sampled view in that window")
        doc = export_candidates(store.images, inspections, chosen, fmt, out)
    finally:
        store.close()
    reasons: dict[str, int] = {}
    for row in doc["views"]:
        for r in row["reasons"]:
            reasons[r] = reasons.get(r, 0) + 1
    typer.echo(
        f"exported {len(doc['views'])} views from {len({r['inspection_id'] for r in doc['views']})} inspections "
        f"to {out} ({fmt}); reasons: " + ", ".join(f"{k} {v}" for k, v in sorted(reasons.items()))
    )
    typer.echo("correct the labels, then: inspector data import " + f"{out} --format {fmt} --out DATASET")


@feedback_app.command("sample")
def sample_cmd(
    since: SinceOpt = "1d",
    out: Annotated[Path | None, typer.Option("--out", help="also export the sample into this new folder")] = None,
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="with --out: labelstudio, cvat, yolo or coco")
    ] = "labelstudio",
    seed: Annotated[int | None, typer.Option(help="random seed (default: the configuration's)")] = None,
    data_dir: DataDirOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Active-learning sample: disagreements, rare classes, near the threshold, and a few unremarkable ones."""
    from inspector.feedback.export import export_candidates
    from inspector.feedback.sampling import sample

    settings = _settings(data_dir, db)
    store, inspections = _load(settings, parse_since(since), views=out is not None)
    try:
        threshold = _threshold(settings, inspections)
        picked = sample(inspections, settings.feedback.sampling, threshold=threshold, seed=seed)
        if out is not None and picked:
            export_candidates(store.images, inspections, picked, fmt, out)
    finally:
        store.close()
    rows = [c.as_dict() for c in picked]
    if as_json:
        typer.echo(json.dumps({"threshold": threshold, "views": rows}, indent=2))
        return
    counts: dict[str, int] = {}
    for c in picked:
        for r in c.reasons:
            counts[r] = counts.get(r, 0) + 1
    typer.echo(
        f"{len(rows)} views sampled from {len(inspections)} inspections (threshold {threshold:.2f}): "
        + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none")
    )
    for row in rows:
        typer.echo(f"  {row['day']} {row['inspection_id']} view {row['view']}: {', '.join(row['reasons'])}")
    if out is not None and picked:
        typer.echo(f"exported to {out} ({fmt})")


@feedback_app.command("drift")
def drift_cmd(
    day: Annotated[str | None, typer.Option(help="the day to watch (default: the newest with inspections)")] = None,
    data_dir: DataDirOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The day's grade and disposition mix, mean confidence and override rate per class, against the days before."""
    from datetime import date

    from inspector.feedback import drift

    settings = _settings(data_dir, db)
    cfg = settings.feedback.drift
    watched = date.fromisoformat(day) if day else None
    since = None
    if watched is not None:
        since = datetime(watched.year, watched.month, watched.day, tzinfo=UTC) - timedelta(days=cfg.baseline_days)
    store, inspections = _load(settings, since)
    store.close()
    rep = drift.report(drift.daily(inspections), cfg, watched)
    if as_json:
        typer.echo(json.dumps(rep, indent=2))
    else:
        typer.echo(drift_text(rep))
    if rep["warnings"]:
        raise typer.Exit(1)


def drift_text(rep: dict[str, Any]) -> str:
    s = rep.get("summary")
    if not s:
        return "no inspections to summarise"
    lines = [f"{rep['day']}: {s['inspections']} inspections; baseline {len(rep['baseline_days'])} days"]
    lines.append("  grades: " + ", ".join(f"{k} {v:.0%}" for k, v in s["grade_share"].items()))
    lines.append("  dispositions: " + ", ".join(f"{k} {v:.0%}" for k, v in s["disposition_share"].items()))
    lines.append("  mean confidence: " + ", ".join(f"{k} {v:.2f}" for k, v in s["mean_confidence"].items()))
    lines.append("  override rate: " + (", ".join(f"{k} {v:.0%}" for k, v in s["override_rate"].items()) or "-"))
    for w in rep["warnings"]:
        lines.append(f"WARNING {w['text']}")
    if not rep["warnings"]:
        lines.append("no drift beyond the thresholds")
    return "\n".join(lines)


def replay_cmd(
    since: SinceOpt = "7d",
    model: Annotated[
        str | None, typer.Option("--model", help="registry version or .pt to replay through (default: the serving one)")
    ] = None,
    policy: Annotated[
        Path | None, typer.Option("--policy", help="disposition policy YAML (default: the current)")
    ] = None,
    data_dir: DataDirOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run stored inspections through another model or policy: how many grades and dispositions would change."""
    from inspector.feedback.replay import diff, replay, replay_settings

    if model is None and policy is None:
        raise ValueError("give --model VERSION and/or --policy FILE: replaying through the same ones changes nothing")
    if policy is not None and not policy.is_file():
        raise FileNotFoundError(f"policy file not found: {policy}")
    settings = _settings(data_dir, db)
    store, inspections = _load(settings, parse_since(since), views=True)
    try:
        if not inspections:
            raise ValueError("no stored inspections with their views in that window")
        outcomes, model_version, policy_version = replay(
            inspections, store.images, replay_settings(settings, model=model, policy=policy)
        )
    finally:
        store.close()
    rep = diff(outcomes)
    rep.update(model=model_version, policy=policy_version, since=since)
    if as_json:
        typer.echo(json.dumps(rep, indent=2))
        return
    ev = rep["expected_value"]
    typer.echo(
        f"replayed {rep['inspections']} inspections through model {model_version}, policy {policy_version}: "
        f"{rep['grades_changed']} grades and {rep['dispositions_changed']} dispositions would change; "
        f"expected recovery {ev['before']:.2f} -> {ev['after']:.2f} ({ev['difference']:+.2f}, "
        f"{ev['per_inspection']:+.2f} per item)"
    )
    for k, v in rep["grade_changes"].items():
        typer.echo(f"  grade {k}: {v}")
    for k, v in rep["disposition_changes"].items():
        typer.echo(f"  disposition {k}: {v}")
