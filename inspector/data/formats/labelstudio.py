"""Label Studio JSON export (``JSON`` format): a list of tasks with rectangle annotations.

A rectangle's ``x, y, width, height`` are percentages of the original image; a
rotated rectangle is read as the box around it (and noted). Image references
such as ``/data/upload/3/1a2b3c4d-name.jpg`` or ``/data/local-files/?d=dir/x.jpg``
are resolved to local files; nothing is ever fetched over the network.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import numpy as np

from inspector.data.formats.spec import (
    SPLITS,
    DatasetSpec,
    ImageRecord,
    Problem,
    check_out_dir,
    image_size,
    place_image,
    unique_names,
)

_UPLOAD_PREFIX = re.compile(r"^[0-9a-f]{8}-")


def _json_file(path: Path) -> Path:
    path = Path(path)
    if path.is_file():
        return path
    cands = sorted(p for p in path.glob("*.json") if p.read_text(encoding="utf-8")[:64].lstrip().startswith("["))
    if not cands:
        raise FileNotFoundError(f"{path}: no Label Studio JSON export here")
    return cands[0]


def _resolve(ref: str, base: Path, images_dir: Path | None) -> Path:
    u = urlparse(ref)
    rel = ref
    if "d" in parse_qs(u.query):
        rel = parse_qs(u.query)["d"][0]
    elif u.scheme in ("http", "https", "s3", "gs", "azure-blob"):
        rel = u.path
    rel = unquote(rel)
    cands: list[Path] = []
    p = Path(rel)
    if p.is_absolute():
        cands.append(p)
    else:
        cands += [base / p, base.parent / p]
    name = p.name
    for d in [images_dir, base / "images", base]:
        if d is not None:
            cands += [d / name, d / _UPLOAD_PREFIX.sub("", name)]
            cands += list(d.rglob(_UPLOAD_PREFIX.sub("", name)))[:1] if d.is_dir() and d != base else []
    for c in cands:
        if c.is_file():
            return c
    return cands[0] if cands else Path(rel)


def read_labelstudio(path: Path, images_dir: Path | None = None, names: tuple[str, ...] | None = None) -> DatasetSpec:
    jf = _json_file(path)
    try:
        doc = json.loads(jf.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{jf}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(doc, list):
        raise ValueError(f"{jf}: a Label Studio JSON export is a list of tasks")
    problems: list[Problem] = []
    raw: list[tuple[Path, int, int, str, list[str], list[list[float]]]] = []
    found: list[str] = []
    for task in doc:
        if not isinstance(task, dict):
            problems.append(Problem("malformed_label", str(jf), f"a task must be an object, got {task!r:.40}"))
            continue
        data: dict[str, Any] = task["data"] if isinstance(task.get("data"), dict) else {}
        ref = data.get("image") or next((v for v in data.values() if isinstance(v, str)), None)
        if not ref:
            problems.append(Problem("missing_image", f"task {task.get('id')}", "task has no image reference"))
            continue
        img = _resolve(str(ref), jf.parent, images_dir)
        split = str(data.get("split", "")) if data.get("split") in SPLITS else ""
        listed = task.get("annotations", task.get("completions")) or []
        anns = [a for a in listed if isinstance(a, dict) and not a.get("was_cancelled")]
        if not anns and task.get("predictions"):
            # pre-annotations nobody reviewed are not labels: leave the task out rather than guess
            problems.append(
                Problem("not_reviewed", str(ref), "the task has only predictions, no annotation: left out", "warning")
            )
            continue
        result = anns[0].get("result", []) if anns else []
        w = h = 0
        objs: list[str] = []
        boxes: list[list[float]] = []
        for r in result:
            if r.get("type") != "rectanglelabels":
                continue
            v = r.get("value", {})
            labels = v.get("rectanglelabels") or []
            try:
                x, y, bw, bh = (float(v[k]) / 100.0 for k in ("x", "y", "width", "height"))
            except (KeyError, TypeError, ValueError):
                problems.append(Problem("malformed_label", str(img), f"rectangle {r.get('id')} lacks x/y/width/height"))
                continue
            w = int(r.get("original_width") or w)
            h = int(r.get("original_height") or h)
            rot = float(v.get("rotation") or 0.0)
            if abs(rot) > 1e-9:
                # rotated about its top-left corner (x, y); keep the box around it
                a = np.deg2rad(rot)
                sx, sy = float(w or 1), float(h or 1)
                corners = np.array([[0, 0], [bw * sx, 0], [bw * sx, bh * sy], [0, bh * sy]])
                rmat = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
                q = corners @ rmat.T + np.array([x * sx, y * sy])
                x, y = q[:, 0].min() / sx, q[:, 1].min() / sy
                bw, bh = np.ptp(q[:, 0]) / sx, np.ptp(q[:, 1]) / sy
                problems.append(
                    Problem(
                        "rotated_box", str(img), f"rotated rectangle {r.get('id')} read as the box around it", "warning"
                    )
                )
            for lab in labels or [""]:
                objs.append(str(lab))
                boxes.append([x, y, x + bw, y + bh])
                if lab not in found:
                    found.append(str(lab))
        if (w <= 0 or h <= 0) and img.exists():
            w, h = image_size(img) or (0, 0)
        raw.append((img, w, h, split, objs, boxes))
    if names is None and (jf.parent / "labels.txt").is_file():  # written by our exporter: keeps the ids
        names = tuple(
            ln.strip() for ln in (jf.parent / "labels.txt").read_text(encoding="utf-8").splitlines() if ln.strip()
        )
    if names is None:
        names = tuple(sorted(found))
    records = []
    for img, w, h, split, objs, boxes in raw:
        if not img.exists():
            problems.append(Problem("missing_image", str(img), "image file not found"))
        for n in {n for n in objs if n not in names}:
            problems.append(Problem("unknown_class", str(img), f"class {n!r} is not among {', '.join(names)}"))
        ids = [names.index(n) if n in names else -1 for n in objs]
        records.append(
            ImageRecord(
                path=img,
                width=w,
                height=h,
                split=split,
                boxes=np.asarray(boxes, np.float64).reshape(-1, 4),
                class_ids=np.asarray(ids, np.int64),
            )
        )
    return DatasetSpec(names=names, images=records, root=jf.parent, source_format="labelstudio", problems=problems)


def write_labelstudio(spec: DatasetSpec, out: Path, link: str = "symlink") -> Path:
    """Write ``tasks.json`` (Label Studio's JSON import/export shape) with images under ``images/<split>/``."""
    spec.check_writable()
    out = Path(out)
    check_out_dir(out)
    names = unique_names(spec.images)
    tasks: list[dict[str, Any]] = []
    for i, (rec, name) in enumerate(zip(spec.images, names, strict=True), start=1):
        split = rec.split or "train"
        place_image(rec.path, out / "images" / split / name, link)
        result = []
        for k, ((x0, y0, x1, y1), c) in enumerate(zip(rec.boxes, rec.class_ids, strict=True)):
            result.append(
                {
                    "id": f"{i}_{k}",
                    "type": "rectanglelabels",
                    "from_name": "label",
                    "to_name": "image",
                    "original_width": rec.width,
                    "original_height": rec.height,
                    "image_rotation": 0,
                    "value": {
                        "x": x0 * 100.0,
                        "y": y0 * 100.0,
                        "width": (x1 - x0) * 100.0,
                        "height": (y1 - y0) * 100.0,
                        "rotation": 0,
                        "rectanglelabels": [spec.names[int(c)]],
                    },
                }
            )
        tasks.append(
            {
                "id": i,
                "data": {"image": f"images/{split}/{name}", "split": split},
                "annotations": [{"id": i, "result": result, "was_cancelled": False}],
            }
        )
    p = out / "tasks.json"
    p.write_text(json.dumps(tasks, indent=1), encoding="utf-8")
    (out / "labels.txt").write_text("\n".join(spec.names) + "\n", encoding="utf-8")
    return p
