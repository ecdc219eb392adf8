"""The ML engineer's verbs: ``inspector train``, ``inspector evaluate``, ``inspector models ...``.

Importing this module is cheap (no torch, no ultralytics): the CLI's start-up and
``--help`` stay fast; heavy imports happen inside the commands.
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

models_app = typer.Typer(
    help="The model registry: list, show, promote, export and plot versions.",
    no_args_is_help=True,
    add_completion=False,
)

ModelsDirOpt = Annotated[
    Path | None,
    typer.Option("--models-dir", help="registry folder (default models/ or INSPECTOR_MODELS_DIR)"),
]
ThreadsOpt = Annotated[int | None, typer.Option(min=1, help="CPU threads (default: every core)")]


class TilingChoice(str, Enum):
    """``detector.tiling``'s values, as a command-line choice."""

    off = "off"
    item = "item"
    frame = "frame"


def train_cmd(
    data: Annotated[Path | None, typer.Option("--data", help="dataset description (YOLO data.yaml)")] = None,
    recipe: Annotated[
        Path | None,
        typer.Option(
            "--recipe",
            help="recipe YAML, e.g. models/recipes/bench-det.yaml (default: one chosen from the data, saying why)",
        ),
    ] = None,
    task: Annotated[
        str,
        typer.Option(
            help="detect: the defect detector; family: the product-family classifier (wrong item); "
            "anomaly: anomaly models from good items only"
        ),
    ] = "detect",
    family: Annotated[
        str, typer.Option("--family", help="with --task anomaly: a product family, several (a,b) or all")
    ] = "all",
    out: Annotated[Path, typer.Option("--out", help="with --task family: the weights file to write")] = Path(
        "models/family/family.pt"
    ),
    epochs: Annotated[int | None, typer.Option(min=1, help="override the recipe's epochs")] = None,
    imgsz: Annotated[int | None, typer.Option(min=32, help="override the recipe's input size")] = None,
    time_budget: Annotated[
        float | None, typer.Option("--time-budget", min=0.1, help="training budget in minutes (re-plans epochs)")
    ] = None,
    init: Annotated[
        str | None,
        typer.Option(
            help="start from: pretrain | scratch | active | a registry version | a .pt file (default: the "
            "recipe's; a recipe that names none starts from our newest pretraining checkpoint, else the "
            "active model, else scratch)"
        ),
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="version name (default <recipe>-YYYYMMDD-HHMM)")] = None,
    seed: Annotated[int | None, typer.Option(help="override the recipe's seed")] = None,
    threads: ThreadsOpt = None,
    models_dir: ModelsDirOpt = None,
    work_dir: Annotated[Path, typer.Option("--work-dir", help="where the raw ultralytics run goes")] = Path("runs"),
    device: Annotated[
        str, typer.Option("--device", help="cpu | cuda:0 | 0,1 (several GPUs: ultralytics' DDP); CUDA runs AMP")
    ] = "cpu",
) -> None:
    """Train a model offline from a recipe; the result becomes a new registry version.

    Without ``--recipe`` the recipe is chosen from the data (input size, crops or tiles, starting
    weights, balance, augmentation, batch, budget), one line of why per choice, and stored in the
    version as ``recipe.yaml`` (rerun or edit it with ``--recipe``).

    ``--task family`` trains the product-family classifier from scratch on item crops of the
    synthetic bench instead (set ``INSPECTOR_GRADING__FAMILY_MODEL`` to serve it).
    """
    if task == "family":
        from inspector.training.family import main as train_family

        argv = ["--out", str(out)]
        if epochs:
            argv += ["--epochs", str(epochs)]
        if seed is not None:
            argv += ["--seed", str(seed)]
        if threads:
            argv += ["--threads", str(threads)]
        raise typer.Exit(train_family(argv))
    if task == "anomaly":
        _train_anomaly(family, data, name, threads, models_dir)
        return
    if task != "detect":
        raise typer.BadParameter(f"unknown task {task!r}: detect, family or anomaly", param_hint="--task")
    if data is None:
        raise typer.BadParameter("training a detector needs --data", param_hint="--data")
    from inspector.training.device import DeviceError, parse_device
    from inspector.training.progress import ProgressReporter
    from inspector.training.recipe import load_recipe
    from inspector.training.run import train_version

    try:
        parse_device(device)  # a missing GPU is said before any work
    except DeviceError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    advice: list[str] = []
    if recipe is None:
        from inspector.training.autorecipe import advise_data_yaml

        chosen = advise_data_yaml(data, models_dir, time_budget)
        typer.echo(f"no --recipe: chosen from the data of {chosen.facts.name}", err=True)
        for line in chosen.lines():
            typer.echo(f"  {line}", err=True)
        base, advice = chosen.to_recipe(), chosen.comments()
    else:
        base = load_recipe(recipe)
    r = base.with_overrides(epochs=epochs, imgsz=imgsz, time_budget_min=time_budget, init=init, seed=seed)
    with ProgressReporter(label=r.name) as reporter:
        outcome = train_version(
            data,
            r,
            root=models_dir,
            version=name,
            work_dir=work_dir,
            threads=threads,
            report=reporter,
            device=device,
            advice=advice,
        )
    val = outcome.meta["training"].get("final_val") or {}
    typer.echo(
        f"registered {outcome.version} in {outcome.path} "
        f"({outcome.meta['training']['seconds'] / 60:.1f} min, {outcome.meta['training']['epochs_run']} epochs"
        + (f", val mAP50 {val['map50']:.4f}" if val.get("map50") is not None else "")
        + ")",
        err=True,
    )
    if advice:
        typer.echo(f"recipe used: {outcome.path / 'recipe.yaml'} (rerun or edit it with --recipe)", err=True)
    typer.echo(outcome.version)


def evaluate_cmd(
    model: Annotated[
        str | None, typer.Option("--model", help="registry version to evaluate (with --items: default the active)")
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option("--data", help="dataset description (YOLO data.yaml); with --items a rendered dataset folder"),
    ] = None,
    split: Annotated[str, typer.Option(help="train | val | test")] = "test",
    confidence: Annotated[
        float | None, typer.Option(min=0.0, max=1.0, help="operating confidence (default: the version's)")
    ] = None,
    imgsz: Annotated[int | None, typer.Option(min=32, help="input size (default: the version's)")] = None,
    primary: Annotated[bool, typer.Option(help="make this the card's headline evaluation")] = True,
    threads: ThreadsOpt = None,
    models_dir: ModelsDirOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the metrics JSON instead of the table")] = False,
    items: Annotated[
        bool, typer.Option("--items", help="item-level: the grade each item deserves against the grade it is served")
    ] = False,
    seeds: Annotated[str | None, typer.Option(help="with --items: held-out items A:B (B excluded)")] = None,
    count: Annotated[int, typer.Option("--count", min=1, help="with --items: this many held-out items...")] = 300,
    seed: Annotated[int, typer.Option("--seed", min=0, help="...from this one")] = 0,
    config: Annotated[
        list[str] | None, typer.Option("--config", help="with --items: a setting as section.key=value (repeatable)")
    ] = None,
    cache: Annotated[Path | None, typer.Option(help="with --items: render the items once into this folder")] = None,
    workers: Annotated[int, typer.Option(min=1, help="with --items: rendering processes")] = 1,
    out: Annotated[Path | None, typer.Option(help="with --items: write the JSON here, keeping its history")] = None,
    plot: Annotated[Path | None, typer.Option(help="with --items: the reliability plot (PNG)")] = None,
    records: Annotated[Path | None, typer.Option(help="with --items: one JSON line per item")] = None,
    write_card: Annotated[
        bool, typer.Option("--write-card", help="with --items: store the figures in the version's card")
    ] = False,
    tiling: Annotated[
        TilingChoice | None,
        typer.Option(
            help="off | item | frame: also score the model on native-resolution tiles, as the station serves it "
            "(default: detector.tiling)"
        ),
    ] = None,
) -> None:
    """Evaluate a version: mAP, per-class recall/precision, pictures flagged, false alarms, worst misses; into the card.

    With ``--items``: grade held-out bench items (or a rendered dataset's) from their true boxes and
    by the serving pipeline, and report the grade confusion, misses, review share, money and calibration.
    """
    if items:
        from inspector.verdicts.command import run_items
        from inspector.verdicts.items import parse_seeds

        chosen = parse_seeds(seeds) if seeds else range(seed, seed + count)
        run_items(
            seeds=chosen,
            data=data,
            split=split,
            model=model,
            overrides=config or (),
            cache=cache,
            workers=workers,
            out=out,
            plot=plot,
            records=records,
            write_card=write_card,
            models_dir=models_dir,
            as_json=as_json,
        )
        return
    if model is None or data is None:
        raise typer.BadParameter("evaluating a version needs --model and --data", param_hint="--model/--data")
    from inspector.config import Settings
    from inspector.training.evaluate import evaluate_version, evaluation_text

    ev = evaluate_version(
        model,
        data,
        split=split,
        root=models_dir,
        conf=confidence,
        imgsz=imgsz,
        threads=threads,
        primary=primary,
        tiling=tiling.value if tiling is not None else Settings().detector.tiling,
    )
    key = f"{ev['dataset']['name']}-{split}"
    sheet = (ev.get("operating_point") or {}).get("contact_sheet")
    if sheet:  # stored by name, beside the card; the person at the terminal gets the whole path
        from inspector import registry

        ev["operating_point"]["contact_sheet_path"] = str(registry.version_dir(model, models_dir) / sheet)
    typer.echo(json.dumps(ev, indent=2) if as_json else evaluation_text(model, key, ev))
    if sheet and not as_json:
        typer.echo(f"worst misses: {ev['operating_point']['contact_sheet_path']}")


@models_app.command("list")
def list_cmd(
    models_dir: ModelsDirOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the versions as JSON")] = False,
) -> None:
    """Every version with its headline metric; the active one marked, broken ones explained."""
    from rich.table import Table

    from inspector import registry
    from inspector.cli.output import console
    from inspector.training.card import f4
    from inspector.training.recipe import is_pretrain

    root = registry.root_dir(models_dir)
    try:
        active = registry.active_version(root)
    except registry.RegistryError as exc:
        active = None
        typer.echo(f"warning: {exc}", err=True)
    rows: list[dict[str, Any]] = []
    for v in registry.list_versions(root):
        st = registry.inspect_version(v, root, verify_checksum=False)
        meta: dict[str, Any] = dict(st.meta)
        key = meta.get("primary_evaluation")
        ev = (meta.get("evaluations") or {}).get(key or "", {})
        rows.append(
            {
                "version": v,
                "active": v == active,
                "created_at": meta.get("created_at"),
                "recipe": (meta.get("recipe") or {}).get("name"),
                "map50": ev.get("map50") if ev else None,
                "map50_95": ev.get("map50_95") if ev else None,
                "evaluated_on": key,
                "weights_mb": round(st.weights.stat().st_size / 1e6, 1) if st.weights_present else None,
                "state": st.state,
                "pretraining_checkpoint": is_pretrain(meta),
                "problems": list(st.problems),
            }
        )
    if as_json:
        typer.echo(json.dumps({"root": str(root), "active": active, "versions": rows}, indent=2))
        return
    table = Table(title=f"models in {root}")
    for col in ("", "version", "created", "recipe", "mAP50", "mAP50-95", "evaluated on", "size", "status"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(
            "*" if r["active"] else "",
            r["version"],
            str(r["created_at"] or ""),
            str(r["recipe"] or ""),
            f4(r["map50"]) if r["evaluated_on"] else "",
            f4(r["map50_95"]) if r["evaluated_on"] else "",
            r["evaluated_on"] or "",
            f"{r['weights_mb']:.1f} MB" if r["weights_mb"] is not None else "-",
            r["state"] + (" (pretraining checkpoint)" if r["pretraining_checkpoint"] else ""),
        )
    console().print(table)


@models_app.command("show")
def show_cmd(
    version: Annotated[str, typer.Argument(help="registry version")],
    models_dir: ModelsDirOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="print meta.json instead of the card")] = False,
) -> None:
    """Print a version's model card (or its meta.json), after checking the entry (its weights need not be here)."""
    from inspector import registry

    root = registry.root_dir(models_dir)
    status = registry.inspect_version(version, root)
    if not status.record_ok:
        raise registry.RegistryError(f"model version {version!r} is broken: {'; '.join(status.problems)}")
    if not status.weights_present:
        typer.echo(f"note: {version}: weights not present, only its card and metrics are kept", err=True)
    if as_json:
        typer.echo(json.dumps(status.meta, indent=2))
    else:
        typer.echo((status.path / registry.CARD_FILE).read_text(encoding="utf-8"))


def _side_by_side(version: str, backends: list[str], root: Path, cache: Path | None, say: Any) -> dict[str, float]:
    """Each backend's median ms per view on the same 20 held-out pictures, timed in turns."""
    from inspector.config import Settings
    from inspector.detect import load_detector
    from inspector.pipeline import served_detector_config
    from inspector.registry import resolve_weights
    from inspector.training.artifacts import model_file
    from inspector.types import Frame
    from inspector.verdicts.backends import interleaved_ms
    from inspector.verdicts.items import held_out_items

    settings = Settings()
    settings.registry.root = root
    weights, _ = resolve_weights(version, root)
    detectors = {}
    for backend in backends:
        cfg = served_detector_config(settings, version).model_copy(update={"backend": backend, "warmup": 0})
        detectors[backend] = load_detector(cfg, model_file(cfg, weights), version)
    size = (settings.camera.width, settings.camera.height)
    frames = [Frame(image=it.image, camera_id="bench") for it in held_out_items(range(20), cache=cache, size=size)]
    say(f"timing {', '.join(backends)} in turns on {len(frames)} pictures")
    return interleaved_ms(detectors, frames)


@models_app.command("backends")
def backends_cmd(
    version: Annotated[str | None, typer.Argument(help="registry version (default: the active one)")] = None,
    backends: Annotated[
        str, typer.Option("--backends", help="candidates beside ultralytics, comma-separated")
    ] = "openvino-int8,openvino",
    count: Annotated[int, typer.Option("--count", min=1, help="held-out items graded by each backend")] = 1000,
    cache: Annotated[Path | None, typer.Option(help="render the items once into this folder")] = None,
    workers: Annotated[int, typer.Option(min=1, help="rendering processes")] = 1,
    out: Annotated[Path | None, typer.Option(help="also write the comparison here (JSON)")] = None,
    write: Annotated[bool, typer.Option("--write/--no-write", help="store the choice in the version's meta")] = True,
    models_dir: ModelsDirOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Grade the same held-out items with each backend; the fastest whose verdicts match PyTorch's is served.

    Every headline item-level figure must stay within one point of ultralytics'; the choice goes into
    the version's meta.json (``serving_backend``), which the station serves unless configured otherwise.
    """
    from inspector import registry
    from inspector.verdicts.backends import choose, measure
    from inspector.verdicts.command import run_items

    root = registry.root_dir(models_dir)
    name = version or registry.active_version(root)
    if name is None:
        raise ValueError("no version given and none is active")
    seeds = range(count)  # the held-out items make bench-grading grades: the same renders, from its cache

    def evaluate(backend: str) -> dict[str, Any]:
        return run_items(
            seeds=seeds,
            model=name,
            overrides=[f"detector.backend={backend}"],
            cache=cache,
            workers=workers,
            models_dir=root,
            as_json=False,
            progress=False,
        )

    def say(line: str) -> None:
        typer.echo(line, err=True)

    results = measure([b.strip() for b in backends.split(",") if b.strip()], evaluate, say)
    speed = _side_by_side(name, [b for b, r in results.items() if "error" not in r], root, cache, say)
    record = choose(results, speed=speed)
    record["measured_at"] = registry.now_iso()
    if write:
        meta = registry.load_meta(name, root)
        meta["serving_backend"] = record
        registry.save_meta(name, meta, root)
    if out is not None:
        registry.write_atomic(out, json.dumps(record, indent=1) + "\n")
    if as_json:
        typer.echo(json.dumps(record, indent=1))
        return
    for backend, row in record["backends"].items():
        if "error" in row:
            typer.echo(f"{backend:<14} not measured: {row['error']}")
            continue
        mark = "qualifies" if row["qualifies"] else "differs"
        typer.echo(
            f"{backend:<14} {row['detect_ms_median']:>7.1f} ms/view  largest difference {row['largest_difference']:.4f}"
            f"  {mark}"
        )
    typer.echo(f"served by default: {record['backend']}" + (f" (written to {name})" if write else ""))


@models_app.command("thresholds")
def thresholds_cmd(
    version: Annotated[str, typer.Argument(help="registry version")],
    data: Annotated[Path, typer.Option("--data", help="dataset description (YOLO data.yaml) with validation data")],
    split: Annotated[str, typer.Option(help="train | val | test")] = "val",
    models_dir: ModelsDirOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the record JSON instead of the table")] = False,
    threads: ThreadsOpt = None,
    costs: Annotated[
        Path | None, typer.Option("--costs", help="YAML of cost_miss and cost_false per class (default: shipped)")
    ] = None,
    floor: Annotated[float, typer.Option("--floor", min=0.01, max=0.9, help="confidence the model runs at")] = 0.05,
    limit: Annotated[int | None, typer.Option(min=1, help="use only the first N images of the split")] = None,
    tiling: Annotated[
        TilingChoice | None,
        typer.Option(help="off | item | frame (default: detector.tiling, as the station is configured to serve)"),
    ] = None,
) -> None:
    """Choose each class's confidence threshold by the cost of its misses and false alarms; into meta and card."""
    from inspector.config import Settings
    from inspector.training.card import render_operating_points
    from inspector.training.thresholds import DEFAULT_COSTS, choose_for_version

    rec = choose_for_version(
        version,
        data,
        split=split,
        root=models_dir,
        costs_file=costs or DEFAULT_COSTS,
        floor=floor,
        threads=threads,
        limit=limit,
        tiling=tiling.value if tiling is not None else Settings().detector.tiling,
    )
    typer.echo(json.dumps(rec, indent=2) if as_json else render_operating_points(rec))


def _train_anomaly(family: str, data: Path | None, name: str | None, threads: int | None, root: Path | None) -> None:
    """``train --task anomaly``: one model per family from good items (clean renders, or ``--data DIR/<family>/``)."""
    from inspector.items import FAMILIES
    from inspector.paths import REPO_ROOT
    from inspector.training.anomaly import train as train_anomaly

    families = FAMILIES if family == "all" else tuple(f.strip() for f in family.split(",") if f.strip())
    unknown = [f for f in families if f not in FAMILIES]
    if unknown or not families:
        raise typer.BadParameter(f"unknown family {unknown[0] if unknown else family!r}", param_hint="--family")
    if data is not None and not data.is_dir():
        typer.echo(f"error: {data}: not a folder of good item crops (<family>/*.png|jpg)", err=True)
        raise typer.Exit(1)
    try:
        version, meta = train_anomaly(
            families,
            data=data,
            name=name,
            threads=threads,
            root=root,
            workers=2,
            cache=None if data else REPO_ROOT / "bench" / "work" / "anomaly",  # the renders the benchmark made
            log=lambda s: typer.echo(s, err=True),
        )
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"trained {version} ({meta['method']}, {len(meta['families'])} families)", err=True)
    typer.echo(version)


@models_app.command("promote")
def promote_cmd(
    version: Annotated[str, typer.Argument(help="registry version to serve")],
    by: Annotated[str | None, typer.Option(help="who promotes (default user@host)")] = None,
    note: Annotated[str | None, typer.Option(help="why, for the promotion log")] = None,
    data: Annotated[
        Path | None, typer.Option("--data", help="compare with the active version on this dataset first")
    ] = None,
    split: Annotated[str, typer.Option(help="with --data: train | val | test")] = "test",
    tolerance: Annotated[
        float | None,
        typer.Option(min=0.0, max=1.0, help="largest per-class AP50 drop allowed (default: the configuration's)"),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="promote even if worse; needs --by and --reason")] = False,
    reason: Annotated[str | None, typer.Option(help="with --force: why, recorded in the promotion log")] = None,
    models_dir: ModelsDirOpt = None,
) -> None:
    """Make a version the active one (atomic; recorded with who and when).

    A version replacing another must have been compared with it (``models compare``, or
    ``--data`` here) and be no worse than the tolerance on any class; ``--force`` overrides
    that, and the log records who forced it and why.
    """
    from inspector import registry
    from inspector.config import Settings
    from inspector.training.champion import compare_versions, guarded_promote

    settings = Settings()
    root = models_dir or settings.registry.root
    tol = settings.registry.promote_tolerance if tolerance is None else tolerance
    if data is not None:
        active = registry.active_version(registry.root_dir(root))
        if active is not None and active != version:
            compare_versions(active, version, data, split=split, root=root)
    registry.check_version(version, registry.root_dir(root))  # a version without weights: say so, not "not compared"
    if registry.load_meta(version, registry.root_dir(root)).get("task") == "anomaly":
        # anomaly models have their own pointer; the detector's comparison guard does not apply
        rec = registry.promote(version, by=by, note=note, root=root)
        typer.echo(f"active anomaly model: {rec['version']} (previous: {rec['previous'] or 'none'})")
        return
    rec = guarded_promote(version, by=by, note=note, force=force, reason=reason, root=root, tolerance=tol)
    guard = rec.get("guard") or {}
    typer.echo(
        f"active: {rec['version']} (promoted by {rec['promoted_by']} at {rec['promoted_at']}; "
        f"previous: {rec['previous'] or 'none'})"
        + (f"; FORCED over: {'; '.join(guard['regressions'])}" if guard.get("forced") else "")
    )


@models_app.command("compare")
def compare_cmd(
    champion: Annotated[str, typer.Argument(help="the version serving now (A)")],
    challenger: Annotated[str, typer.Argument(help="the candidate (B)")],
    data: Annotated[Path, typer.Option("--data", help="dataset description (YOLO data.yaml)")],
    split: Annotated[str, typer.Option(help="train | val | test")] = "test",
    resamples: Annotated[int, typer.Option(min=10, help="bootstrap resamples over images")] = 1000,
    seed: Annotated[int, typer.Option(help="bootstrap seed")] = 0,
    imgsz: Annotated[int | None, typer.Option(min=32, help="input size (default: the challenger's)")] = None,
    threads: ThreadsOpt = None,
    models_dir: ModelsDirOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of the table")] = False,
) -> None:
    """Per-class AP50 of B against A with paired bootstrap intervals; stored with B for the promotion guard."""
    from inspector.config import Settings
    from inspector.training.champion import compare_versions
    from inspector.training.compare import comparison_text

    result = compare_versions(
        champion,
        challenger,
        data,
        split=split,
        root=models_dir or Settings().registry.root,
        resamples=resamples,
        seed=seed,
        imgsz=imgsz,
        threads=threads,
    )
    typer.echo(json.dumps(result, indent=2) if as_json else comparison_text(champion, challenger, result))


@models_app.command("export")
def export_cmd(
    version: Annotated[str, typer.Argument(help="registry version")],
    fmt: Annotated[str, typer.Option("--format", help="onnx | openvino")] = "onnx",
    images: Annotated[
        Path | None, typer.Option(help="folder of images for the parity check (default: the evaluation split)")
    ] = None,
    n_images: Annotated[int, typer.Option("--parity-images", min=1, help="images in the parity check")] = 50,
    threads: ThreadsOpt = None,
    models_dir: ModelsDirOpt = None,
) -> None:
    """Export a version and check it against PyTorch; the parity figures go into the card."""
    from inspector.training.export import export_text, export_version

    record = export_version(version, fmt, root=models_dir, images_dir=images, n_images=n_images, threads=threads)
    typer.echo(export_text(fmt, record))
    if not record["parity"]["ok"]:
        raise typer.Exit(1)


@models_app.command("plots")
def plots_cmd(
    version: Annotated[str, typer.Argument(help="registry version")],
    out: Annotated[
        Path | None, typer.Option("--out", help="folder for the PNG files (default: beside the card)")
    ] = None,
    models_dir: ModelsDirOpt = None,
) -> None:
    """Draw a version's figures (training curves, PR curve, confusion matrix) from the numbers it stores."""
    from inspector import registry
    from inspector.training.card import figures_of
    from inspector.training.plots import write_plots

    root = registry.root_dir(models_dir)
    status = registry.inspect_version(version, root, verify_checksum=False)
    if not status.record_ok:
        raise registry.RegistryError(f"model version {version!r} is broken: {'; '.join(status.problems)}")
    for path in write_plots(version, root, out):
        typer.echo(str(path))
    missing = [k for k in ("training_curves", "pr_curve", "confusion_matrix") if k not in figures_of(status.meta)]
    if missing:
        typer.echo(
            f"not drawn: {', '.join(k.replace('_', ' ') for k in missing)} ({version} stores no numbers for them)",
            err=True,
        )
