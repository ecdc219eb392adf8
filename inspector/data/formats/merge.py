"""One training dataset from several, over the union of their class names."""

from __future__ import annotations

from pathlib import Path

from inspector.data.formats.spec import DatasetSpec
from inspector.data.formats.yolo import label_path, write_list_yaml


def merge_datasets(specs: list[DatasetSpec], out_dir: Path, splits: tuple[str, ...] = ("train", "val")) -> Path:
    """One dataset from several, over the union of their class names (the first one's ids kept).

    Why: a pretraining run learns from the synthetic bench and from whatever labelled sets an
    engineer adds. A dataset whose ids already match the union is listed as it is; the others
    get their labels rewritten to the union's ids beside symlinks to their images, so no
    source file is touched. Only ``splits`` are merged: test splits stay out of training.
    """
    if not specs:
        raise ValueError("nothing to merge")
    names: list[str] = []
    for spec in specs:
        names += [n for n in spec.names if n not in names]
    out_dir = out_dir.absolute()
    out_dir.mkdir(parents=True, exist_ok=True)
    merged: dict[str, list[Path]] = {s: [] for s in splits}
    for k, spec in enumerate(specs):
        ids = [names.index(n) for n in spec.names]
        same = ids == list(range(len(ids)))
        for split in splits:
            for i, image in enumerate(spec.image_paths(split) if split in spec.splits else []):
                if same:
                    merged[split].append(image)
                    continue
                dst = out_dir / "images" / f"{k}" / split / f"{i:06d}_{image.name}"  # names may repeat
                dst.parent.mkdir(parents=True, exist_ok=True)
                if dst.is_symlink() or dst.exists():
                    dst.unlink()
                dst.symlink_to(image.absolute())
                src_label = label_path(image)
                lines = []
                if src_label.is_file():
                    for line in src_label.read_text(encoding="utf-8").splitlines():
                        parts = line.split()
                        if parts:
                            lines.append(" ".join([str(ids[int(parts[0])]), *parts[1:]]))
                dst_label = label_path(dst)
                dst_label.parent.mkdir(parents=True, exist_ok=True)
                dst_label.write_text("".join(f"{x}\n" for x in lines), encoding="utf-8")
                merged[split].append(dst)
    return write_list_yaml(out_dir, tuple(names), {s: images for s, images in merged.items() if images})
