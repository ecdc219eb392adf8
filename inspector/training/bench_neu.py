"""``make bench-neu``: our recipe against plain ultralytics defaults on real photographs.

NEU-DET (steel surface defects) is imported with the project's own VOC importer, then
models are trained under the same wall-clock budget on its train split (validated on its
val split) and evaluated on its test split with the same validator: our hand-written
``neu-det`` recipe and ``yolov8n.yaml`` with ultralytics' defaults (640 px, their
augmentation and schedule), both from scratch, and ``auto``, the recipe ``inspector train``
chooses by itself from the data (starting from our pretraining checkpoint when the registry
has one, as ``train`` would). The runs go to a throw-away registry under ``bench/work``,
never to the shipped ``models/``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from inspector.data.formats import read_data_yaml
from inspector.detect.base import DetectorError
from inspector.paths import REPO_ROOT
from inspector.training.autorecipe import Advice
from inspector.training.recipe import Recipe
from inspector.training.script import cli_main

PUBLISHED_MAP50 = 0.75  # YOLO11n / YOLOv8n, COCO-pretrained, GPU, 100+ epochs (see the dataset README)
EXPECTED_SPLITS = ("train", "val", "test")


def plain_recipe(minutes: float, seed: int = 0) -> Recipe:
    """Ultralytics' defaults: yolov8n.yaml at 640 px, batch 16, its own augmentation and schedule."""
    return Recipe(
        name="plain-yolov8n",
        description="Plain ultralytics defaults (yolov8n.yaml, 640 px, default augmentation and schedule).",
        model="yolov8n.yaml",
        init="scratch",
        imgsz=640,
        epochs=100,
        batch=16,
        seed=seed,
        time_budget_min=minutes,
    )


def auto_recipe(advice: Advice, minutes: float, models_dir: Path | None = None, **changes: Any) -> Recipe:
    """The recipe ``inspector train`` picks by itself, for a bench registry.

    The bench trains into its own registry, where our checkpoint is not, so an ``init: pretrain``
    becomes the checkpoint's weights file in ``models_dir`` (as ``train`` there would resolve it).
    """
    from inspector import registry
    from inspector.training.run import resolve_init

    recipe = advice.to_recipe()
    if recipe.init == "pretrain":
        weights, _ = resolve_init("pretrain", registry.root_dir(models_dir))
        changes = {"init": str(weights), **changes}
    return recipe.with_overrides(time_budget_min=minutes, **changes)


def import_neu(src: Path, out: Path) -> Path:
    """Import NEU-DET with ``inspector data import --format voc`` (once; reused afterwards)."""
    data_yaml = out / "data.yaml"
    if not data_yaml.is_file():
        cmd = [sys.executable, "-m", "inspector", "data", "import", "--format", "voc", str(src), "--out", str(out)]
        print("importing:", " ".join(cmd), file=sys.stderr, flush=True)
        r = subprocess.run(cmd, text=True)
        if r.returncode != 0 or not data_yaml.is_file():
            raise DetectorError(f"importing {src} failed (exit {r.returncode}); see the message above")
    spec = read_data_yaml(data_yaml)
    missing = [s for s in EXPECTED_SPLITS if not spec.split(s)]
    if missing:
        raise ValueError(f"{data_yaml}: the import has no {', '.join(missing)} split; NEU-DET ships train/val/test")
    return data_yaml


def run_one(
    label: str,
    recipe: Recipe,
    data_yaml: Path,
    root: Path,
    work: Path,
    threads: int | None,
    *,
    version: str | None = None,
    advice: list[str] | None = None,
) -> dict[str, Any]:
    """Train ``recipe`` into the bench registry, evaluate on the test split, return the bench record.

    ``advice`` (a recipe chosen from the data: why) is stored with the version and in the record.
    """
    from inspector.training.evaluate import evaluate_version
    from inspector.training.progress import ProgressReporter
    from inspector.training.run import train_version

    with ProgressReporter(label=label) as reporter:
        outcome = train_version(
            data_yaml,
            recipe,
            root=root,
            version=version,
            work_dir=work,
            threads=threads,
            report=reporter,
            advice=advice or (),
        )
    ev = evaluate_version(outcome.version, data_yaml, split="test", root=root, threads=threads, work_dir=work)
    return {
        "map50": round(ev["map50"], 4),
        "map50_95": round(ev["map50_95"], 4),
        "nms_iou": ev.get("nms_iou"),
        "train_minutes": round(outcome.meta["training"]["seconds"] / 60, 2),
        "epochs": outcome.meta["training"]["epochs_run"],
        "recipe": recipe.name,
        "recipe_settings": {"model": Path(recipe.model).name, "imgsz": recipe.imgsz, "batch": recipe.batch}
        | recipe.train_args,
        "version": outcome.version,
        "per_class_ap50": {k: round(v["ap50"], 4) for k, v in ev["per_class"].items()},
    } | ({"small_data": recipe.small_data.model_dump(exclude_defaults=True), "advice": advice} if advice else {})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m inspector.training.bench_neu", description=__doc__)
    ap.add_argument("--src", type=Path, default=REPO_ROOT.parent / "shared" / "datasets" / "neu-det")
    ap.add_argument("--minutes", type=float, default=30.0, help="training budget of each run")
    ap.add_argument("--recipe", type=Path, default=REPO_ROOT / "models" / "recipes" / "neu-det.yaml")
    ap.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "neu-det.json")
    ap.add_argument("--work", type=Path, default=REPO_ROOT / "bench" / "work" / "neu")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--only", choices=("ours", "plain", "auto"), default=None, help="run one side only")
    ap.add_argument("--models-dir", type=Path, default=None, help="registry with our pretraining checkpoint (auto)")
    args = ap.parse_args(argv)

    from inspector import runtime
    from inspector.training.provenance import git_state, hardware
    from inspector.training.recipe import load_recipe

    data_yaml = import_neu(args.src, args.work / "neu-det")
    root = args.work / "registry"
    ours_recipe = load_recipe(args.recipe).with_overrides(time_budget_min=args.minutes, init="scratch")
    n_threads = runtime.configure(args.threads)
    results: dict[str, Any] = {}
    if args.out.is_file() and args.only:
        results = json.loads(args.out.read_text(encoding="utf-8"))
    if args.only in (None, "ours"):
        results["ours"] = run_one("ours", ours_recipe, data_yaml, root, args.work, n_threads)
    if args.only in (None, "plain"):
        results["plain"] = run_one("plain", plain_recipe(args.minutes), data_yaml, root, args.work, n_threads)
    if args.only in (None, "auto"):
        from inspector.training.autorecipe import advise_data_yaml

        advice = advise_data_yaml(data_yaml, args.models_dir, args.minutes)
        recipe = auto_recipe(advice, args.minutes, args.models_dir)
        results["auto"] = run_one("auto", recipe, data_yaml, root, args.work, n_threads, advice=advice.comments())
    ours, plain = results.get("ours"), results.get("plain")
    results["budget_minutes"] = args.minutes
    results["published_map50_pretrained"] = PUBLISHED_MAP50
    if ours and plain:
        results["ours_minus_plain_map50"] = round(ours["map50"] - plain["map50"], 4)
    results["hardware"] = hardware(n_threads)
    results["git"] = git_state()
    results["dataset"] = str(args.src)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    shown = ("ours", "plain", "auto", "ours_minus_plain_map50")
    print(json.dumps({k: results[k] for k in shown if k in results}, indent=2))
    print(f"written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    cli_main(main)
