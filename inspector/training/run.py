"""``inspector train``: one recipe + one dataset -> one new, complete registry version.

The run itself happens in a work folder (``runs/train/<version>``); only the finished
weights, the effective recipe, the provenance and the card enter the registry, in one
atomic step, so a failed or interrupted run never leaves a half-made version behind.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inspector import registry, runtime
from inspector.config import SERVED_NMS_IOU
from inspector.data.formats import fingerprint, read_data_yaml
from inspector.detect.base import DetectorError
from inspector.training.card import render_card
from inspector.training.device import parse_device
from inspector.training.plots import curves_from_rows, write_plots
from inspector.training.provenance import git_state, hardware, software
from inspector.training.recipe import Recipe, is_pretrain

DEFAULT_WORK_DIR = Path("runs")


@dataclass(frozen=True, slots=True)
class TrainOutcome:
    version: str
    path: Path
    meta: dict[str, Any]
    run_dir: Path


def resolve_init(init: str, root: Path | None = None) -> tuple[Path | None, str]:
    """Where training starts: ``(None, "scratch")`` or ``(weights, description)``.

    ``active`` means the promoted version when there is one (a broken one is an error,
    not a silent fall-back to scratch), else scratch. ``pretrain`` means the newest general
    defect-features checkpoint (a version trained by a ``role: pretrain`` recipe), else
    ``active``.
    """
    if init == "scratch":
        return None, "scratch"
    if init == "pretrain":
        version = newest_pretrain(root)
        if version is not None:
            return registry.check_version(version, root), f"version {version} (pretraining checkpoint)"
        init = "active"
    if init == "active":
        version = registry.active_version(root)
        if version is None:
            return None, "scratch (no active version to start from)"
        return registry.check_version(version, root), f"version {version} (active)"
    as_path = Path(init)
    if as_path.suffix == ".pt" or as_path.is_file():
        if not as_path.is_file():
            raise DetectorError(f"initial weights not found: {as_path}")
        return as_path, f"file {as_path}"
    return registry.check_version(init, root), f"version {init}"


def newest_pretrain(root: Path | None = None) -> str | None:
    """The most recently trained pretraining checkpoint in the registry whose weights are here, if any.

    Older versions keep only their card and metrics, so a checkpoint without weights is passed over.
    """
    for version in reversed(registry.list_versions(root)):  # oldest first: the newest is met first here
        if not (registry.version_dir(version, root) / registry.WEIGHTS_FILE).is_file():
            continue
        try:
            meta = registry.load_meta(version, root)
        except (OSError, ValueError, registry.RegistryError):
            continue  # a broken entry is reported by 'models list', not chosen here
        if is_pretrain(meta):
            return version
    return None


def read_results_csv(run_dir: Path) -> list[dict[str, float]]:
    """Ultralytics' per-epoch ``results.csv`` as dicts of floats (empty when it is missing)."""
    path = run_dir / "results.csv"
    if not path.is_file():
        return []
    rows: list[dict[str, float]] = []
    with path.open(encoding="utf-8") as f:
        for raw in csv.DictReader(f):
            row: dict[str, float] = {}
            for k, v in raw.items():
                try:
                    row[k.strip()] = float(v)
                except (TypeError, ValueError):
                    continue
            rows.append(row)
    return rows


def _final_val(rows: list[dict[str, float]]) -> dict[str, Any]:
    if not rows:
        return {}
    best = max(rows, key=lambda r: 0.1 * r.get("metrics/mAP50(B)", 0) + 0.9 * r.get("metrics/mAP50-95(B)", 0))
    last = rows[-1]
    return {
        "map50": last.get("metrics/mAP50(B)"),
        "map50_95": last.get("metrics/mAP50-95(B)"),
        "best_epoch": int(best.get("epoch", 0)),
        "best_map50": best.get("metrics/mAP50(B)"),
        "best_map50_95": best.get("metrics/mAP50-95(B)"),
    }


def train_version(
    data_yaml: Path,
    recipe: Recipe,
    *,
    root: Path | None = None,
    version: str | None = None,
    work_dir: Path = DEFAULT_WORK_DIR,
    threads: int | None = None,
    report: Callable[[Any], None] | None = None,
    notes: list[str] | None = None,
    device: str = "cpu",
    advice: Sequence[str] = (),
) -> TrainOutcome:
    """Train ``recipe`` on ``data_yaml`` and register the result as a new version.

    ``device`` is checked first (a missing GPU fails before any work); ``advice`` (why a recipe chosen
    from the data is as it is) goes atop the stored ``recipe.yaml`` as comments, and into the card.
    """
    dev = parse_device(device)
    spec = read_data_yaml(data_yaml)
    for split in ("train", "val"):
        if not spec.split(split):
            raise ValueError(f"{data_yaml}: training needs a non-empty {split!r} split")
    base = registry.root_dir(root)
    name = registry.check_version_name(version) if version else registry.new_version_name(recipe.name, base)
    if registry.version_dir(name, base).exists():
        raise registry.RegistryError(f"model version {name!r} already exists in {base}")
    init_weights, init_label = resolve_init(recipe.init, base)
    n_threads = runtime.configure(threads)
    source_fp = fingerprint(spec)
    aids: list[str] = []
    cache = recipe.train_args.get("cache")
    if cache in ("ram", "disk", True):
        aids.append(f"image caching ({'ram' if cache is True else cache}): each image decoded once per run")
    if recipe.small_data.active():
        from inspector.training.smalldata import SmallDataOptions, prepare

        sd = recipe.small_data
        derived, aid_notes = prepare(
            spec,
            (work_dir / "data" / name).resolve(),
            SmallDataOptions(
                balance=sd.balance,
                balance_threshold=sd.balance_threshold,
                negatives=Path(sd.negatives) if sd.negatives else None,
                tile=sd.tile,
                tile_overlap=sd.tile_overlap,
                focus=sd.focus,
                focus_full_share=sd.focus_full_share,
                gray_share=sd.gray_share,
                subset=sd.subset,
                seed=sd.subset_seed,
            ),
        )
        aids += aid_notes
        spec = read_data_yaml(derived)
    data_fp = fingerprint(spec) if recipe.small_data.active() else source_fp

    train_args = dict(recipe.train_args)
    if init_weights is not None:
        train_args.update(recipe.fine_tune.train_args)
        if recipe.fine_tune.freeze:
            train_args["freeze"] = recipe.fine_tune.freeze
    # the epoch kept is the best under the suppression the station serves (ultralytics validates at 0.7)
    train_args.setdefault("iou", SERVED_NMS_IOU)
    from inspector.training import ultralytics

    # CUDA: ultralytics' AMP; CPU: bf16 only where it has the kernels (elsewhere emulated, slower than fp32)
    cpu_precision = recipe.precision if ultralytics.cpu_supports_bf16() else "fp32"
    precision = "amp" if dev.kind == "cuda" else cpu_precision
    speed_at_start = runtime.cpu_speed()
    result = ultralytics.train(
        init_weights if init_weights is not None else recipe.model,
        spec.description(),
        out_dir=work_dir / "train",
        name=name,
        epochs=recipe.epochs,
        imgsz=recipe.imgsz,
        batch=recipe.batch,
        workers=recipe.workers,
        val_every=recipe.val_every,
        precision=precision,
        device=dev.arg,
        seed=recipe.seed,
        threads=n_threads,
        time_hours=recipe.time_budget_min / 60 if recipe.time_budget_min else None,
        progress=report,
        **train_args,
    )
    speed_at_end = runtime.cpu_speed()
    rows = read_results_csv(result.run_dir)
    meta: dict[str, Any] = {
        "version": name,
        "created_at": registry.now_iso(),
        "recipe": recipe.model_dump(exclude_none=True),
        "recipe_advice": list(advice),
        "init": init_label,
        "class_names": list(spec.names),
        "imgsz": recipe.serve_imgsz or recipe.imgsz,
        "train_imgsz": recipe.imgsz,
        "operating_confidence": recipe.operating_confidence,
        "target": recipe.target.model_dump() if recipe.target else None,
        "dataset": data_fp,
        "source_dataset": source_fp if recipe.small_data.active() else None,
        "small_data": aids,
        "training": {
            "seconds": round(result.seconds, 1),
            "epochs_run": len(rows) or result.epochs_run,
            "epochs_planned": recipe.epochs,
            "time_budget_min": recipe.time_budget_min,
            "val_every": recipe.val_every,
            "images_seen": result.images_seen,
            "images_per_s": round(result.images_seen / result.seconds, 1) if result.seconds > 0 else None,
            "precision": precision,
            "train_args": train_args,
            "final_val": _final_val(rows),
            "curves": curves_from_rows(rows),  # per-epoch log: `inspector models plots` draws it
            "run_dir": str(result.run_dir),
        },
        "hardware": {
            **hardware(n_threads),
            "device": dev.label,
            "device_name": ", ".join(dev.names),
            "conv_gflops_at_start": speed_at_start,
            "conv_gflops_at_end": speed_at_end,
        },
        "software": software(),
        "git": git_state(),
        "evaluations": {},
        "primary_evaluation": None,
        "exports": {},
        "notes": list(notes or []),
    }
    files: dict[str, Path] = {}
    model_yaml = Path(recipe.model)
    if model_yaml.is_file():
        files["model.yaml"] = model_yaml
    path = registry.register(
        name,
        weights=result.best,
        meta=meta,
        card=render_card({**meta, "weights_bytes": result.best.stat().st_size}),
        recipe_text=recipe.to_yaml(comments=advice),
        files=files,
        root=base,
    )
    final_meta = registry.load_meta(name, base)
    registry.save_card(name, render_card(final_meta), base)
    write_plots(name, base)
    return TrainOutcome(version=name, path=path, meta=final_meta, run_dir=result.run_dir)
