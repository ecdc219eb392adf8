"""``make bench-transfer``: does starting from our own weights help with little data?

For seeded subsets of 10%, 25% and 100% of NEU-DET's train split, two models train under the
same budget and are evaluated on the full test split: one from scratch, one starting from
our own weights, the general defect-features checkpoint of ``make pretrain`` (backbone and
neck transferred, head resized to NEU-DET's six classes, fine-tuning schedule). Both use the
small-data aids (image caching and class-balanced sampling). A third, ``auto``, trains with the
recipe ``inspector train`` chooses by itself from that subset (from the same weights when it
picks fine-tuning). Results go to ``bench/transfer.json`` as
``{"10": {"scratch": mAP50, "ours": mAP50, "auto": mAP50}, ...}``, keyed by the percentage.

Six runs of 30 minutes do not fit in one sitting, so every finished run is written at once
with a key made of what decides its result (share, side, budget, seed, the recipe and the
sha256 of the starting weights); a later ``make bench-transfer`` keeps the runs whose key
is unchanged and trains only the others (``--fresh`` trains them all again).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from inspector.config import SERVED_NMS_IOU
from inspector.paths import REPO_ROOT
from inspector.training.autorecipe import Advice
from inspector.training.bench_neu import import_neu
from inspector.training.recipe import Recipe
from inspector.training.script import cli_main

PERCENTS = (10, 25, 100)


def subset_size(percent: float, n_train: int) -> int | None:
    """How many training images a percentage keeps (at least one); ``None`` for the whole split."""
    if not 0 < percent <= 100:
        raise ValueError(f"a training share is a percentage in (0, 100], not {percent}")
    if percent == 100:
        return None
    return max(1, round(n_train * percent / 100))


def run_key(percent: int, label: str, minutes: float, seed: int, recipe_yaml: str, init_sha256: str | None) -> str:
    """What decides a run's result: a finished run with the same key is not trained again."""
    spec = {"percent": percent, "label": label, "minutes": minutes, "seed": seed, "recipe": recipe_yaml}
    spec["init_sha256"] = init_sha256
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def recipe_key_text(recipe: Recipe) -> str:
    """The recipe as it enters a run key: settings left at their defaults are left out, so a
    field added to recipes later (at a default that changes nothing) keeps finished runs valid."""
    return yaml.safe_dump(recipe.model_dump(exclude_none=True, exclude_defaults=True), sort_keys=True)


def table(details: dict[str, Any]) -> dict[str, dict[str, float]]:
    """``{"10": {"scratch": mAP50, "ours": mAP50}, ...}`` from the runs' details, shares in order."""
    out: dict[str, dict[str, float]] = {}
    for run in sorted(details, key=lambda k: (int(k.split("-")[0]), k)):
        pct, label = run.split("-", 1)
        out.setdefault(pct, {})[label] = details[run]["map50"]
    return out


def subset_advice(data_yaml: Path, n: int | None, seed: int, checkpoint: str, minutes: float) -> Advice:
    """What ``inspector train`` would choose for the seeded subset of ``n`` training images (all when None)."""
    import dataclasses

    from inspector.data.formats import read_data_yaml
    from inspector.training.autorecipe import advise, measure
    from inspector.training.smalldata import seeded_subset

    spec = read_data_yaml(data_yaml)
    if n is not None:
        train = seeded_subset(spec.split("train"), n, seed)
        spec = dataclasses.replace(spec, images=train + [r for r in spec.images if (r.split or "train") != "train"])
    return advise(measure(spec, checkpoint=checkpoint), minutes)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m inspector.training.bench_transfer", description=__doc__)
    ap.add_argument("--src", type=Path, default=REPO_ROOT.parent / "shared" / "datasets" / "neu-det")
    ap.add_argument("--minutes", type=float, default=30.0, help="training budget of each of the runs")
    ap.add_argument(
        "--percents", default=",".join(map(str, PERCENTS)), help="comma-separated shares of the train split, in %%"
    )
    ap.add_argument(
        "--sides",
        default="scratch,ours,auto",
        help="which runs of each share: scratch, ours, auto (the recipe train picks by itself), comma-separated",
    )
    ap.add_argument(
        "--init",
        default="pretrain",
        help="our weights: pretrain (the defect-features checkpoint, else the active model) | active | "
        "a registry version | a .pt file",
    )
    ap.add_argument("--scratch-recipe", type=Path, default=REPO_ROOT / "models" / "recipes" / "neu-det.yaml")
    ap.add_argument("--transfer-recipe", type=Path, default=REPO_ROOT / "models" / "recipes" / "neu-transfer.yaml")
    ap.add_argument("--models-dir", type=Path, default=None, help="registry holding the --init version")
    ap.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "transfer.json")
    ap.add_argument("--work", type=Path, default=REPO_ROOT / "bench" / "work" / "transfer")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--fresh", action="store_true", help="train the chosen runs again, even those already measured")
    args = ap.parse_args(argv)

    from inspector import registry, runtime
    from inspector.training.bench_neu import run_one
    from inspector.training.provenance import git_state, hardware
    from inspector.training.recipe import load_recipe
    from inspector.training.run import newest_pretrain, resolve_init

    percents = [int(s) for s in args.percents.split(",") if s.strip()]
    sides = [s.strip() for s in args.sides.split(",") if s.strip()]
    if not sides or set(sides) - {"scratch", "ours", "auto"}:
        raise ValueError(f"--sides takes scratch, ours and/or auto, not {args.sides!r}")
    data_yaml = import_neu(args.src, args.work / "neu-det")
    from inspector.data.formats import read_data_yaml

    n_train = len(read_data_yaml(data_yaml).image_paths("train"))
    init_weights, init_label = resolve_init(args.init, registry.root_dir(args.models_dir))
    # how the auto side's advice names the weights: the checkpoint's version, else what --init gave
    ours_name = (newest_pretrain(registry.root_dir(args.models_dir)) if args.init == "pretrain" else None) or args.init
    if init_weights is None:
        raise ValueError("no weights of ours to start from: run 'make model' first or pass --init VERSION|PATH")
    n_threads = runtime.configure(args.threads)
    root = args.work / "registry"
    details_path = args.out.with_name(args.out.stem + ".details.json")
    done: dict[str, Any] = {}
    if details_path.is_file():
        done = json.loads(details_path.read_text(encoding="utf-8")).get("runs", {})
    init_sha = _sha256(init_weights)
    # runs measured earlier (other shares or sides) stay in the files until they are run again
    details: dict[str, Any] = dict(done)
    results = table(details)
    run_info: dict[str, Any] = {
        "budget_minutes": args.minutes,
        "init": init_label,
        "init_sha256": init_sha,
        "seed": args.seed,
        "hardware": hardware(n_threads),
        "git": git_state(),
        "runs": details,
    }
    for pct in percents:
        n = subset_size(pct, n_train)
        for label, path, init in (
            ("scratch", args.scratch_recipe, "scratch"),
            ("ours", args.transfer_recipe, str(init_weights)),
            ("auto", None, str(init_weights)),
        ):
            if label not in sides:
                continue
            advice: list[str] = []
            if path is None:
                # the recipe train picks for this subset (its own balance choice kept); given our weights
                # as the checkpoint, it fine-tunes from the same start as "ours"
                chosen = subset_advice(data_yaml, n, args.seed, ours_name, args.minutes)
                base, advice = chosen.to_recipe(), chosen.comments()
                update: dict[str, Any] = {"subset": n, "subset_seed": args.seed}
                name = f"{base.name}-{pct}pct"
            else:
                base = load_recipe(path)
                update = {"subset": n, "subset_seed": args.seed, "balance": True}
                name = f"{base.name}-{label}-{pct}pct"
            recipe = base.with_overrides(
                time_budget_min=args.minutes,
                init=init,
                name=name,
                small_data=base.small_data.model_copy(update=update).model_dump(),
            )
            own = recipe.init != "scratch"
            generic = recipe_key_text(recipe.model_copy(update={"init": "ours" if own else "scratch"}))
            key = run_key(pct, label, args.minutes, args.seed, generic, init_sha if own else None)
            earlier = done.get(f"{pct}-{label}")
            # kept when nothing that decides it changed and it was scored under the station's suppression
            # (a record without nms_iou was scored at ultralytics' 0.7)
            kept = earlier is not None and earlier.get("key") == key and earlier.get("nms_iou") == SERVED_NMS_IOU
            if kept and not args.fresh:
                print(f"{pct}% {label}: measured before (key {key}), kept", file=sys.stderr, flush=True)
                rec = earlier
            else:
                what = f"{label} {pct}% ({n or n_train} images)"
                rec = run_one(what, recipe, data_yaml, root, args.work, n_threads, advice=advice)
                rec |= {"train_images": n or n_train, "key": key, "finished_at": registry.now_iso()}
                if own:
                    rec |= {"init": init_label, "init_sha256": init_sha}
            details[f"{pct}-{label}"] = rec
            results = table(details)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            # every finished run is kept at once: a stopped bench resumes from here
            args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
            details_path.write_text(json.dumps(run_info, indent=2) + "\n", encoding="utf-8")
        print(f"{pct}% of the train split: {results.get(str(pct), {})}", file=sys.stderr, flush=True)
    print(json.dumps(results, indent=2))
    print(f"written to {args.out} (run details in {details_path})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    cli_main(main)
