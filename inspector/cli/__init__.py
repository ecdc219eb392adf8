"""The ``inspector`` command line: serve the station, detect, and the ML verbs.

Every user error ends in one line on stderr and a non-zero exit code, never a
traceback: :func:`main` turns the station's own error types into that.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from inspector.detect.base import DetectorError
from inspector.imageio import ImageError

app = typer.Typer(
    name="inspector",
    help="Returns-bench inspection station: detect defects, grade condition, recommend a disposition.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class CliError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


# Sub-command groups register here, one line each.
# [sub-apps]
from inspector.cli.disposition import recommend_command  # noqa: E402

app.command("recommend")(recommend_command)
from inspector.cli.store import backup_cmd, db_app, keys_app, prune_cmd, restore_cmd  # noqa: E402

app.add_typer(keys_app, name="keys")
app.add_typer(db_app, name="db")
app.command("prune")(prune_cmd)
app.command("backup")(backup_cmd)
app.command("restore")(restore_cmd)
from inspector.cli.training import evaluate_cmd, models_app, train_cmd  # noqa: E402

app.command("train")(train_cmd)
app.command("evaluate")(evaluate_cmd)
app.add_typer(models_app, name="models")
from inspector.cli.data import data_app  # noqa: E402

app.add_typer(data_app, name="data")
from inspector.cli.feedback import feedback_app, replay_cmd  # noqa: E402

app.add_typer(feedback_app, name="feedback")
app.command("replay")(replay_cmd)
from inspector.cli.catalogue import catalogue_app  # noqa: E402

app.add_typer(catalogue_app, name="catalogue")
from inspector.cli.returns import returns_app  # noqa: E402

app.add_typer(returns_app, name="returns")
# [/sub-apps]


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="bind address (default 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default 8080)")] = None,
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="data folder: database, images")] = None,
    db: Annotated[
        str | None,
        typer.Option("--db", help="database URL: sqlite:///PATH (default, under the data folder) or postgresql://"),
    ] = None,
    station: Annotated[
        str | None, typer.Option("--station", help="this bench's id, stamped on its inspections")
    ] = None,
    image_dir: Annotated[
        Path | None, typer.Option("--image-dir", help="image folder, may be shared by a fleet (default data/images)")
    ] = None,
) -> None:
    """Start the local API and the operator page."""
    import uvicorn

    from inspector.api.app import create_app
    from inspector.config import Settings
    from station.web import mount

    settings = Settings()
    if host:
        settings.server.host = host
    if port:
        settings.server.port = port
    if data_dir:
        settings.storage.data_dir = data_dir
    if db:
        settings.storage.db_url = db
    if station:
        settings.station_id = station
    if image_dir:
        settings.storage.image_dir = image_dir
    settings.storage.data_dir.mkdir(parents=True, exist_ok=True)
    from inspector.cli.store import open_store

    if settings.server.require_auth and settings.server.bootstrap_keys:
        from inspector.store import bootstrap_keys

        store = open_store(settings.storage)
        try:
            created = bootstrap_keys(store)
        except FileExistsError as exc:  # something planted at the key file's path: said in one line
            raise CliError(str(exc)) from exc
        finally:
            store.close()
        if created is not None:
            typer.echo(f"first start: an admin and an operator API key are in {created} (mode 0600)", err=True)
    else:
        open_store(settings.storage).close()  # migrate, and fail in one line when the database cannot be used
    app = create_app(settings)
    mount(app, settings)  # the operator page and the cameras, on the same app and event loop
    _log_station_info()
    uvicorn.run(app, host=settings.server.host, port=settings.server.port, log_level="info")


def _log_station_info() -> None:
    """The station's own INFO lines (a model swap, a scheduled prune) on stderr beside uvicorn's.

    Only the station's loggers: a library's INFO (every HTTP request a webhook makes) stays quiet.
    """
    import logging

    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s:     %(name)s: %(message)s"))
    for name in ("inspector", "station"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)


@app.command()
def detect(
    images: Annotated[list[Path], typer.Argument(help="image files (JPEG, PNG, WebP)")],
    model: Annotated[Path | None, typer.Option(help="weights (.pt); default: the active registry version")] = None,
    confidence: Annotated[float, typer.Option(min=0.0, max=1.0)] = 0.25,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
) -> None:
    """Print the detections found in each image."""
    from inspector.config import DetectorConfig
    from inspector.detect import load_detector
    from inspector.imageio import read_image
    from inspector.registry import resolve_weights
    from inspector.types import Frame

    frames = [Frame(image=read_image(p), camera_id=p.name) for p in images]
    weights, version = resolve_weights(str(model) if model else None)
    detector = load_detector(DetectorConfig(confidence=confidence), weights, version)
    results = detector.detect(frames)
    if as_json:
        out = [
            {"image": str(p), "model_version": detector.model_version, "detections": d.to_records()}
            for p, d in zip(images, results, strict=True)
        ]
        typer.echo(json.dumps(out, indent=2))
        return
    from rich.table import Table

    from inspector.cli.output import console as make_console

    console = make_console()
    for p, dets in zip(images, results, strict=True):
        table = Table(title=f"{p} — {len(dets)} detections ({detector.model_version})")
        for col in ("class", "confidence", "x1", "y1", "x2", "y2"):
            table.add_column(col)
        for d in dets:
            table.add_row(d.class_name, f"{d.confidence:.3f}", *(f"{v:.0f}" for v in d.xyxy))
        console.print(table)


@app.command()
def inspect(
    images: Annotated[list[Path], typer.Argument(help="the views of one item (JPEG, PNG, WebP)")],
    sku: Annotated[str | None, typer.Option(help="SKU in the catalogue")] = None,
    category: Annotated[str | None, typer.Option(help="product category, for a SKU not in the catalogue")] = None,
    price: Annotated[float | None, typer.Option(help="price new, for a SKU not in the catalogue")] = None,
    rma: Annotated[str | None, typer.Option(help="RMA number")] = None,
    flag: Annotated[
        list[str] | None, typer.Option(help="item flag, e.g. opened or battery_swollen (repeatable)")
    ] = None,
    model: Annotated[Path | None, typer.Option(help="weights (.pt); default: the active registry version")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
) -> None:
    """The whole path for one item: detections, grade and disposition."""
    import uuid

    from inspector.config import Settings
    from inspector.imageio import read_image
    from inspector.items import ItemInfo
    from inspector.pipeline import PipelineError, build_pipeline
    from inspector.types import Frame

    frames = [Frame(image=read_image(p), camera_id=f"view{i + 1}") for i, p in enumerate(images)]
    item = ItemInfo(rma=rma, sku=sku, category=category, price=price, flags=frozenset(flag or ()))
    settings = Settings()
    if model is not None:
        settings.detector.model = str(model)
    try:
        pipeline = build_pipeline(settings)
    except PipelineError as exc:
        raise CliError(str(exc)) from exc
    result = pipeline.inspect(frames, item, inspection_id=uuid.uuid4().hex)
    if as_json:
        out = {
            "id": result.id,
            "model_version": result.model_version,
            "views": [
                {"image": str(p), "detections": v.detections.to_records()}
                for p, v in zip(images, result.views, strict=True)
            ],
            "grade": result.grade.to_dict(),
            "disposition": result.disposition.to_dict(),
            "item": dict(result.item),
            "timings_ms": {k: round(v, 2) for k, v in result.timings_ms.items()},
        }
        typer.echo(json.dumps(out, indent=2))
        return
    from rich.table import Table

    from inspector.cli.output import console as make_console

    console = make_console()
    for p, view in zip(images, result.views, strict=True):
        console.print(f"[bold]{p}[/]: {len(view.detections)} detections: " + ", ".join(view.detections.names))
    g, d = result.grade, result.disposition
    console.print(f"[bold]Grade {g.level.value}[/] (confidence {g.confidence:.2f}, rubric {g.rubric_version})")
    for r in g.reasons:
        console.print(f"  - {r.text}")
    console.print(f"[bold]Disposition {d.path.value}[/] (policy {d.policy_version}, rule {d.rule or 'none'})")
    for r in d.reasons:
        console.print(f"  - {r.text}")
    table = Table(title="alternatives")
    for col in ("path", "expected value", "allowed", "note"):
        table.add_column(col)
    for a in d.alternatives:
        table.add_row(a.path.value, f"{a.expected_value:.2f}", "yes" if a.allowed else "no", a.note)
    console.print(table)


def main() -> None:
    """Entry point: run the app, turning known errors into one line and exit code 2."""
    try:
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:  # without standalone mode, click returns typer.Exit's code
            sys.exit(code)
    except (CliError, DetectorError, ImageError, FileNotFoundError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(1)
    except Exception as exc:  # click usage errors and the like (typer may carry its own copy of click)
        show, code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
        if callable(show) and isinstance(code, int):
            show()
            sys.exit(code)
        raise


if __name__ == "__main__":
    main()
