"""``make pretrain``: the general defect-features checkpoint that fine-tuning starts from.

No pretrained weights can be downloaded here or at many sites, and a returns centre has a few
hundred labelled photos. This trains the ``defect-pretrain`` recipe, which goes on from the
shipped default model (its ``init``), on the synthetic bench (the same seeded training render as
the default model) plus any labelled datasets the engineer adds with ``--add`` (their train and
val splits; class lists are merged by name), evaluates it,
and registers it as a version with the ``pretrain`` role. It is never promoted:
``inspector train --init pretrain`` (the default of the fine-tuning recipes) starts from it.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

from inspector import registry
from inspector.data.formats import merge_datasets, read_data_yaml
from inspector.data.synth.scene import DefectMix
from inspector.paths import REPO_ROOT, datasets_dir
from inspector.training.default_model import MAX_FILE_BYTES, synth_test_render, synth_training_render
from inspector.training.script import cli_main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m inspector.training.pretrain", description=__doc__)
    ap.add_argument("--recipe", type=Path, default=REPO_ROOT / "models" / "recipes" / "defect-pretrain.yaml")
    ap.add_argument("--minutes", type=float, default=None, help="training budget (default: the recipe's)")
    ap.add_argument(
        "--add",
        type=Path,
        action="append",
        default=[],
        metavar="DATA_YAML",
        help="a labelled YOLO dataset to learn from too (repeatable; its test split is left out)",
    )
    ap.add_argument("--train-images", type=int, default=3200, help="synthetic training + validation images")
    ap.add_argument("--test-images", type=int, default=600, help="synthetic test images (another seed)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--test-seed", type=int, default=2)
    ap.add_argument("--datasets", type=Path, default=datasets_dir() / "synth")
    ap.add_argument("--models-dir", type=Path, default=None)
    ap.add_argument("--name", default=None, help="version name (default defect-pretrain-YYYYMMDD-HHMM)")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)

    from inspector.training.evaluate import evaluate_version, evaluation_text
    from inspector.training.progress import ProgressReporter
    from inspector.training.recipe import load_recipe
    from inspector.training.run import train_version

    recipe = load_recipe(args.recipe).with_overrides(time_budget_min=args.minutes)
    if recipe.role != "pretrain":
        raise ValueError(f"{args.recipe}: a pretraining recipe says 'role: pretrain'")
    t_start = time.perf_counter()
    mix = DefectMix.parse(0.15, "1,2,2,3,3,4")  # the default model's defect-rich training render
    synth = synth_training_render(args.datasets, args.train_images, args.seed, mix)
    notes = [f"synthetic bench: {synth.parent.name} (seed {args.seed}, 15% defect-free items, 1-4 defects)"]
    data = synth
    if args.add:
        specs = [read_data_yaml(synth)] + [read_data_yaml(p) for p in args.add]
        tag = hashlib.sha256("\n".join(str(p.absolute()) for p in args.add).encode()).hexdigest()[:8]
        data = merge_datasets(specs, args.datasets / f"pretrain-merged-{tag}")
        for p, spec in zip(args.add, specs[1:], strict=True):
            counts = ", ".join(f"{len(spec.split(s))} {s}" for s in ("train", "val"))
            notes.append(f"added dataset {p} ({counts} images; classes {', '.join(spec.names)})")
    with ProgressReporter(label=recipe.name) as reporter:
        outcome = train_version(
            data, recipe, root=args.models_dir, version=args.name, threads=args.threads, report=reporter, notes=notes
        )
    version = outcome.version
    print(f"registered {version}", file=sys.stderr, flush=True)
    if args.add:  # its classes are the union: the merged validation split is what it can be measured on
        ev_data, split = data, "val"
    else:
        ev_data = synth_test_render(args.datasets, args.test_images, args.test_seed)
        split = "test"
    ev = evaluate_version(version, ev_data, split=split, root=args.models_dir, threads=args.threads)
    key = f"{ev['dataset']['name']}-{split}"
    print(evaluation_text(version, key, ev), flush=True)
    root = registry.root_dir(args.models_dir)
    for p in (root / version).rglob("*"):
        if p.is_file() and p.stat().st_size >= MAX_FILE_BYTES:
            print(f"warning: {p} is {p.stat().st_size / 1e6:.1f} MB (the limit for shipped files is 15 MB)")
    print(
        f"{version}: a pretraining checkpoint, not promoted; fine-tune from it with "
        f"'inspector train --init pretrain' (total {(time.perf_counter() - t_start) / 60:.1f} min)",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    cli_main(main)
