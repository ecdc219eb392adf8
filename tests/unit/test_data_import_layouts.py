"""`inspector data import DIR` on the layouts people download, with no --format and no file moved.

Each test writes a tiny dataset in one layout (PNGs made with cv2, annotations by hand), imports
it through the real CLI and reads the YOLO dataset written: classes, splits and pixel boxes must
come out as the annotations say.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner, Result

from inspector.cli.data import data_app
from inspector.data.formats import detect_layout, read_dataset, write_dataset
from inspector.data.formats.coco import rle_box, rle_counts

W, H = 40, 30


def png(path: Path, w: int = W, h: int = H) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((h, w, 3), 90, np.uint8))
    return path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def run(*args: str) -> Result:
    return CliRunner().invoke(data_app, list(args))


def imported(src: Path, out: Path, *extra: str) -> tuple[Result, dict[str, tuple[str, list[tuple[str, list[float]]]]]]:
    """Import ``src`` and read the YOLO result back: image name -> (split, [(class, pixel xyxy)])."""
    r = run("import", str(src), "--out", str(out), *extra)
    assert r.exit_code == 0, (r.output, r.exception)
    spec = read_dataset(out)
    assert not [p for p in spec.problems if p.severity == "error"], spec.problems
    got = {}
    for rec in spec.images:
        boxes = [(spec.names[c], [round(v, 3) for v in b]) for b, c in zip(rec.pixel_boxes, rec.class_ids, strict=True)]
        got[rec.path.name] = (rec.split, sorted(boxes))
    return r, got


def coco_doc(images: list[tuple[int, str]], anns: list[dict[str, object]], cats: list[dict[str, object]]) -> str:
    doc = {
        "images": [{"id": i, "file_name": f, "width": W, "height": H} for i, f in images],
        "annotations": [{"id": k + 1, "iscrowd": 0, **a} for k, a in enumerate(anns)],
        "categories": cats,
    }
    return json.dumps(doc)


CATS = [{"id": 1, "name": "crack", "supercategory": "defect"}, {"id": 2, "name": "dent", "supercategory": "defect"}]


def test_coco_roboflow_layout_keeps_splits_drops_the_placeholder_class_and_boxes_polygons(tmp_path: Path) -> None:
    src = tmp_path / "rf"
    cats = [{"id": 0, "name": "defects", "supercategory": "none"}] + [
        {**c, "id": int(str(c["id"])), "supercategory": "defects"} for c in CATS
    ]
    for folder, name in (("train", "a.jpg"), ("valid", "b.jpg"), ("test", "c.jpg")):
        png(src / folder / name)
    write(
        src / "train/_annotations.coco.json",
        coco_doc([(0, "a.jpg")], [{"image_id": 0, "category_id": 1, "bbox": [1, 2, 10, 5]}], cats),
    )
    seg = {"image_id": 0, "category_id": 2, "bbox": [], "segmentation": [[4, 4, 14, 6, 9, 20]]}
    write(src / "valid/_annotations.coco.json", coco_doc([(0, "b.jpg")], [seg], cats))
    write(src / "test/_annotations.coco.json", coco_doc([(0, "c.jpg")], [], cats))
    write(src / "README.roboflow.txt", "exported from roboflow")
    r, got = imported(src, tmp_path / "out")
    assert "read as coco (roboflow" in r.output
    assert read_dataset(tmp_path / "out").names == ("crack", "dent")
    assert got == {
        "a.jpg": ("train", [("crack", [1, 2, 11, 7])]),
        "b.jpg": ("val", [("dent", [4, 4, 14, 20])]),
        "c.jpg": ("test", []),
    }


def _coco_images_split(src: Path) -> None:
    png(src / "images/train/a.jpg")
    png(src / "images/val/b.jpg")


def _coco_2017_folders(src: Path) -> None:
    png(src / "train2017/a.jpg")
    png(src / "val2017/b.jpg")


@pytest.mark.parametrize(
    ("suffix", "place", "names"),
    [
        ("", _coco_images_split, ("a.jpg", "b.jpg")),
        ("2017", _coco_2017_folders, ("a.jpg", "b.jpg")),
        (
            "",
            lambda s: (png(s / "images/batch1/a.jpg"), png(s / "images/batch2/b.jpg")),
            ("batch1/a.jpg", "batch2/b.jpg"),
        ),
    ],
    ids=["images-split", "split2017", "subfolder-names"],
)
def test_coco_2017_layouts_find_their_images(
    tmp_path: Path, suffix: str, place: Callable[[Path], object], names: tuple[str, str]
) -> None:
    src = tmp_path / "coco"
    place(src)
    ann = [{"image_id": 1, "category_id": 2, "bbox": [3, 3, 6, 9]}]
    write(src / f"annotations/instances_train{suffix}.json", coco_doc([(1, names[0])], ann, CATS))
    rle = {"size": [H, W], "counts": [H * 5 + 2, 4, H - 4, 4]}  # columns 5 and 6, rows 2..5
    ann = [{"image_id": 7, "category_id": 1, "segmentation": rle}]
    write(src / f"annotations/instances_val{suffix}.json", coco_doc([(7, names[1])], ann, CATS))
    captions = {"images": [{"id": 9, "file_name": "nowhere.jpg"}], "annotations": [{"image_id": 9, "caption": "x"}]}
    write(src / f"annotations/captions_train{suffix}.json", json.dumps(captions))  # left out: not instances
    r, got = imported(src, tmp_path / "out")
    assert "read as coco (coco2017" in r.output
    assert got == {"a.jpg": ("train", [("dent", [3, 3, 9, 12])]), "b.jpg": ("val", [("crack", [5, 2, 7, 6])])}


@pytest.mark.parametrize(
    ("counts", "height", "box"),
    [  # strings pycocotools' mask.encode wrote for these masks; its toBbox gave the same boxes (as x, y, w, h)
        ("h44j00n4;gJ" + "0" * 33 + "Q9B", 30, [5, 2, 40, 30]),  # rows 2-5 of columns 5-6, a block, pixel (39, 29)
        ("Pn:f4f4" + "0" * 703 + "dj2", 300, [37, 100, 390, 250]),  # one block of rows 100-249, columns 37-389
        ([65, 2, 28, 2], 30, [2, 5, 4, 7]),  # uncompressed runs: column 2 rows 5-6, column 3 rows 5-6
    ],
)
def test_rle_masks_become_their_boxes(counts: str | list[int], height: int, box: list[int]) -> None:
    assert rle_box(rle_counts(counts), height) == box


@pytest.mark.parametrize("prefix", ["../", "/content/Bench-Defects-1/"])  # as written by the export, by its package
def test_yolo_roboflow_layout_with_dotdot_paths_list_names_and_polygon_lines(tmp_path: Path, prefix: str) -> None:
    src = tmp_path / "rf-yolo"
    for split, folder, stem in (("train", "train", "a"), ("val", "valid", "b")):
        png(src / folder / "images" / f"{stem}.jpg")
    write(src / "train/labels/a.txt", "1 0.5 0.5 0.25 0.2\n")
    write(src / "valid/labels/b.txt", "0 0.1 0.1 0.6 0.1 0.35 0.7\n")  # a polygon: its box
    write(
        src / "data.yaml",
        f"train: {prefix}train/images\nval: {prefix}valid/images\nnc: 2\nnames: ['crack', 'dent']\n"
        "roboflow:\n  workspace: w\n  project: p\n  version: 1\n",
    )
    r, got = imported(src, tmp_path / "out")
    assert "read as yolo (roboflow" in r.output
    assert got == {
        "a.jpg": ("train", [("dent", [15, 12, 25, 18])]),
        "b.jpg": ("val", [("crack", [4, 3, 24, 21])]),
    }


@pytest.mark.parametrize("where", ["../datasets/ul", "/content/datasets/ul"])
def test_yolo_ultralytics_layout_with_a_path_key_and_names_as_a_mapping(tmp_path: Path, where: str) -> None:
    src = tmp_path / "ul"
    png(src / "images/train/a.jpg")
    png(src / "images/val/b.jpg")
    write(src / "labels/train/a.txt", "0 0.5 0.5 0.5 0.5\n")
    write(src / "labels/val/b.txt", "")
    text = f"path: {where}  # where it lived when trained\ntrain: images/train\nval: images/val\nnames:\n  0: scuff\n"
    write(src / "data.yaml", text)
    r, got = imported(src, tmp_path / "out")
    assert "read as yolo (ultralytics" in r.output
    assert got == {"a.jpg": ("train", [("scuff", [10, 7.5, 30, 22.5])]), "b.jpg": ("val", [])}


def voc_xml(name: str, objs: list[tuple[str, int, int, int, int]]) -> str:
    o = "".join(
        f"<object><name>{n}</name><bndbox><xmin>{a}</xmin><ymin>{b}</ymin><xmax>{c}</xmax><ymax>{d}</ymax></bndbox></object>"
        for n, a, b, c, d in objs
    )
    return f"<annotation><filename>{name}</filename><size><width>{W}</width><height>{H}</height></size>{o}</annotation>"


def test_voc_imagesets_main_keeps_train_val_and_test_even_beside_trainval(tmp_path: Path) -> None:
    src = tmp_path / "VOCdevkit" / "VOC2007"
    for stem, objs in (("a", [("dent", 1, 1, 10, 10)]), ("b", [("crack", 5, 6, 20, 16)]), ("c", [])):
        png(src / "JPEGImages" / f"{stem}.jpg")
        write(src / "Annotations" / f"{stem}.xml", voc_xml(f"{stem}.jpg", objs))
    main = src / "ImageSets" / "Main"
    write(main / "train.txt", "a\n")
    write(main / "val.txt", "b\n")
    write(main / "trainval.txt", "a\nb\n")
    write(main / "test.txt", "c\n")
    write(main / "dent_train.txt", "a  1\n")  # per-class lists are not splits
    r, got = imported(tmp_path / "VOCdevkit", tmp_path / "out")  # the devkit folder: its one sub-folder is entered
    assert "read as voc (ImageSets/Main" in r.output
    assert got == {
        "a.jpg": ("train", [("dent", [0, 0, 10, 10])]),
        "b.jpg": ("val", [("crack", [4, 5, 20, 16])]),
        "c.jpg": ("test", []),
    }


def test_label_studio_export_is_detected_and_its_percentages_become_pixels(tmp_path: Path) -> None:
    src = tmp_path / "ls"
    png(src / "images/shoe.png")
    rect = {
        "type": "rectanglelabels",
        "original_width": W,
        "original_height": H,
        "value": {"x": 25, "y": 10, "width": 50, "height": 20, "rotation": 0, "rectanglelabels": ["tear"]},
    }
    tasks = [{"id": 1, "data": {"image": "/data/upload/2/0a1b2c3d-shoe.png"}, "annotations": [{"result": [rect]}]}]
    write(src / "project-2-at-2026.json", json.dumps(tasks))
    r, got = imported(src, tmp_path / "out")
    assert "read as labelstudio" in r.output
    assert got == {"shoe.png": ("train", [("tear", [10, 3, 30, 9])])}


CVAT = """<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta><task><name>bench</name><labels>
    <label><name>scratch</name><attributes/></label>
    <label><name>dent</name><attributes/></label>
    <label><name>unused</name><attributes/></label>
  </labels></task></meta>
  <image id="0" name="a.png" width="40" height="30" subset="Train">
    <box label="dent" occluded="0" xtl="2.5" ytl="3" xbr="12" ybr="9.25" z_order="0"/>
    <polygon label="scratch" points="20,5;30,8;25,20" occluded="0" z_order="0"/>
  </image>
  <image id="1" name="b.png" width="40" height="30" subset="Validation">
    <box label="scratch" xtl="10" ytl="10" xbr="20" ybr="14" rotation="90"/>
  </image>
  <image id="2" name="c.png" width="40" height="30"/>
</annotations>
"""


def test_cvat_for_images_reads_boxes_polygons_rotations_and_subsets(tmp_path: Path) -> None:
    src = tmp_path / "cvat"
    for n in ("a", "b", "c"):
        png(src / "images" / f"{n}.png")
    write(src / "annotations.xml", CVAT)
    r, got = imported(src, tmp_path / "out")
    assert "read as cvat" in r.output
    assert read_dataset(tmp_path / "out").names == ("scratch", "dent", "unused")
    assert got == {
        "a.png": ("train", [("dent", [2.5, 3, 12, 9.25]), ("scratch", [20, 5, 30, 20])]),
        "b.png": ("val", [("scratch", [13, 7, 17, 17])]),  # turned a quarter about its centre
        "c.png": ("train", []),
    }


def test_cvat_round_trip_gives_the_same_boxes_and_splits(tmp_path: Path) -> None:
    src = tmp_path / "cvat"
    for n in ("a", "b", "c"):
        png(src / "images" / f"{n}.png")
    write(src / "annotations.xml", CVAT)
    first = read_dataset(src)
    r = run("convert", str(src), "--to", "cvat", "--out", str(tmp_path / "again"), "--link", "copy")
    assert r.exit_code == 0, (r.output, r.exception)
    again = read_dataset(tmp_path / "again")
    assert detect_layout(tmp_path / "again").format == "cvat"
    assert again.names == first.names
    for x, y in zip(first.images, again.images, strict=True):
        assert (x.path.name, x.split or "train") == (y.path.name, y.split)
        np.testing.assert_array_equal(x.class_ids, y.class_ids)
        np.testing.assert_allclose(x.boxes, y.boxes, atol=1e-9)
    # and from YOLO through the export verb
    yolo = write_dataset(first, tmp_path / "yolo", "yolo")
    r = run("export", str(yolo), "--format", "cvat", "--out", str(tmp_path / "exported"))
    assert r.exit_code == 0, (r.output, r.exception)
    exported = {y.path.name: y for y in read_dataset(tmp_path / "exported").images}
    for x in first.images:
        np.testing.assert_allclose(exported[x.path.name].boxes, x.boxes, atol=1e-9)


def test_an_ambiguous_folder_names_both_formats_and_asks_for_one(tmp_path: Path) -> None:
    src = tmp_path / "both"
    png(src / "images/train/a.jpg")
    write(src / "data.yaml", "train: images/train\nnames: [x]\n")
    write(src / "annotations/instances_train.json", coco_doc([(1, "train/a.jpg")], [], CATS))
    r = run("import", str(src), "--out", str(tmp_path / "out"))
    assert r.exit_code != 0
    msg = str(r.exception)
    assert "yolo (ultralytics: data.yaml)" in msg and "coco (coco2017: annotations/instances_train.json)" in msg
    assert "--format yolo or --format coco" in msg
    assert not (tmp_path / "out").exists()
    _, got = imported(src, tmp_path / "out", "--format", "coco")
    assert got == {"a.jpg": ("train", [])}


def test_listed_but_absent_images_are_named_once_and_nothing_is_written_unless_skipped(tmp_path: Path) -> None:
    src = tmp_path / "rf"
    png(src / "train/a.jpg")
    anns = [
        {"image_id": 0, "category_id": 1, "bbox": [1, 1, 5, 5]},
        {"image_id": 1, "category_id": 1, "bbox": [2, 2, 5, 5]},
    ]
    anns.append({"image_id": 1, "category_id": 2, "bbox": [3, 3, 5, 5]})
    write(src / "train/_annotations.coco.json", coco_doc([(0, "a.jpg"), (1, "gone.jpg")], anns, CATS))
    r = run("import", str(src), "--out", str(tmp_path / "out"))
    assert r.exit_code != 0 and "--skip-missing" in str(r.exception)
    assert r.output.count("gone.jpg") == 1 and "1 listed image(s)" in r.output
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    _, got = imported(src, tmp_path / "out", "--skip-missing")
    assert got == {"a.jpg": ("train", [("crack", [1, 1, 6, 6])])}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('<annotations><version>1.1</version><track id="0" label="dent"/></annotations>', "CVAT for video"),
        ("<annotations><image name='a.png'", "not valid XML"),
    ],
)
def test_cvat_files_it_cannot_read_are_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    write(tmp_path / "cvat" / "annotations.xml", text)
    r = run("import", str(tmp_path / "cvat"), "--out", str(tmp_path / "out"))
    assert r.exit_code != 0 and message in str(r.exception) and "annotations.xml" in str(r.exception)
    assert not (tmp_path / "out").exists()
