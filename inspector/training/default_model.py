"""``make model``: the model the station ships with, from nothing to promoted.

Renders a synthetic training set (one seed) and a test set (another seed), trains the
``bench-det`` recipe within its time budget (native-resolution crops around the defects),
then the short ``bench-det-finish`` stage from its weights on whole frames at the serving
size, evaluates the result on the other-seed test set, exports ONNX with a parity check,
and promotes it. A model that misses its
target is still registered (the card says so); it is promoted only when nothing is
active or it beats the active version on the same test set.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from inspector import registry
from inspector.data.formats import read_data_yaml
from inspector.data.synth.scene import DefectMix
from inspector.paths import REPO_ROOT, datasets_dir
from inspector.training.card import target_verdict
from inspector.training.script import cli_main

MAX_FILE_BYTES = 15_000_000


def synth_dataset(
    out_dir: Path, n_images: int, seed: int, *, val: float, test: float, mix: DefectMix | None = None
) -> Path:
    """Render a dataset once; an existing one with the same image count is reused."""
    data_yaml = out_dir / "data.yaml"
    if data_yaml.is_file():
        spec = read_data_yaml(data_yaml)
        if len(spec.images) == n_images:
            print(f"reusing {data_yaml} ({n_images} images)", file=sys.stderr, flush=True)
            return data_yaml
    from inspector.data.synth import generate

    t0 = time.perf_counter()
    print(f"rendering {n_images} images (seed {seed}) into {out_dir}...", file=sys.stderr, flush=True)
    path = Path(generate(out_dir, n_images, seed, val=val, test=test, mix=mix or DefectMix()))
    print(f"rendered in {(time.perf_counter() - t0) / 60:.1f} min", file=sys.stderr, flush=True)
    return path


def synth_training_render(datasets: Path, n_images: int, seed: int, mix: DefectMix, val: float = 0.08) -> Path:
    """The seeded training render (train and val), one folder per image count and defect mix."""
    out = datasets / f"bench-s{seed}-{n_images}{mix_suffix(mix)}"
    return synth_dataset(out, n_images, seed, val=val, test=0.0, mix=mix)


def synth_test_render(datasets: Path, n_images: int, seed: int) -> Path:
    """The test render of another seed with the default defect mix, as the cards measure on it."""
    # the generator keeps a training share; ~1% of this render goes unused
    return synth_dataset(datasets / f"bench-s{seed}-{n_images}-test", n_images, seed, val=0.0, test=0.99)


def mix_suffix(mix: DefectMix) -> str:
    """A dataset folder's name tells a non-default defect mix (``-df15-d2334``): one render per mix."""
    if mix == DefectMix():
        return ""
    return f"-df{round(mix.defect_free_p * 100)}-d{''.join(str(c) for c in mix.counts)}"


def promotion_decision(policy: str, target_met: bool, ev: dict[str, Any], key: str, root: Path) -> tuple[bool, str]:
    """Whether a fresh model should replace the active one, and why (for the promotion log)."""
    if policy == "always":
        return True, "promoted on request"
    if policy == "never":
        return False, "promotion not requested"
    if target_met:
        return True, "target met"
    try:
        active = registry.active_version(root)
        active_ev = (registry.load_meta(active, root).get("evaluations") or {}).get(key) if active else None
    except registry.RegistryError:
        active, active_ev = None, None
    if active is None:
        return True, "target missed; promoted because no other version was active"
    if active_ev is None:
        return False, f"target missed and the active {active} has no {key} evaluation to compare with"
    if float(ev["map50"]) > float(active_ev["map50"]):
        return True, f"target missed, but mAP50 {ev['map50']:.4f} beats the active {active} ({active_ev['map50']:.4f})"
    return False, f"target missed and the active {active} is as good or better on {key}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m inspector.training.default_model", description=__doc__)
    ap.add_argument("--train-images", type=int, default=3200, help="training + validation images (seed --seed)")
    ap.add_argument("--test-images", type=int, default=600, help="test images (seed --test-seed)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--test-seed", type=int, default=2)
    ap.add_argument("--val", type=float, default=0.08, help="share of the training render kept for validation")
    ap.add_argument(
        "--train-defect-free",
        type=float,
        default=0.15,
        help="share of defect-free items in the training render (the test render keeps the default 0.4)",
    )
    ap.add_argument(
        "--train-defects",
        default="1,2,2,3,3,4",
        help="defect counts a damaged training item draws from (the test render keeps 1,1,1,2,2,3)",
    )
    ap.add_argument("--minutes", type=float, default=None, help="training budget (default: the recipe's)")
    ap.add_argument("--recipe", type=Path, default=REPO_ROOT / "models" / "recipes" / "bench-det.yaml")
    ap.add_argument(
        "--finish-recipe",
        type=Path,
        default=REPO_ROOT / "models" / "recipes" / "bench-det-finish.yaml",
        help="second stage, from the first stage's weights, on whole frames ('none': one stage only)",
    )
    ap.add_argument("--finish-minutes", type=float, default=None, help="second-stage budget (default: the recipe's)")
    ap.add_argument(
        "--finish-from", default=None, help="skip the first stage: finish this registered version (its weights)"
    )
    ap.add_argument("--datasets", type=Path, default=datasets_dir() / "synth")
    ap.add_argument("--models-dir", type=Path, default=None)
    ap.add_argument("--name", default=None, help="version name (default bench-det-YYYYMMDD-HHMM)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument(
        "--promote",
        choices=("if-target-met", "always", "never"),
        default="if-target-met",
        help="if-target-met also promotes when nothing is active yet: a station needs some model",
    )
    args = ap.parse_args(argv)
    if args.train_images < 3000:
        print(
            f"note: {args.train_images} training images, fewer than the 3,000 the shipped model needs", file=sys.stderr
        )

    from inspector.training.evaluate import evaluate_version, evaluation_text
    from inspector.training.export import export_text, export_version
    from inspector.training.progress import ProgressReporter
    from inspector.training.recipe import load_recipe
    from inspector.training.run import train_version

    t_start = time.perf_counter()
    mix = DefectMix.parse(args.train_defect_free, args.train_defects)
    train_data = synth_training_render(args.datasets, args.train_images, args.seed, mix, val=args.val)
    test_data = synth_test_render(args.datasets, args.test_images, args.test_seed)
    notes = [
        f"test set rendered with seed {args.test_seed} and the default defect mix (40% of items "
        f"defect-free, 1-3 defects on the others); training set with seed {args.seed}, "
        f"{mix.defect_free_p:.0%} defect-free items and {','.join(map(str, mix.counts))} defects on the others"
    ]
    version = args.finish_from
    if version is None:
        recipe = load_recipe(args.recipe).with_overrides(time_budget_min=args.minutes)
        one_stage = str(args.finish_recipe) == "none"
        with ProgressReporter(label=recipe.name) as reporter:
            version = train_version(
                train_data,
                recipe,
                root=args.models_dir,
                version=args.name if one_stage else None,
                threads=args.threads,
                report=reporter,
                notes=notes,
            ).version
        print(f"first stage registered as {version}", file=sys.stderr, flush=True)
    if str(args.finish_recipe) != "none":
        first = registry.load_meta(version, args.models_dir)
        finish = load_recipe(args.finish_recipe).with_overrides(time_budget_min=args.finish_minutes, init=version)
        with ProgressReporter(label=finish.name) as reporter:
            outcome = train_version(
                train_data,
                finish,
                root=args.models_dir,
                version=args.name,
                threads=args.threads,
                report=reporter,
                notes=[
                    *notes,
                    f"second stage of two: {finish.time_budget_min} min on whole frames at {finish.imgsz} px from "
                    f"{version} ({first['training']['epochs_run']} epochs, "
                    f"{first['training']['seconds'] / 60:.1f} min at {first['recipe']['imgsz']} px on crops)",
                ],
            )
        version = outcome.version
        meta = registry.load_meta(version, args.models_dir)
        total = (meta["training"]["seconds"] + first["training"]["seconds"]) / 60
        meta["training"]["stages"] = [
            {"version": first["version"], "recipe": first["recipe"]["name"], "seconds": first["training"]["seconds"]},
            {"version": version, "recipe": finish.name, "seconds": meta["training"]["seconds"]},
        ]
        meta["notes"].append(f"both stages together trained for {total:.1f} min")
        registry.save_meta(version, meta, args.models_dir)
    print(f"registered {version}; evaluating on {test_data}", file=sys.stderr, flush=True)
    ev = evaluate_version(version, test_data, split="test", root=args.models_dir, threads=args.threads)
    key = f"{ev['dataset']['name']}-test"
    print(evaluation_text(version, key, ev), flush=True)
    record = export_version(version, "onnx", root=args.models_dir, threads=args.threads)
    print(export_text("onnx", record), flush=True)

    root = registry.root_dir(args.models_dir)
    too_big = [p for p in (root / version).rglob("*") if p.is_file() and p.stat().st_size >= MAX_FILE_BYTES]
    for p in too_big:
        print(
            f"warning: {p} is {p.stat().st_size / 1e6:.1f} MB (the limit for shipped files is 15 MB)", file=sys.stderr
        )
    meta = registry.load_meta(version, root)
    verdict = target_verdict(meta.get("target"), ev)
    met = verdict is None or "**met**" in verdict
    print(f"target: {verdict}" if verdict else "no target in the recipe", flush=True)
    decision, note = promotion_decision(args.promote, met, ev, key, root)
    if decision:
        rec = registry.promote(version, by="make model", note=note, root=root)
        print(f"promoted {version} (previous: {rec['previous'] or 'none'}): {note}", flush=True)
    else:
        print(f"{version} not promoted: {note}; promote by hand with 'inspector models promote'", flush=True)
    print(f"total {(time.perf_counter() - t_start) / 60:.1f} min", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    cli_main(main)
