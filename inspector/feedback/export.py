"""``inspector feedback export``: label candidates as a dataset, the model's boxes as pre-annotations.

Each view's pre-annotations are what the model served, corrected by what the operator
said: a detection flagged as a false defect is left out, and a missed defect drawn with a
box and a class is added, as is an unexplained region of the anomaly model that the operator
confirmed as a (maybe new) defect class. Label Studio gets them as ``predictions`` (to accept or correct
in the labelling tool); CVAT gets them as boxes whose ``source`` says who drew them (``auto`` for the
model, ``manual`` for the operator); YOLO and COCO get them as labels (to correct in any editor).
Corrected labels come back with ``inspector data import``.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from inspector.data.formats import write_dataset
from inspector.data.formats.spec import DatasetSpec, ImageRecord, check_out_dir
from inspector.feedback.candidates import Candidate
from inspector.labelmap import default_labelmap
from inspector.store.images import ImageStore

EXPORT_FORMATS = ("labelstudio", "cvat", "yolo", "coco")
MANIFEST = "feedback.json"
_SUFFIX = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp"}
# Operator flags that add a labelled box: a missed defect drawn, an unexplained anomalous region confirmed as a class.
CONFIRMED = ("missed_defect", "anomaly")


def pre_annotations(view: Mapping[str, Any], flags: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The boxes to start labelling from: served detections minus false ones, plus drawn missed ones."""
    n = int(view["n"])
    false = {
        int(f["detection"])
        for f in flags
        if f["kind"] == "false_defect" and f.get("detection") is not None and int(f.get("view", 0)) == n
    }
    out = []
    for i, d in enumerate(view.get("detections", [])):
        if int(d.get("index", i)) in false:
            continue
        out.append(
            {"class_name": d["class_name"], "xyxy": list(d["xyxy"]), "score": float(d["confidence"]), "from": "model"}
        )
    for f in flags:
        if f["kind"] in CONFIRMED and int(f.get("view", 0)) == n and f.get("box") and f.get("class_name"):
            out.append({"class_name": f["class_name"], "xyxy": list(f["box"]), "score": 1.0, "from": "operator"})
    return out


def class_names(inspections: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    """The station's labelmap, plus any class a model or an operator used that it lacks."""
    names = list(default_labelmap().names)
    for insp in inspections:
        for view in insp.get("views", []):
            for d in view.get("detections", []):
                if d["class_name"] not in names:
                    names.append(d["class_name"])
        for f in insp.get("flags", []):
            if f.get("class_name") and f["class_name"] not in names:
                names.append(f["class_name"])
    return tuple(names)


def export_candidates(
    images: ImageStore,
    inspections: Sequence[Mapping[str, Any]],
    candidates: Sequence[Candidate],
    fmt: str,
    out: Path,
) -> dict[str, Any]:
    """Write the candidates' views and pre-annotations into the new folder ``out``; returns the manifest."""
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; expected one of {', '.join(EXPORT_FORMATS)}")
    check_out_dir(out)
    out.rmdir()  # the writers create it again and insist on it being new
    by_id = {str(i["id"]): i for i in inspections}
    names = class_names(inspections)
    staging = Path(tempfile.mkdtemp(prefix=".feedback-", dir=out.parent))
    records: list[ImageRecord] = []
    manifest: list[dict[str, Any]] = []
    try:
        for c in candidates:
            insp = by_id.get(c.inspection_id)
            view = next((v for v in (insp or {}).get("views", []) if int(v["n"]) == c.view), None)
            if insp is None or view is None or "stored" not in view:
                raise ValueError(f"inspection {c.inspection_id} has no stored view {c.view}")
            digest = view["stored"]["sha256"]
            src = images.path_for(digest)
            if not src.is_file():
                raise FileNotFoundError(f"the image of inspection {c.inspection_id} view {c.view} is missing: {src}")
            name = f"{c.inspection_id}-v{c.view}{_SUFFIX.get(view['stored']['media_type'], '.jpg')}"
            shutil.copyfile(src, staging / name)
            flags = [f for f in insp.get("flags", []) if int(f.get("view", 0)) == c.view]
            boxes = pre_annotations(view, flags)
            w, h = int(view["width"]), int(view["height"])
            rec = ImageRecord(
                path=staging / name,
                width=w,
                height=h,
                split="train",
                boxes=np.array([b["xyxy"] for b in boxes], np.float64).reshape(-1, 4)
                / np.array([w, h, w, h], np.float64),
                class_ids=np.array([names.index(b["class_name"]) for b in boxes], np.int64),
            )
            records.append(rec)
            manifest.append(
                {
                    **c.as_dict(),
                    "image": name,
                    "sha256": digest,
                    "model_version": insp.get("versions", {}).get("model"),
                    "grade": insp["grade"]["level"],
                    "final_grade": insp.get("final", {}).get("grade"),
                    "disposition": insp["disposition"]["path"],
                    "final_disposition": insp.get("final", {}).get("disposition"),
                    "flags": flags,
                    "pre_annotations": boxes,
                }
            )
        spec = DatasetSpec(names=names, images=records, source_format="feedback")
        main = write_dataset(spec, out, fmt, link="copy")
        if fmt == "labelstudio":
            _as_predictions(main, manifest)
        elif fmt == "cvat":
            _mark_sources(main, manifest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    doc = {"format": fmt, "names": list(names), "views": manifest}
    (out / MANIFEST).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return doc


def _mark_sources(xml_file: Path, manifest: list[dict[str, Any]]) -> None:
    """CVAT: a box the model served is ``source="auto"`` (to check), one the operator drew stays ``manual``."""
    import xml.etree.ElementTree as ET

    tree = ET.parse(xml_file)  # noqa: S314 - the file just written above
    images = tree.getroot().findall("image")
    for image, row in zip(images, manifest, strict=True):
        for box, pre in zip(image.findall("box"), row["pre_annotations"], strict=True):
            box.set("source", "auto" if pre["from"] == "model" else "manual")
    ET.indent(tree.getroot())
    xml_file.write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(tree.getroot(), encoding="unicode") + "\n", "utf-8"
    )


def _as_predictions(tasks_file: Path, manifest: list[dict[str, Any]]) -> None:
    """Label Studio: the boxes become the task's ``predictions`` (pre-annotations), not finished annotations."""
    tasks = json.loads(tasks_file.read_text(encoding="utf-8"))
    for task, row in zip(tasks, manifest, strict=True):
        result = task["annotations"][0]["result"] if task.get("annotations") else []
        for r, box in zip(result, row["pre_annotations"], strict=True):
            r["score"] = round(box["score"], 4)
            r["origin"] = "prediction" if box["from"] == "model" else "manual"
        task.pop("annotations", None)
        task["predictions"] = [
            {
                "model_version": row["model_version"] or "unknown",
                "score": round(min((b["score"] for b in row["pre_annotations"]), default=1.0), 4),
                "result": result,
            }
        ]
        task["data"].update(
            inspection_id=row["inspection_id"], view=row["view"], reasons=row["reasons"], sha256=row["sha256"]
        )
    tasks_file.write_text(json.dumps(tasks, indent=1), encoding="utf-8")
