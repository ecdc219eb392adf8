"""Dataset formats: every box survives YOLO -> COCO -> VOC -> Label Studio -> YOLO, and readers say what is wrong."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from inspector.cli.data import data_app
from inspector.data.formats import (
    DatasetSpec,
    Problem,
    detect_format,
    label_path,
    list_images,
    read_data_yaml,
    read_dataset,
    write_dataset,
)
from inspector.data.formats.labelstudio import read_labelstudio
from inspector.data.formats.voc import read_voc
from inspector.data.formats.yolo import parse_labels

NEU = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "neu-det"
NAMES = ("item", "scratch", "dent")


def make_yolo(
    root: Path,
    n: int = 9,
    seed: int = 0,
    names: tuple[str, ...] = NAMES,
    sizes: tuple[tuple[int, int], ...] = ((64, 48), (50, 70)),
) -> Path:
    """A small YOLO dataset of real JPEGs with float-precision boxes in three splits; returns data.yaml."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        split = ("train", "val", "test")[i % 3]
        w, h = sizes[i % len(sizes)]
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        cv2.imwrite(str(root / "images" / split / f"im{i}.jpg"), img)
        lines = []
        for _ in range(0 if i == 4 else int(rng.integers(1, 4))):  # image 4 is background
            x0, y0 = rng.uniform(0, 0.6, 2)
            bw, bh = rng.uniform(0.05, 0.39, 2)
            lines.append(f"{int(rng.integers(len(names)))} {x0 + bw / 2:.10f} {y0 + bh / 2:.10f} {bw:.10f} {bh:.10f}")
        (root / "labels" / split / f"im{i}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))
    yaml_lines = ["train: images/train", "val: images/val", "test: images/test", "names:"]
    yaml_lines += [f"  {k}: {v}" for k, v in enumerate(names)]
    (root / "data.yaml").write_text("\n".join(yaml_lines) + "\n")
    return root / "data.yaml"


def _by_name(spec: DatasetSpec) -> dict[str, tuple[str, np.ndarray, np.ndarray]]:
    out = {}
    for r in spec.images:
        order = np.lexsort(np.column_stack([r.boxes, r.class_ids]).T[::-1])
        out[r.path.name] = (r.split or "train", r.boxes[order], r.class_ids[order])
    return out


def test_round_trip_keeps_every_box(tmp_path: Path) -> None:
    src = read_dataset(make_yolo(tmp_path / "yolo"))
    assert sum(len(r.boxes) for r in src.images) > 10
    path: Path = tmp_path / "yolo"
    fmt = "yolo"
    for i, nxt in enumerate(("coco", "voc", "labelstudio", "yolo")):
        spec = read_dataset(path, fmt, names=NAMES)
        assert not [p for p in spec.problems if p.severity == "error"], spec.problems
        path = write_dataset(spec, tmp_path / f"step{i}-{nxt}", nxt, link="copy")
        fmt = nxt
    back = read_dataset(path)
    assert back.names == NAMES
    a, b = _by_name(src), _by_name(back)
    assert a.keys() == b.keys()
    for name in a:
        sa, ba, ca = a[name]
        sb, bb, cb = b[name]
        assert sa == sb, name
        np.testing.assert_array_equal(ca, cb)
        np.testing.assert_allclose(bb, ba, rtol=0, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("fmt", ["yolo", "coco", "voc", "labelstudio"])
def test_written_formats_are_detected_and_read_back(tmp_path: Path, fmt: str) -> None:
    spec = read_dataset(make_yolo(tmp_path / "src", n=4))
    out = write_dataset(spec, tmp_path / "out", fmt)
    target = tmp_path / "out"
    assert detect_format(target) == fmt
    again = read_dataset(target)
    assert again.names == NAMES  # the class list travels with every format, ids unchanged
    assert len(again.images) == 4
    assert out.exists()
    # symlinked images point at the originals, nothing was copied
    assert all(r.path.exists() for r in again.images)


def test_writing_refuses_a_non_empty_folder_and_unknown_classes(tmp_path: Path) -> None:
    spec = read_dataset(make_yolo(tmp_path / "src", n=3))
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty"):
        write_dataset(spec, tmp_path / "busy", "coco")
    assert (tmp_path / "busy" / "keep.txt").read_text() == "mine"
    spec.images[0].class_ids[:] = 7
    with pytest.raises(ValueError, match="not in the names"):
        write_dataset(spec, tmp_path / "new", "voc")


def _voc_xml(name: str, w: int, h: int, objs: list[tuple[str, int, int, int, int]]) -> str:
    o = "".join(
        f"<object><name>{n}</name><bndbox><xmin>{a}</xmin><ymin>{b}</ymin><xmax>{c}</xmax><ymax>{d}</ymax></bndbox></object>"
        for n, a, b, c, d in objs
    )
    size = f"<size><width>{w}</width><height>{h}</height><depth>1</depth></size>"
    return f"<annotation><filename>{name}</filename>{size}{o}</annotation>"


def test_voc_coordinates_are_one_based_and_flat_layouts_with_split_lists_are_read(tmp_path: Path) -> None:
    root = tmp_path / "flat"
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    for stem in ("a", "b", "c"):
        cv2.imwrite(str(root / "images" / f"{stem}.jpg"), np.zeros((20, 40, 3), np.uint8))
    (root / "annotations" / "a.xml").write_text(_voc_xml("a.jpg", 40, 20, [("pit", 1, 1, 40, 20)]))
    (root / "annotations" / "b.xml").write_text(
        _voc_xml("b.jpg", 40, 20, [("crack", 11, 6, 20, 10), ("pit", 2, 2, 3, 3)])
    )
    (root / "annotations" / "c.xml").write_text(_voc_xml("c.jpg", 40, 20, []))
    (root / "train.txt").write_text("a\nb\n")
    (root / "test.txt").write_text("c\n")
    spec = read_voc(root)
    assert spec.names == ("crack", "pit")  # foreign classes kept, sorted
    recs = {r.path.stem: r for r in spec.images}
    assert {k: r.split for k, r in recs.items()} == {"a": "train", "b": "train", "c": "test"}
    np.testing.assert_allclose(recs["a"].pixel_boxes, [[0, 0, 40, 20]])  # pixels 1..40 cover the whole width
    np.testing.assert_allclose(recs["b"].pixel_boxes[0], [10, 5, 20, 10])


def test_label_studio_resolves_upload_names_and_reads_rotated_boxes_as_their_bounds(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    cv2.imwrite(str(tmp_path / "images" / "shoe.jpg"), np.zeros((100, 200, 3), np.uint8))
    rect = {
        "type": "rectanglelabels",
        "original_width": 200,
        "original_height": 100,
        "value": {"x": 10, "y": 20, "width": 25, "height": 50, "rotation": 90, "rectanglelabels": ["tear"]},
    }
    tasks = [{"id": 1, "data": {"image": "/data/upload/3/1a2b3c4d-shoe.jpg"}, "annotations": [{"result": [rect]}]}]
    (tmp_path / "export.json").write_text(json.dumps(tasks))
    spec = read_labelstudio(tmp_path / "export.json")
    assert spec.images[0].path == tmp_path / "images" / "shoe.jpg"
    # 90 degrees about the top-left corner (20, 20) px: a 50 x 50 px box to its left
    np.testing.assert_allclose(spec.images[0].pixel_boxes, [[-30, 20, 20, 70]], atol=1e-9)
    assert [p.kind for p in spec.problems] == ["rotated_box"]


@pytest.mark.parametrize(
    ("name", "content", "error"),
    [
        ("bad.json", "{not json", ValueError),
        ("list.json", "[1, 2]", None),
        ("data.yaml", "names: 5\n", ValueError),
    ],
)
def test_broken_files_give_clear_errors(tmp_path: Path, name: str, content: str, error: type[Exception] | None) -> None:
    p = tmp_path / name
    p.write_text(content)
    if error is None:
        spec = read_dataset(p)  # a Label Studio list of non-tasks: nothing readable, each one noted
        assert not spec.images and len(spec.problems) == 2
        return
    with pytest.raises(error):
        read_dataset(p)


def test_missing_dataset_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_dataset(tmp_path / "nothing-here")


@pytest.mark.skipif(not NEU.is_dir(), reason="the shared NEU-DET copy is not present")
def test_neu_det_import_is_one_command_and_keeps_its_splits(tmp_path: Path) -> None:
    r = CliRunner().invoke(data_app, ["import", "--format", "voc", str(NEU), "--out", str(tmp_path / "neu")])
    assert r.exit_code == 0, r.output
    spec = read_dataset(tmp_path / "neu")
    assert spec.names == ("crazing", "inclusion", "patches", "pitted_surface", "rolled-in_scale", "scratches")
    assert {s: len(spec.split(s)) for s in spec.splits} == {"train": 1260, "val": 270, "test": 270}
    assert sum(len(r.boxes) for r in spec.images) == 4189
    img = next((tmp_path / "neu" / "images" / "train").iterdir())
    assert img.is_symlink()  # the images stay in the shared folder
    train_stems = {ln.strip() for ln in (NEU / "train.txt").read_text().splitlines() if ln.strip()}
    assert {r.path.stem for r in spec.split("train")} == train_stems


@pytest.mark.parametrize(
    ("image", "label"),
    [
        ("ds/images/train/a.jpg", "ds/labels/train/a.txt"),  # the ultralytics layout
        ("/abs/ds/images/a.PNG", "/abs/ds/labels/a.txt"),
        ("images/a.jpg", "labels/a.txt"),
        ("ds/images/v1/images/train/a.jpg", "ds/images/v1/labels/train/a.txt"),  # only the last images folder
        ("ds/images/train/images.jpg", "ds/labels/train/images.txt"),  # the file's own name is no folder
        ("ds/images/train/images", "ds/labels/train/images.txt"),
        ("ds/train/a.jpg", "ds/train/a.txt"),  # under no images folder: beside the image
        ("ds/my_images/a.jpg", "ds/my_images/a.txt"),  # a folder named exactly images, nothing else
        ("ds/images/a.v2.jpg", "ds/labels/a.v2.txt"),  # only the last suffix is replaced
    ],
)
def test_label_path_is_where_ultralytics_looks(image: str, label: str) -> None:
    assert label_path(Path(image)) == Path(label)


def test_label_lines_that_are_not_five_numbers_are_left_out_and_noted(tmp_path: Path) -> None:
    lbl = tmp_path / "a.txt"
    lbl.write_text(
        "0 0.5 0.5 0.2 0.2\n\n1.0 0.1 0.1 0.1 0.1\n2 0.5 0.5 0.2\n1.5 0.5 0.5 0.2 0.2\nx 1 1 1 1\n"
        "3 0.5 0.5 0.2 0.2 0.9\n"
    )
    problems: list[Problem] = []
    assert parse_labels(lbl, problems) == [(0, 0.5, 0.5, 0.2, 0.2), (1, 0.1, 0.1, 0.1, 0.1)]
    assert [p.path for p in problems] == [f"{lbl}:{n}" for n in (4, 5, 6, 7)]
    assert {p.kind for p in problems} == {"malformed_label"}
    assert parse_labels(tmp_path / "none.txt") == []  # no label file: a background image


def test_images_are_listed_by_suffix_in_any_case(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "folder.jpg").mkdir()  # a folder with an image's name is no image
    for name in ("b.JPG", "a.png", "notes.txt", "sub/c.webp"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path)] == ["a.png", "b.JPG", "sub/c.webp"]
    assert [p.name for p in list_images(tmp_path, recursive=False)] == ["a.png", "b.JPG"]


def test_the_trainers_reader_keeps_repeats_that_the_checker_reports(tmp_path: Path) -> None:
    """A balanced training list repeats rare images on purpose; ``validate`` must still see a listed-twice image."""
    data = make_yolo(tmp_path / "ds", n=6)
    (data.parent / "train.txt").write_text("./images/train/im0.jpg\n./images/train/im3.jpg\n./images/train/im0.jpg\n")
    data.write_text(data.read_text().replace("train: images/train", "train: train.txt"))
    spec = read_data_yaml(data)
    assert [p.name for p in spec.image_paths("train")] == ["im0.jpg", "im3.jpg", "im0.jpg"]
    assert spec.description() == data.absolute() and spec.name == "ds"
    assert all(r.width == 0 for r in spec.images)  # sizes are not read for training
    assert spec.split("train")[0].boxes.shape == (len(label_path(spec.images[0].path).read_text().splitlines()), 4)
    checked = read_dataset(data)
    assert [r.path.name for r in checked.split("train")] == ["im0.jpg", "im3.jpg"]
    assert [p.kind for p in checked.problems] == ["duplicate_image"]


def test_the_trainers_reader_refuses_what_it_could_not_train_on(tmp_path: Path) -> None:
    data = make_yolo(tmp_path / "ds", n=3)
    data.write_text(data.read_text().replace("test: images/test", "test: images/nowhere"))
    noted = [p.kind for p in read_dataset(data).problems if p.path.endswith("nowhere")]
    assert noted == ["missing_image"]  # the checker notes it
    with pytest.raises(ValueError, match="nowhere does not exist"):
        read_data_yaml(data)
    with pytest.raises(ValueError, match=r"not read from a YOLO data\.yaml"):
        read_dataset(
            write_dataset(read_dataset(make_yolo(tmp_path / "c", n=3)), tmp_path / "coco", "coco")
        ).description()
