"""Pretraining support: merged datasets over a union of class names, ``--init pretrain``."""

from __future__ import annotations

from pathlib import Path

import pytest

from inspector import registry
from inspector.data.formats import label_path, merge_datasets, read_data_yaml
from inspector.training.run import newest_pretrain, resolve_init
from tests.builders import tiny_yolo_dataset


def _relabelled(root: Path, names: list[str]) -> Path:
    """A tiny dataset with its own class list (every box class 0 = ``names[0]``)."""
    data = tiny_yolo_dataset(root, n_train=3, n_val=2)
    text = data.read_text().split("names:")[0] + "names:\n" + "".join(f"  {i}: {n}\n" for i, n in enumerate(names))
    data.write_text(text)
    return data


def test_merge_keeps_the_first_ids_and_maps_the_others_by_name(tmp_path: Path) -> None:
    first = read_data_yaml(tiny_yolo_dataset(tmp_path / "a", n_train=4, n_val=2))
    other = read_data_yaml(_relabelled(tmp_path / "b", ["crazing", first.names[3]]))
    (tmp_path / "b" / "images" / "test").mkdir()
    merged = read_data_yaml(merge_datasets([first, other], tmp_path / "m"))
    assert merged.names == (*first.names, "crazing")
    assert len(merged.image_paths("train")) == 4 + 3 and len(merged.image_paths("val")) == 2 + 2
    assert "test" not in merged.splits  # test splits never enter training
    assert merged.image_paths("train")[:4] == first.image_paths("train")  # ids already right: listed as they are
    moved = merged.image_paths("train")[4]
    assert moved.is_symlink() and moved.resolve() == other.image_paths("train")[0].resolve()
    assert label_path(moved).read_text().split()[0] == str(len(first.names))  # crazing's id in the union
    for img in other.image_paths("train"):  # sources untouched
        assert label_path(img).read_text().split()[0] == "0"


def test_merging_sets_with_the_same_classes_lists_their_files(tmp_path: Path) -> None:
    a = read_data_yaml(tiny_yolo_dataset(tmp_path / "a", n_train=2, n_val=1))
    b = read_data_yaml(tiny_yolo_dataset(tmp_path / "b", n_train=3, n_val=1, seed=1))
    merged = read_data_yaml(merge_datasets([a, b], tmp_path / "new" / "m"))
    assert merged.names == a.names
    assert merged.image_paths("train") == a.image_paths("train") + b.image_paths("train")


def test_merge_refuses_nothing_to_merge(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="nothing to merge"):
        merge_datasets([], tmp_path)


def _entry(root: Path, version: str, role: str | None, created: str) -> None:
    src = root.parent / f"{version}.pt"
    src.write_bytes(version.encode())
    recipe = {"name": version.rsplit("-", 1)[0]} | ({"role": role} if role else {})
    registry.register(
        version, weights=src, meta={"recipe": recipe, "created_at": created}, card=f"# {version}\n", root=root
    )


def test_init_pretrain_is_the_newest_checkpoint_else_the_active_model(tmp_path: Path) -> None:
    root = tmp_path / "models"
    root.mkdir()
    _entry(root, "det-1", None, "2026-01-01T00:00:00")
    registry.promote("det-1", by="test", root=root)
    assert newest_pretrain(root) is None
    path, label = resolve_init("pretrain", root)
    assert path == root / "det-1" / "weights.pt" and "active" in label
    _entry(root, "pre-1", "pretrain", "2026-01-02T00:00:00")
    _entry(root, "pre-2", "pretrain", "2026-01-03T00:00:00")
    _entry(root, "det-2", "detector", "2026-01-04T00:00:00")
    assert newest_pretrain(root) == "pre-2"
    path, label = resolve_init("pretrain", root)
    assert path == root / "pre-2" / "weights.pt" and label == "version pre-2 (pretraining checkpoint)"
    (root / "pre-2" / "weights.pt").unlink()  # kept as card and metrics only: the older checkpoint serves
    assert newest_pretrain(root) == "pre-1"


def test_a_pretraining_recipe_is_marked_in_the_card() -> None:
    from inspector.training.card import render_card

    assert "pretraining checkpoint" in render_card({"version": "p", "recipe": {"role": "pretrain"}})
    assert "pretraining checkpoint" not in render_card({"version": "d", "recipe": {"name": "d"}})
