"""``make bench-transfer``: does starting from our own weights help with little data?

For seeded subsets of 10%, 25% and 100% of NEU-DET's train split, two models train under the
same budget and are evaluated on the full test split: one from scratch, one starting
from our shipped model (backbone and neck transferred, head resized to NEU-DET's six
classes, fine-tuning schedule). Both use the small-data aids (image caching and
class-balanced sampling). Results go to ``bench/transfer.json`` as
``{"10": {"scratch": mAP50, "ours": mAP50}, ...}``, keyed by the percentage.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from inspector.paths import REPO_ROOT
from inspector.training.bench_neu import import_neu
from inspector.training.script import cli_main

PERCENTS = (10, 25, 100)


def subset_size(percent: float, n_train: int) -> int | None:
    """How many training images a percentage keeps (at least one); ``None`` for the whole split."""
    if not 0 < percent <= 100:
        raise ValueError(f"a training share is a percentage in (0, 100], not {percent}")
    if percent == 100:
        return None
    return max(1, round(n_train * percent / 100))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m inspector.training.bench_transfer", description=__doc__)
    ap.add_argument("--src", type=Path, default=REPO_ROOT.parent / "shared" / "datasets" / "neu-det")
    ap.add_argument("--minutes", type=float, default=30.0, help="training budget of each of the runs")
    ap.add_argument(
        "--percents", default=",".join(map(str, PERCENTS)), help="comma-separated shares of the train split, in %%"
    )
    ap.add_argument("--init", default="active", help="our weights: active | a registry version | a .pt file")
    ap.add_argument("--scratch-recipe", type=Path, default=REPO_ROOT / "models" / "recipes" / "neu-det.yaml")
    ap.add_argument("--transfer-recipe", type=Path, default=REPO_ROOT / "models" / "recipes" / "neu-transfer.yaml")
    ap.add_argument("--models-dir", type=Path, default=None, help="registry holding the --init version")
    ap.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "transfer.json")
    ap.add_argument("--work", type=Path, default=REPO_ROOT / "bench" / "work" / "transfer")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)

    from inspector import registry, runtime
    from inspector.training.bench_neu import run_one
    from inspector.training.provenance import git_state, hardware
    from inspector.training.recipe import load_recipe
    from inspector.training.run import resolve_init

    percents = [int(s) for s in args.percents.split(",") if s.strip()]
    data_yaml = import_neu(args.src, args.work / "neu-det")
    from inspector.training.dataset import read_data_yaml

    n_train = len(read_data_yaml(data_yaml).images("train"))
    init_weights, init_label = resolve_init(args.init, registry.root_dir(args.models_dir))
    if init_weights is None:
        raise ValueError("no weights of ours to start from: run 'make model' first or pass --init VERSION|PATH")
    n_threads = runtime.configure(args.threads)
    root = args.work / "registry"
    results: dict[str, Any] = {}
    details: dict[str, Any] = {}
    for pct in percents:
        n = subset_size(pct, n_train)
        row: dict[str, float] = {}
        for label, path, init in (
            ("scratch", args.scratch_recipe, "scratch"),
            ("ours", args.transfer_recipe, str(init_weights)),
        ):
            base = load_recipe(path)
            recipe = base.with_overrides(
                time_budget_min=args.minutes,
                init=init,
                name=f"{base.name}-{label}-{pct}pct",
                small_data=base.small_data.model_copy(
                    update={"subset": n, "subset_seed": args.seed, "balance": True}
                ).model_dump(),
            )
            rec = run_one(f"{label} {pct}% ({n or n_train} images)", recipe, data_yaml, root, args.work, n_threads)
            rec["train_images"] = n or n_train
            row[label] = rec["map50"]
            details[f"{pct}-{label}"] = rec
        results[str(pct)] = row
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")  # keep partial results
        print(f"{pct}% of the train split: {row}", file=sys.stderr, flush=True)
    run_info = {
        "budget_minutes": args.minutes,
        "init": init_label,
        "seed": args.seed,
        "hardware": hardware(n_threads),
        "git": git_state(),
        "runs": details,
    }
    details_path = args.out.with_name(args.out.stem + ".details.json")
    details_path.write_text(json.dumps(run_info, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2))
    print(f"written to {args.out} (run details in {details_path})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    cli_main(main)
