"""``inspector data``: the synthetic bench (synth, faint) and the dataset tools (import, convert, validate, ...).

Imports here stay light: torch and the renderers load only inside the commands that need them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from inspector.data.formats import DatasetSpec
    from inspector.training.autorecipe import Advice

data_app = typer.Typer(
    help="Synthetic bench data and dataset tools: synth, faint, import, export, convert, validate, stats, split.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

FormatOpt = Annotated[
    str | None, typer.Option("--format", "-f", help="yolo, coco, voc, labelstudio or cvat (default: detected)")
]
NamesOpt = Annotated[
    str | None,
    typer.Option(
        "--names", help="class names in id order: 'a,b,c', a file with one per line, a labelmap or a data.yaml"
    ),
]
LinkOpt = Annotated[str, typer.Option("--link", help="how images are placed in the output: symlink, copy or hardlink")]
ImagesOpt = Annotated[
    Path | None, typer.Option("--images", help="folder to look for images in (COCO, Label Studio, CVAT)")
]
SkipMissingOpt = Annotated[
    bool, typer.Option("--skip-missing", help="leave out images the annotations list but the folder lacks")
]


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"size must look like 640x480, got {text!r}") from None
    return w, h


def _names(names: str | None) -> tuple[str, ...] | None:
    from inspector.data.formats.spec import names_from_arg

    return names_from_arg(names)


def _check_format(fmt: str | None) -> None:
    from inspector.data.formats import FORMATS

    if fmt is not None and fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


@data_app.command()
def synth(
    out: Annotated[Path | None, typer.Option("--out", help="output folder for the YOLO dataset")] = None,
    images: Annotated[int, typer.Option("--images", "-n", min=1, help="number of images")] = 1000,
    seed: Annotated[int, typer.Option(help="dataset seed: same seed, same images")] = 0,
    size: Annotated[str, typer.Option(help="image size WxH")] = "640x480",
    val: Annotated[float, typer.Option(min=0.0, max=0.9)] = 0.15,
    test: Annotated[float, typer.Option(min=0.0, max=0.9)] = 0.15,
    workers: Annotated[int | None, typer.Option(min=1, help="worker processes (default: up to 2)")] = None,
    defect_free: Annotated[
        float, typer.Option("--defect-free", min=0.0, max=1.0, help="share of items drawn without defects")
    ] = 0.4,
    defects_per_item: Annotated[
        str, typer.Option("--defects-per-item", help="counts a damaged item's defects are drawn from, e.g. 1,1,1,2,2,3")
    ] = "1,1,1,2,2,3",
    contact_sheet: Annotated[
        Path | None, typer.Option("--contact-sheet", help="also (or only) write a PNG grid of 24 labelled samples")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
) -> None:
    """Render the synthetic returns bench into a YOLO dataset (images, labels, JSON sidecars)."""
    wh = _size(size)
    if out is None and contact_sheet is None:
        raise ValueError("give --out DIR (a dataset) and/or --contact-sheet PATH")
    import torch

    from inspector.data.synth import DefectMix, generate
    from inspector.data.synth import contact_sheet as sheet

    try:
        mix = DefectMix.parse(defect_free, defects_per_item)
    except ValueError as exc:
        raise ValueError(f"--defects-per-item {defects_per_item!r}: {exc}") from exc
    torch.set_num_threads(1)  # rendering is many small steps; workers give the parallelism

    if out is not None:
        data_yaml = generate(out, images, seed, wh, val, test, progress=not quiet, workers=workers, mix=mix)
        summary = json.loads((out / "dataset.json").read_text(encoding="utf-8"))
        typer.echo(
            f"wrote {images} images to {out} in {summary['seconds']:.1f} s "
            f"({images / max(summary['seconds'], 1e-9):.1f} images/s): {data_yaml}"
        )
        typer.echo(
            f"splits {summary['splits']}; defect-free items {summary['defect_free_share']}; "
            f"empty benches {summary['empty_images']}"
        )
    if contact_sheet is not None:
        p = sheet(contact_sheet, seed=seed, size=wh)
        typer.echo(f"contact sheet: {p} ({p.stat().st_size / 1e6:.2f} MB)")


@data_app.command()
def faint(
    out: Annotated[Path, typer.Option("--out", help="the contact sheet PNG")] = Path("datasets/faintest_defects.png"),
    images: Annotated[int, typer.Option("--images", "-n", min=1, help="pictures to render and measure")] = 200,
    seed: Annotated[int, typer.Option(help="dataset seed of the pictures")] = 0,
    size: Annotated[str, typer.Option(help="camera size WxH")] = "1280x960",
    show: Annotated[int, typer.Option("--show", min=1, max=120, help="faintest defects on the sheet")] = 24,
    as_json: Annotated[bool, typer.Option("--json", help="print every defect's measure as JSON")] = False,
) -> None:
    """Measure how plainly each labelled defect shows after the camera; draw the faintest on a contact sheet."""
    wh = _size(size)
    import numpy as np
    import torch

    from inspector.data.synth.dataset import faintest_defects
    from inspector.data.synth.scene import MIN_VISIBILITY

    torch.set_num_threads(1)
    path, rows = faintest_defects(out, seed=seed, images=images, n=show, size=wh)
    if as_json:
        typer.echo(json.dumps({"sheet": str(path), "floor": MIN_VISIBILITY, "defects": rows}, indent=1))
        return
    values = sorted(float(r["reference"]) for r in rows)
    typer.echo(f"{len(values)} labelled defects in {images} pictures at {size} (floor: {MIN_VISIBILITY:g})")
    if values:
        q = np.quantile(values, [0.01, 0.05, 0.1, 0.5])
        typer.echo("Rose number at 1280x960: 1% {:.1f}, 5% {:.1f}, 10% {:.1f}, median {:.1f}".format(*q))
        shares = ", ".join(f"{f:g}: {sum(v < f for v in values) / len(values):.1%}" for f in (5, 10, 20, 40, 80))
        typer.echo(f"share below {shares}")
    typer.echo(f"contact sheet: {path}")


@data_app.command("import")
def import_(
    source: Annotated[Path, typer.Argument(help="dataset to import (folder or file)")],
    out: Annotated[Path, typer.Option("--out", help="new folder for the YOLO dataset")],
    fmt: FormatOpt = None,
    names: NamesOpt = None,
    images_dir: ImagesOpt = None,
    link: LinkOpt = "symlink",
    skip_missing: SkipMissingOpt = False,
) -> None:
    """Import a COCO, VOC, Label Studio, CVAT (or YOLO) dataset as a YOLO dataset; its class names are kept.

    The format and layout are detected (Roboflow and COCO 2017 folders, data.yaml, ImageSets/Main, ...).
    """
    _convert(source, out, fmt, "yolo", names, images_dir, link, skip_missing)


@data_app.command()
def export(
    dataset: Annotated[Path, typer.Argument(help="a YOLO dataset (data.yaml or its folder)")],
    out: Annotated[Path, typer.Option("--out", help="new output folder")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="coco, voc, labelstudio, cvat or yolo")],
    link: LinkOpt = "symlink",
) -> None:
    """Export a YOLO dataset to COCO, VOC, Label Studio or CVAT (for images 1.1)."""
    _convert(dataset, out, "yolo", fmt, None, None, link)


@data_app.command()
def convert(
    source: Annotated[Path, typer.Argument(help="dataset to convert (folder or file)")],
    out: Annotated[Path, typer.Option("--out", help="new output folder")],
    to: Annotated[str, typer.Option("--to", help="yolo, coco, voc, labelstudio or cvat")],
    src_fmt: Annotated[str | None, typer.Option("--from", help="source format (default: detected)")] = None,
    names: NamesOpt = None,
    images_dir: ImagesOpt = None,
    link: LinkOpt = "symlink",
    skip_missing: SkipMissingOpt = False,
) -> None:
    """Convert between any two formats."""
    _convert(source, out, src_fmt, to, names, images_dir, link, skip_missing)


def _convert(
    source: Path,
    out: Path,
    src: str | None,
    dst: str,
    names: str | None,
    images_dir: Path | None,
    link: str,
    skip_missing: bool = False,
) -> None:
    from inspector.data.formats import drop_missing, read_dataset, write_dataset

    _check_format(src)
    _check_format(dst)
    spec = read_dataset(source, src, names=_names(names), images_dir=images_dir)
    typer.echo(f"{source}: read as {spec.layout}")
    missing = sorted({p.path for p in spec.problems if p.kind == "missing_image" and p.severity == "error"})
    if missing:
        more = f"\n  ... and {len(missing) - 20} more" if len(missing) > 20 else ""
        shown = "\n".join(f"  {m}" for m in missing[:20]) + more
        typer.echo(f"{len(missing)} listed image(s) or split folder(s) not found:\n{shown}", err=True)
        if skip_missing:
            typer.echo(f"left out: {drop_missing(spec)} image(s)", err=True)
    errors = [p for p in spec.problems if p.severity == "error"]
    if errors:
        others = [p for p in errors if p.kind != "missing_image"]
        for p in others[:10]:
            typer.echo(f"  {p.kind}: {p.path}: {p.message}", err=True)
        if not others and not skip_missing:
            raise ValueError(
                f"{source}: {len(missing)} listed image(s) not found; nothing written (--skip-missing leaves them out)"
            )
        raise ValueError(
            f"{source}: {len(errors)} problem(s) found while reading; nothing written "
            f"(see 'inspector data validate {source}')"
        )
    warnings = [p for p in spec.problems if p.severity == "warning"]
    for p in warnings[:10]:
        typer.echo(f"  warning: {p.kind}: {p.path}: {p.message}", err=True)
    if len(warnings) > 10:
        typer.echo(f"  ... and {len(warnings) - 10} more warnings", err=True)
    written = write_dataset(spec, out, dst, link)
    n_boxes = sum(len(r.boxes) for r in spec.images)
    splits = {s: len(spec.split(s)) for s in spec.splits}
    typer.echo(
        f"{spec.source_format} -> {dst}: {len(spec.images)} images, {n_boxes} boxes, "
        f"{len(spec.names)} classes, splits {splits}: {written}"
    )


@data_app.command()
def validate(
    dataset: Annotated[Path, typer.Argument(help="dataset (folder or file)")],
    fmt: FormatOpt = None,
    names: NamesOpt = None,
    images_dir: ImagesOpt = None,
    strict: Annotated[bool, typer.Option("--strict", help="warnings fail too")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Report missing images or labels, bad boxes, unknown classes, duplicates and corrupt images."""
    from inspector.data.validate import validate as run

    _check_format(fmt)
    report = run(dataset, fmt, names=_names(names), images_dir=images_dir)
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
    else:
        typer.echo(
            f"{report.dataset} ({report.format}): {report.images} images, {report.boxes} boxes, "
            f"{len(report.names)} classes"
        )
        for p in report.problems[:200]:
            typer.echo(f"  {p.severity:7} {p.kind:16} {p.path}: {p.message}")
        if len(report.problems) > 200:
            typer.echo(f"  ... and {len(report.problems) - 200} more (use --json for all)")
        typer.echo(f"{len(report.errors)} error(s), {len(report.warnings)} warning(s) {report.counts() or ''}")
    if not report.ok(strict):
        raise typer.Exit(1)


@data_app.command()
def stats(
    dataset: Annotated[Path, typer.Argument(help="dataset (folder or file)")],
    fmt: FormatOpt = None,
    names: NamesOpt = None,
    images_dir: ImagesOpt = None,
    mosaic: Annotated[Path | None, typer.Option("--mosaic", help="where to write the mosaic PNG")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the statistics as JSON")] = False,
    models_dir: Annotated[
        Path | None, typer.Option("--models-dir", help="registry whose pretraining checkpoint the advice may use")
    ] = None,
) -> None:
    """Class counts, a box size histogram, a mosaic preview PNG, and the recipe 'inspector train' would choose."""
    from inspector.data.formats import read_dataset
    from inspector.data.stats import dataset_stats, histogram_lines
    from inspector.data.stats import mosaic as make_mosaic

    _check_format(fmt)
    spec = read_dataset(dataset, fmt, names=_names(names), images_dir=images_dir)
    st = dataset_stats(spec)
    target = mosaic or _default_mosaic(dataset)
    st["mosaic"] = str(make_mosaic(spec, target)) if st["images"] else None
    advice = _advice(spec, models_dir)
    st["advice"] = advice.as_dict() if not isinstance(advice, str) else {"error": advice}
    if as_json:
        typer.echo(json.dumps(st, indent=2))
        return
    typer.echo(
        f"{dataset} ({spec.source_format}): {st['images']} images {st['splits']}, "
        f"{st['boxes']} boxes, {st['empty_images']} with no boxes"
    )
    typer.echo("boxes per class (images):")
    for name, n in st["boxes_per_class"].items():
        typer.echo(f"  {name:>18} {n:7d} ({st['images_per_class'].get(name, 0)})")
    typer.echo("box size (square root of area):")
    for ln in histogram_lines(st["box_size_histogram"]):
        typer.echo("  " + ln)
    typer.echo(f"mosaic: {st['mosaic']}")
    typer.echo("'inspector train' without --recipe would choose:" if not isinstance(advice, str) else advice)
    for ln in advice.lines() if not isinstance(advice, str) else []:
        typer.echo("  " + ln)


def _advice(spec: DatasetSpec, models_dir: Path | None) -> Advice | str:
    """The recipe advice for ``spec``, or why there is none (a set without readable training images)."""
    from inspector.training.autorecipe import advise_for

    try:
        return advise_for(spec, models_dir)
    except ValueError as exc:
        return f"no recipe advice: {exc}"


def _default_mosaic(dataset: Path) -> Path:
    folder = dataset if dataset.is_dir() else dataset.parent
    import os

    return folder / "mosaic.png" if os.access(folder, os.W_OK) else Path.cwd() / f"{folder.name}-mosaic.png"


@data_app.command()
def split(
    dataset: Annotated[Path, typer.Argument(help="dataset (folder or file)")],
    val: Annotated[float, typer.Option(min=0.0, max=0.9)] = 0.15,
    test: Annotated[float, typer.Option(min=0.0, max=0.9)] = 0.15,
    seed: Annotated[int, typer.Option()] = 0,
    fmt: FormatOpt = None,
    names: NamesOpt = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="write a new dataset here (default for YOLO: split lists in place)")
    ] = None,
    to: Annotated[str | None, typer.Option("--to", help="format of the --out dataset (default: the source's)")] = None,
    link: LinkOpt = "symlink",
) -> None:
    """Split into train/val/test, stratified by class."""
    from inspector.data.formats import read_dataset, write_dataset
    from inspector.data.split import stratified_split, write_yolo_split_lists

    _check_format(fmt)
    _check_format(to)
    spec = read_dataset(dataset, fmt, names=_names(names))
    counts = stratified_split(spec, val, test, seed)
    if out is not None:
        written = write_dataset(spec, out, to or spec.source_format, link)
    elif spec.source_format == "yolo":
        written = write_yolo_split_lists(dataset, spec)
    else:
        raise ValueError(f"give --out DIR to write the split {spec.source_format} dataset (only YOLO splits in place)")
    typer.echo(f"split {len(spec.images)} images {counts} (seed {seed}): {written}")
