"""``make model``: the model the station ships with, from nothing to promoted.

Trains the chain of stages the plan lists (``models/recipes/default-model.plan.yaml``), each on
the seeded training render at its own size and from the version the stage before registered,
then evaluates the last version on the test render of another seed (at the last stage's size),
exports ONNX with a parity check, and promotes it. The run can be done in parts: the stages done
are recorded after each one (``models/.make-model.json``), and the next run continues with the
first stage not done (``--restart`` starts over; a stage stopped mid-way starts over).
A model that misses its target is still registered (the card says so); it is promoted only when
nothing is active or it beats the active version on the same test set.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inspector import registry
from inspector.data.formats import read_data_yaml
from inspector.data.synth.scene import DefectMix
from inspector.paths import REPO_ROOT, datasets_dir
from inspector.training.card import target_verdict
from inspector.training.model_plan import (
    PROGRESS_FILE,
    ModelPlan,
    PlanStage,
    Progress,
    StageDone,
    first_unfinished,
    load_plan,
    load_progress,
    save_progress,
)
from inspector.training.script import cli_main

if TYPE_CHECKING:
    from inspector.training.recipe import Recipe

MAX_FILE_BYTES = 15_000_000
FRAME_SIZE = (640, 480)  # the renderer's default size: renders at it keep their folder names (no size suffix)
PLAN = REPO_ROOT / "models" / "recipes" / "default-model.plan.yaml"
RATE_SAMPLE = 8  # images rendered to measure the rate the plan's time estimate uses


def synth_dataset(
    out_dir: Path,
    n_images: int,
    seed: int,
    *,
    val: float,
    test: float,
    mix: DefectMix | None = None,
    size: tuple[int, int] = FRAME_SIZE,
) -> Path:
    """Render a dataset once; an existing one with the same image count is reused."""
    data_yaml = out_dir / "data.yaml"
    if rendered(out_dir, n_images):
        print(f"reusing {data_yaml} ({n_images} images)", file=sys.stderr, flush=True)
        return data_yaml
    from inspector.data.synth import generate

    t0 = time.perf_counter()
    print(f"rendering {n_images} images (seed {seed}) into {out_dir}...", file=sys.stderr, flush=True)
    path = Path(generate(out_dir, n_images, seed, size=size, val=val, test=test, mix=mix or DefectMix()))
    print(f"rendered in {(time.perf_counter() - t0) / 60:.1f} min", file=sys.stderr, flush=True)
    return path


def rendered(out_dir: Path, n_images: int) -> bool:
    """Whether ``out_dir`` holds a finished render of ``n_images`` (its data.yaml is written last)."""
    data_yaml = out_dir / "data.yaml"
    return data_yaml.is_file() and len(read_data_yaml(data_yaml).images) == n_images


def training_render_dir(datasets: Path, n_images: int, seed: int, mix: DefectMix, size: tuple[int, int]) -> Path:
    """One folder per seed, image count, defect mix and size."""
    return datasets / f"bench-s{seed}-{n_images}{mix_suffix(mix)}{size_suffix(size)}"


def eval_render_dir(datasets: Path, n_images: int, seed: int, size: tuple[int, int]) -> Path:
    return datasets / f"bench-s{seed}-{n_images}-test{size_suffix(size)}"


def synth_training_render(
    datasets: Path, n_images: int, seed: int, mix: DefectMix, val: float = 0.08, size: tuple[int, int] = FRAME_SIZE
) -> Path:
    """The seeded training render (train and val)."""
    out = training_render_dir(datasets, n_images, seed, mix, size)
    return synth_dataset(out, n_images, seed, val=val, test=0.0, mix=mix, size=size)


def synth_test_render(datasets: Path, n_images: int, seed: int, size: tuple[int, int] = FRAME_SIZE) -> Path:
    """The test render of another seed with the default defect mix, as the cards measure on it."""
    # the generator keeps a training share; ~1% of this render goes unused
    out = eval_render_dir(datasets, n_images, seed, size)
    return synth_dataset(out, n_images, seed, val=0.0, test=0.99, size=size)


def synth_validation_twin(
    datasets: Path, n_images: int, seed: int, val: float, size: tuple[int, int] = FRAME_SIZE
) -> Path:
    """The training render's validation images drawn with the bench's default mix, for operating points.

    Operating points and the blind-spot base rates are measured where defects come as often as on
    the bench; the training render's own validation split is richer in them.
    """
    out = datasets / f"bench-s{seed}-{n_images}-val-default{size_suffix(size)}"
    data_yaml = out / "data.yaml"
    if data_yaml.is_file():
        print(f"reusing {data_yaml}", file=sys.stderr, flush=True)
        return data_yaml
    from inspector.data.synth import generate

    return Path(generate(out, n_images, seed, size=size, val=val, test=0.0, only="val"))


def mix_suffix(mix: DefectMix) -> str:
    """A dataset folder's name tells a non-default defect mix (``-df15-d2334``): one render per mix."""
    if mix == DefectMix():
        return ""
    return f"-df{round(mix.defect_free_p * 100)}-d{''.join(str(c) for c in mix.counts)}"


def size_suffix(size: tuple[int, int]) -> str:
    """A render at another size than the serving frame's gets its own folder (``-1280x960``)."""
    return "" if tuple(size) == FRAME_SIZE else f"-{size[0]}x{size[1]}"


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


def defect_mix(plan: ModelPlan) -> DefectMix:
    return DefectMix(plan.training_data.defect_free, tuple(plan.training_data.defects))


def stage_recipes(plan_path: Path, plan: ModelPlan) -> list[Recipe]:
    """Each stage's recipe (files beside the plan) with the plan's budget in place of its own."""
    from inspector.training.recipe import load_recipe

    return [load_recipe(plan_path.parent / s.recipe).with_overrides(time_budget_min=s.minutes) for s in plan.stages]


def stage_index(text: str, names: list[str]) -> int:
    """A stage named on the command line by its number (from 1) or its recipe's name -> its index."""
    if text.isdigit() and 1 <= int(text) <= len(names):
        return int(text) - 1
    if text in names:
        return names.index(text)
    raise ValueError(f"no stage {text!r} in the plan: give 1 to {len(names)} or one of {', '.join(names)}")


def plan_with(
    plan: ModelPlan, names: list[str], minutes: list[str], train_images: int | None, test_images: int | None
) -> ModelPlan:
    """The plan after the command line's changes: ``STAGE=MIN`` budgets and image counts."""
    raw = plan.model_dump()
    for item in minutes:
        stage, sep, value = item.partition("=")
        try:
            budget = float(value) if sep else 0.0
        except ValueError:
            budget = 0.0
        if budget <= 0:
            raise ValueError(f"--minutes takes STAGE=MINUTES with minutes above 0, got {item!r}")
        raw["stages"][stage_index(stage, names)]["minutes"] = budget
    if train_images is not None:
        raw["training_data"]["images"] = train_images
    if test_images is not None:
        raw["test_data"]["images"] = test_images
    return ModelPlan.model_validate(raw)


def render_rate(size: tuple[int, int], mix: DefectMix) -> float:
    """Images/s a render at ``size`` makes here now: a few timed in this process, scaled to the render workers."""
    import tempfile

    from inspector.data.synth import generate

    with tempfile.TemporaryDirectory(prefix="inspector-rate-") as tmp:
        generate(Path(tmp) / "warm", 1, seed=0, size=size, val=0.0, test=0.0, progress=False, workers=1, mix=mix)
        t0 = time.perf_counter()
        generate(Path(tmp) / "timed", RATE_SAMPLE, 1, size=size, val=0.0, test=0.0, progress=False, workers=1, mix=mix)
        seconds = time.perf_counter() - t0
    return RATE_SAMPLE / seconds * min(2, os.cpu_count() or 1)  # generate's own default worker count


def render_minutes(todo: list[tuple[Path, int, tuple[int, int]]], mix: DefectMix) -> tuple[float, list[str]]:
    """Minutes the renders still to make will take, and a line about each render."""
    rates: dict[tuple[int, int], float] = {}
    total, lines = 0.0, []
    for out_dir, n, size in todo:
        if rendered(out_dir, n):
            lines.append(f"{out_dir.name}: rendered already")
            continue
        if size not in rates:
            rates[size] = render_rate(size, mix)
        minutes = n / rates[size] / 60
        total += minutes
        lines.append(
            f"{out_dir.name}: {n} images at {size[0]}x{size[1]}, about {minutes:.0f} min "
            f"({rates[size]:.1f} images/s, timed on {RATE_SAMPLE})"
        )
    return total, lines


def print_plan(
    plan: ModelPlan, names: list[str], progress: Progress, stop: int, renders: tuple[float, list[str]]
) -> None:
    """The chain with each stage's budget, what is done, and what this part is expected to take."""
    start, n = len(progress.done), len(plan.stages)
    out = [f"make model: {n} stages, {plan.budget_min:g} min of training in all (plan {progress.plan})"]
    for i, (stage, name) in enumerate(zip(plan.stages, names, strict=True)):
        done = progress.done[i] if i < start else None
        state = f"done: {done.version} ({done.seconds / 60:.1f} min)" if done else ("" if i < stop else "later")
        out.append(f"  {i + 1}. {name:<26} {stage.size:>9} {stage.minutes:>5g} min  {state}".rstrip())
    budget = sum(s.minutes for s in plan.stages[start:stop])
    out.append(f"this part: stages {start + 1}-{stop}, {budget:g} min of training plus each stage's final validation")
    out += [f"  render {line}" for line in renders[1]]
    tail = ", then the evaluation and the ONNX export" if stop == n else ""
    out.append(f"estimated: {budget + renders[0]:.0f} min (training budgets and renders){tail}")
    print("\n".join(out), file=sys.stderr, flush=True)


def run_stages(
    plan: ModelPlan,
    recipes: list[Recipe],
    progress: Progress,
    progress_path: Path,
    *,
    stop: int,
    render: Callable[[PlanStage], Path],
    root: Path | None,
    threads: int | None,
    name: str | None,
    notes: list[str],
) -> None:
    """Train stages from the first not done up to ``stop``, each from the previous one's version.

    The progress file is rewritten after each stage: a run stopped later continues after it.
    """
    from inspector.training.progress import ProgressReporter
    from inspector.training.run import train_version

    n = len(plan.stages)
    for i in range(len(progress.done), stop):
        stage, recipe = plan.stages[i], recipes[i]
        t0 = time.perf_counter()
        data = render(stage)
        previous = progress.done[-1].version if progress.done else None
        if previous is not None:
            recipe = recipe.with_overrides(init=previous)
        origin = f"from {previous}" if previous else f"from {recipe.init}"
        what = f"stage {i + 1} of {n} ({recipe.name}): {stage.minutes:g} min on the {stage.size} render, {origin}"
        print(what, file=sys.stderr, flush=True)
        with ProgressReporter(label=recipe.name) as reporter:
            outcome = train_version(
                data,
                recipe,
                root=root,
                version=name if i == n - 1 else None,
                threads=threads,
                report=reporter,
                notes=[*notes, f"make model {what}"],
            )
        progress.done.append(
            StageDone(
                recipe=recipe.name,
                size=stage.size,
                version=outcome.version,
                budget_min=stage.minutes,
                seconds=float(outcome.meta["training"]["seconds"]),
                wall_seconds=round(time.perf_counter() - t0, 1),
            )
        )
        save_progress(progress_path, progress)
        print(f"stage {i + 1} of {n} registered as {outcome.version}", file=sys.stderr, flush=True)


def record_stages(version: str, progress: Progress, root: Path | None) -> None:
    """The last version's meta lists every stage (its card shows them) and the training time of all."""
    meta = registry.load_meta(version, root)
    meta["training"]["stages"] = [
        {
            "stage": i + 1,
            "version": d.version,
            "recipe": d.recipe,
            "size": d.size,
            "budget_min": d.budget_min,
            "seconds": d.seconds,
        }
        for i, d in enumerate(progress.done)
    ]
    meta["training"]["total_minutes"] = round(sum(d.seconds for d in progress.done) / 60, 1)
    registry.save_meta(version, meta, root)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m inspector.training.default_model", description=__doc__)
    ap.add_argument("--plan", type=Path, default=PLAN, help="the stages, their render sizes and budgets")
    ap.add_argument("--restart", action="store_true", help="start over instead of continuing an unfinished run")
    ap.add_argument(
        "--until", metavar="STAGE", default=None, help="stop after this stage (number or recipe name); rerun to go on"
    )
    ap.add_argument(
        "--minutes",
        metavar="STAGE=MIN",
        action="append",
        default=[],
        help="another training budget for a stage (number or recipe name); repeatable",
    )
    ap.add_argument("--train-images", type=int, default=None, help="training + validation images (the plan's)")
    ap.add_argument("--test-images", type=int, default=None, help="test images (the plan's)")
    ap.add_argument("--datasets", type=Path, default=datasets_dir() / "synth")
    ap.add_argument("--models-dir", type=Path, default=None)
    ap.add_argument("--name", default=None, help="the last stage's version name (default <recipe>-YYYYMMDD-HHMM)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument(
        "--promote",
        choices=("if-target-met", "always", "never"),
        default="if-target-met",
        help="if-target-met also promotes when nothing is active yet: a station needs some model",
    )
    args = ap.parse_args(argv)

    plan = load_plan(args.plan)
    recipes = stage_recipes(args.plan, plan)
    names = [r.name for r in recipes]
    plan = plan_with(plan, names, args.minutes, args.train_images, args.test_images)
    recipes = [r.with_overrides(time_budget_min=s.minutes) for r, s in zip(recipes, plan.stages, strict=True)]
    n = len(plan.stages)
    stop = n if args.until is None else stage_index(args.until, names) + 1
    td, test = plan.training_data, plan.test_data
    if td.images < 3000:
        print(f"note: {td.images} training images, fewer than the 3,000 the shipped model needs", file=sys.stderr)

    root = registry.root_dir(args.models_dir)
    progress_path = root / PROGRESS_FILE
    progress = None if args.restart else load_progress(progress_path)
    if progress is None:
        progress = Progress.fresh(args.plan, plan)
    else:
        progress.parts += 1
    start = first_unfinished(plan, names, progress, progress_path)
    if start:
        last = progress.done[-1].version
        try:
            registry.check_version(last, root)
        except registry.RegistryError as exc:
            raise ValueError(f"the unfinished run cannot go on from stage {start} ({exc}); run with --restart") from exc
    if stop <= start and stop < n:
        print(f"stage {stop} is done already ({progress.done[stop - 1].version}): nothing to do", file=sys.stderr)
        return 0

    mix = defect_mix(plan)
    todo = [
        (training_render_dir(args.datasets, s.images or td.images, td.seed, mix, s.wh), s.images or td.images, s.wh)
        for s in plan.stages
    ]
    todo = list(dict.fromkeys(todo[start:stop]))
    if stop == n:
        last_size = plan.stages[-1].wh
        todo.append((eval_render_dir(args.datasets, test.images, test.seed, last_size), test.images, last_size))
    print_plan(plan, names, progress, stop, render_minutes(todo, mix))
    save_progress(progress_path, progress)

    def render(stage: PlanStage) -> Path:
        return synth_training_render(args.datasets, stage.images or td.images, td.seed, mix, val=td.val, size=stage.wh)

    notes = [
        f"test set rendered with seed {test.seed} and the default defect mix (40% of items defect-free, 1-3 "
        f"defects on the others); training set with seed {td.seed}, {mix.defect_free_p:.0%} defect-free items "
        f"and {','.join(map(str, mix.counts))} defects on the others, rendered at each stage's size"
    ]
    run_stages(
        plan,
        recipes,
        progress,
        progress_path,
        stop=stop,
        render=render,
        root=args.models_dir,
        threads=args.threads,
        name=args.name,
        notes=notes,
    )
    if stop < n:
        print(
            f"stopped after stage {stop} of {n} as asked; rerun make model to continue with stage {stop + 1}",
            file=sys.stderr,
            flush=True,
        )
        return 0

    t_final = time.perf_counter()
    version = progress.done[-1].version
    record_stages(version, progress, args.models_dir)
    test_data = synth_test_render(args.datasets, test.images, test.seed, size=plan.stages[-1].wh)
    print(f"evaluating {version} on {test_data}", file=sys.stderr, flush=True)
    from inspector.training.evaluate import evaluate_version, evaluation_text
    from inspector.training.export import export_text, export_version

    ev = evaluate_version(version, test_data, split="test", root=args.models_dir, threads=args.threads)
    key = f"{ev['dataset']['name']}-test"
    print(evaluation_text(version, key, ev), flush=True)
    record = export_version(version, "onnx", root=args.models_dir, threads=args.threads)
    print(export_text("onnx", record), flush=True)
    final = plan.stages[-1]
    twin = synth_validation_twin(args.datasets, final.images or td.images, td.seed, td.val, final.wh)
    from inspector.training.card import render_operating_points
    from inspector.training.thresholds import choose_for_version

    # as the station serves it: tiles of the item (a frame no larger than one tile is one pass)
    points = choose_for_version(version, twin, root=args.models_dir, threads=args.threads, tiling="item")
    print(render_operating_points(points), flush=True)

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
    progress_path.unlink(missing_ok=True)  # the run is complete: the next make model starts a new one
    stages_s = sum(d.wall_seconds for d in progress.done)
    final_s = time.perf_counter() - t_final
    print(
        f"make model took {(stages_s + final_s) / 60:.1f} min in {progress.parts} part(s): "
        f"{stages_s / 60:.1f} min in the {n} stages (renders included; training "
        f"{sum(d.seconds for d in progress.done) / 60:.1f} min of a {plan.budget_min:g}-min budget), "
        f"{final_s / 60:.1f} min for the test render, evaluation and export",
        file=sys.stderr,
        flush=True,
    )
    return 0


if __name__ == "__main__":
    cli_main(main)
