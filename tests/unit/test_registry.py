"""The model registry on a temporary root: entries, promotion, broken entries, serving fall-back."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from inspector import registry
from inspector.detect.base import DetectorError
from inspector.registry import RegistryError


def _card(meta: dict[str, object]) -> str:
    return f"# Model card: {meta['version']}\n\nA test entry.\n"


def make_entry(root: Path, version: str, payload: bytes = b"weights-bytes") -> Path:
    """A registry entry with fake weights (the registry never parses them)."""
    src = root.parent / f"src-{version}.pt"
    src.write_bytes(payload)
    return registry.register(
        version,
        weights=src,
        meta={"recipe": {"name": "test"}, "created_at": f"2026-01-01T00:00:0{len(registry.list_versions(root))}"},
        card=_card({"version": version}),
        recipe_text="name: test\n",
        root=root,
    )


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "models"
    r.mkdir()
    (r / "recipes").mkdir()  # support folders are not versions
    (r / "recipes" / "x.yaml").write_text("name: x\n")
    return r


def test_register_writes_a_complete_entry(root: Path) -> None:
    path = make_entry(root, "det-1")
    assert sorted(p.name for p in path.iterdir()) == ["card.md", "meta.json", "recipe.yaml", "weights.pt"]
    meta = registry.load_meta("det-1", root)
    assert meta["version"] == "det-1"
    assert meta["weights_sha256"] == registry.sha256_file(path / "weights.pt")
    assert meta["weights_bytes"] == len(b"weights-bytes")
    assert registry.inspect_version("det-1", root).ok
    assert registry.list_versions(root) == ["det-1"]
    assert not [p for p in root.iterdir() if p.name.startswith(".staging")]


def test_register_refuses_an_existing_version_and_leaves_no_staging(root: Path) -> None:
    make_entry(root, "det-1")
    with pytest.raises(RegistryError, match="already exists"):
        make_entry(root, "det-1")
    with pytest.raises(RegistryError, match="extra file"):
        registry.register(
            "det-2",
            weights=root / "det-1" / "weights.pt",
            meta={},
            card="# c\n",
            files={"../escape.txt": root / "det-1" / "card.md"},
            root=root,
        )
    assert not (root / "det-2").exists()
    assert not [p for p in root.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("name", ["../up", "a/b", ".hidden", "", "x" * 101, "sp ace"])
def test_version_names_cannot_escape_the_registry(root: Path, name: str) -> None:
    with pytest.raises(RegistryError, match="invalid model version name"):
        registry.version_dir(name, root)


def test_new_version_names_do_not_collide(root: Path) -> None:
    import datetime as dt

    when = dt.datetime(2026, 3, 4, 5, 6)
    first = registry.new_version_name("bench-det", root, when)
    assert first == "bench-det-20260304-0506"
    make_entry(root, first)
    assert registry.new_version_name("bench-det", root, when) == "bench-det-20260304-0506-2"


def test_promotion_is_recorded_with_who_when_and_previous(root: Path) -> None:
    make_entry(root, "det-1")
    make_entry(root, "det-2")
    assert registry.active_version(root) is None
    first = registry.promote("det-1", by="alice", root=root)
    second = registry.promote("det-2", by="bob", note="better recall", root=root)
    active = json.loads((root / "active.json").read_text())
    assert active == second
    assert (active["version"], active["promoted_by"], active["previous"]) == ("det-2", "bob", "det-1")
    assert active["promoted_at"].endswith("+00:00")
    log = registry.promotions(root)
    assert [r["version"] for r in log] == ["det-1", "det-2"]
    assert log[0] == first and log[1]["note"] == "better recall"
    assert registry.resolve_weights(None, root) == (root / "det-2" / "weights.pt", "det-2")


def test_promote_refuses_missing_or_broken_versions(root: Path) -> None:
    with pytest.raises(RegistryError, match="no such version"):
        registry.promote("nope", root=root)
    make_entry(root, "det-1")
    (root / "det-1" / "weights.pt").unlink()
    with pytest.raises(RegistryError, match=r"weights\.pt is missing"):
        registry.promote("det-1", root=root)
    assert not (root / "active.json").exists()
    assert registry.promotions(root) == []


def _rm(name: str) -> Callable[[Path], None]:
    return lambda d: (d / name).unlink()


def _write(name: str, data: bytes) -> Callable[[Path], object]:
    return lambda d: (d / name).write_bytes(data)


def _meta_version(d: Path) -> None:
    meta = json.loads((d / "meta.json").read_text())
    meta["version"] = "someone-else"
    (d / "meta.json").write_text(json.dumps(meta))


BREAKAGES = [
    ("weights missing", _rm("weights.pt"), "weights.pt is missing"),
    ("weights empty", _write("weights.pt", b""), "weights.pt is empty"),
    ("weights replaced", _write("weights.pt", b"other bytes"), "does not match the checksum"),
    ("meta missing", _rm("meta.json"), "meta.json is missing"),
    ("meta corrupt", _write("meta.json", b'{"version": "det-2", '), "meta.json is corrupt"),
    ("meta not an object", _write("meta.json", b"[1, 2]"), "not a JSON object"),
    ("meta of another version", _meta_version, "names version 'someone-else'"),
    ("card missing", _rm("card.md"), "card.md is missing"),
    ("card not text", _write("card.md", b"\xff\xfe\x00garbage"), "card.md is corrupt"),
    ("card without title", _write("card.md", b"just some words\n"), "card.md is corrupt"),
]


@pytest.mark.parametrize(("label", "breakage", "message"), BREAKAGES, ids=[b[0] for b in BREAKAGES])
def test_a_broken_active_entry_is_a_clear_error_and_serving_falls_back(
    root: Path,
    caplog: pytest.LogCaptureFixture,
    label: str,
    breakage: Callable[[Path], object],
    message: str,
) -> None:
    make_entry(root, "det-1")
    make_entry(root, "det-2", payload=b"newer weights")
    registry.promote("det-1", root=root)
    registry.promote("det-2", root=root)
    breakage(root / "det-2")

    with pytest.raises(RegistryError, match=re.escape(message)) as err:
        registry.resolve_weights(None, root)
    assert "det-2" in str(err.value)
    assert isinstance(err.value, DetectorError)  # the CLI turns it into one line, exit code 2
    with pytest.raises(RegistryError, match=re.escape(message)):
        registry.resolve_weights("det-2", root)

    with caplog.at_level(logging.WARNING, logger="inspector.registry"):
        weights, version = registry.resolve_serving(root)
    assert (weights, version) == (root / "det-1" / "weights.pt", "det-1")
    assert message in caplog.text and "det-1" in caplog.text

    status = registry.inspect_version("det-2", root)
    assert not status.ok and any(message in p for p in status.problems)


def test_serving_with_no_intact_promotion_raises(root: Path) -> None:
    make_entry(root, "det-1")
    registry.promote("det-1", root=root)
    (root / "det-1" / "card.md").write_text("broken")
    with pytest.raises(RegistryError, match="no earlier promoted version is intact"):
        registry.resolve_serving(root)


def test_serving_survives_a_corrupt_active_pointer(root: Path) -> None:
    make_entry(root, "det-1")
    registry.promote("det-1", root=root)
    (root / "active.json").write_text("{not json")
    with pytest.raises(RegistryError, match="unreadable active-model pointer"):
        registry.resolve_weights(None, root)
    assert registry.resolve_serving(root) == (root / "det-1" / "weights.pt", "det-1")


def test_serving_without_any_promotion_says_how_to_get_one(root: Path) -> None:
    make_entry(root, "det-1")
    with pytest.raises(RegistryError, match="no active model"):
        registry.resolve_serving(root)
    with pytest.raises(RegistryError, match="no active model"):
        registry.resolve_weights(None, root)


def test_explicit_weights_paths_bypass_the_registry(root: Path, tmp_path: Path) -> None:
    pt = tmp_path / "any.pt"
    pt.write_bytes(b"x")
    assert registry.resolve_weights(str(pt), root) == (pt, None)
    with pytest.raises(DetectorError, match="model file not found"):
        registry.resolve_weights(str(tmp_path / "missing.pt"), root)
    with pytest.raises(RegistryError, match="no model version 'ghost'"):
        registry.resolve_weights("ghost", root)


def test_models_dir_comes_from_the_environment(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_entry(root, "det-1")
    registry.promote("det-1", root=root)
    monkeypatch.setenv("INSPECTOR_MODELS_DIR", str(root))
    assert registry.root_dir() == root
    assert registry.active_version() == "det-1"
    assert registry.resolve_serving() == (root / "det-1" / "weights.pt", "det-1")


def test_promotion_log_skips_unreadable_lines(root: Path) -> None:
    make_entry(root, "det-1")
    registry.promote("det-1", root=root)
    with (root / "promotions.jsonl").open("a") as f:
        f.write("garbage\n")
    registry.promote("det-1", by="carol", root=root)
    assert [r["promoted_by"] for r in registry.promotions(root)][-1] == "carol"
    assert len(registry.promotions(root)) == 2


def test_serving_hints_come_from_the_meta(root: Path) -> None:
    src = root.parent / "w.pt"
    src.write_bytes(b"w")
    registry.register(
        "det-9", weights=src, meta={"imgsz": 416, "operating_confidence": 0.3}, card="# Model card\n", root=root
    )
    assert registry.serving_hints("det-9", root) == {"imgsz": 416, "confidence": 0.3}
    assert registry.serving_hints(None, root) == {}
    (root / "det-9" / "meta.json").write_text("{broken")
    assert registry.serving_hints("det-9", root) == {}


# ------------------------------------------------------------------ versions kept without weights


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "250"}  # the table's cells on one line each
    return subprocess.run(
        [sys.executable, "-m", "inspector", "models", *args], capture_output=True, text=True, timeout=120, env=env
    )


def test_a_version_without_weights_is_listed_and_shown_but_never_served(root: Path) -> None:
    """Old versions keep their card and metrics in the repository; only their weights leave it."""
    make_entry(root, "det-1")
    make_entry(root, "det-2", payload=b"served")
    registry.promote("det-2", root=root)
    (root / "det-1" / "weights.pt").unlink()

    status = registry.inspect_version("det-1", root)
    assert not status.weights_present and status.record_ok and not status.ok
    assert status.state == "weights not present"
    assert registry.inspect_version("det-2", root).state == "ok"
    assert registry.list_versions(root) == ["det-1", "det-2"]
    with pytest.raises(RegistryError, match=r"'det-1' has no weights here: weights\.pt is missing"):
        registry.promote("det-1", root=root)
    assert registry.active_version(root) == "det-2"

    from inspector.api.routes.models import list_registry

    listed = {m["version"]: m for m in list_registry(root, serving="det-2")["models"]}
    assert listed.keys() == {"det-1", "det-2"}  # recipes/ is no version
    assert (listed["det-1"]["weights"], listed["det-1"]["weights_present"]) == (None, False)
    assert (listed["det-2"]["weights"], listed["det-2"]["weights_present"]) == ("det-2/weights.pt", True)

    table = _cli("list", "--models-dir", str(root))
    assert table.returncode == 0, table.stderr
    rows = {line.split("│")[2].strip(): line for line in table.stdout.splitlines() if "det-" in line}
    assert "│ -  " in rows["det-1"] and "weights not present" in rows["det-1"] and "BROKEN" not in table.stdout
    assert "│ ok " in rows["det-2"]
    shown = _cli("show", "det-1", "--models-dir", str(root))
    assert shown.returncode == 0 and shown.stdout.startswith("# Model card: det-1")
    assert "weights not present" in shown.stderr
    promoted = _cli("promote", "det-1", "--models-dir", str(root))
    assert promoted.returncode == 2 and "Traceback" not in promoted.stderr
    assert "has no weights here" in promoted.stderr and "cannot be served, promoted" in promoted.stderr
    (root / "det-1" / "card.md").write_text("no title")  # a broken record is still refused
    broken = _cli("show", "det-1", "--models-dir", str(root))
    assert broken.returncode == 2 and "card.md is corrupt" in broken.stderr


CM = {"labels": ["item", "dent", "background"], "matrix": [[5, 0, 1], [0, 2, 1], [1, 3, 0]]}


def _plottable_meta() -> dict[str, Any]:
    ev = {
        "per_class": {"item": {"ap50": 0.9}, "dent": {"ap50": 0.4}},
        "confusion_matrix": CM,
        "operating_confidence": 0.25,
        "pr_curve": {"recall": [0.0, 0.5, 1.0], "precision": {"item": [1.0, 0.9, 0.2], "dent": [1.0, 0.4, 0.0]}},
    }
    curves = {"epoch": [1.0, 2.0, 3.0], "train/box_loss": [2.0, 1.5, None], "metrics/mAP50(B)": [0.1, 0.2, 0.3]}
    return {
        "recipe": {"name": "test"},
        "training": {"curves": curves},
        "evaluations": {"synth-test": ev, "other-val": {"confusion_matrix": CM}},
        "primary_evaluation": "synth-test",
    }


def test_the_plots_command_draws_the_figures_from_the_stored_numbers(root: Path, tmp_path: Path) -> None:
    src = root.parent / "w.pt"
    src.write_bytes(b"w")
    registry.register("det-1", weights=src, meta=_plottable_meta(), card="# Model card: det-1\n", root=root)
    (root / "det-1" / "weights.pt").unlink()  # a version kept without weights is drawn all the same

    out = tmp_path / "figures"
    r = _cli("plots", "det-1", "--out", str(out), "--models-dir", str(root))
    assert r.returncode == 0, r.stderr
    expected = {"training_curves.png", "pr_curve.png", "confusion_matrix.png", "other-val-confusion_matrix.png"}
    assert {p.name for p in out.iterdir()} == expected
    assert sorted(Path(line).name for line in r.stdout.split()) == sorted(expected)
    for p in out.iterdir():
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 2000
    assert not list((root / "det-1").glob("*.png"))

    beside = _cli("plots", "det-1", "--models-dir", str(root))  # default: beside the card
    assert beside.returncode == 0 and {p.name for p in (root / "det-1").glob("*.png")} == expected


def test_the_plots_command_says_which_figures_a_version_has_no_numbers_for(root: Path, tmp_path: Path) -> None:
    meta = _plottable_meta()
    meta.pop("training")
    meta["evaluations"] = {"synth-test": {"confusion_matrix": CM}}
    src = root.parent / "w.pt"
    src.write_bytes(b"w")
    registry.register("old-1", weights=src, meta=meta, card="# Model card: old-1\n", root=root)
    r = _cli("plots", "old-1", "--out", str(tmp_path), "--models-dir", str(root))
    assert r.returncode == 0, r.stderr
    assert [Path(line).name for line in r.stdout.split()] == ["confusion_matrix.png"]
    assert "not drawn: training curves, pr curve" in r.stderr
