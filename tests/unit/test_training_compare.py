"""Champion/challenger statistics on hand-made validator rows (ultralytics' ap_per_class), and the promotion guard."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from inspector import registry
from inspector.metrics import ap_per_class
from inspector.training.champion import PromotionRefused, guarded_promote, promotion_check
from inspector.training.compare import bootstrap_compare, comparison_text, regressions
from inspector.training.ultralytics import ImageMatches

NAMES = ("item", "scratch")


def image(name: str, hits: list[tuple[int, float, bool]], targets: list[int]) -> ImageMatches:
    """Predictions (class, confidence, correct at every IoU threshold) and true classes of one image."""
    tp = np.array([[ok] * 10 for _, _, ok in hits], dtype=bool).reshape(-1, 10)
    return ImageMatches(
        name=name,
        tp=tp,
        conf=np.array([c for _, c, _ in hits], dtype=np.float64),
        pred_cls=np.array([k for k, _, _ in hits], dtype=np.float64),
        target_cls=np.array(targets, dtype=np.float64),
    )


def perfect(n: int) -> list[ImageMatches]:
    return [image(f"{i}.jpg", [(0, 0.9, True), (1, 0.8, True)], [0, 1]) for i in range(n)]


def blind_to_scratches(n: int) -> list[ImageMatches]:
    return [image(f"{i}.jpg", [(0, 0.9, True), (1, 0.8, False)], [0, 1]) for i in range(n)]


def test_identical_models_differ_by_nothing() -> None:
    out = bootstrap_compare(perfect(12), perfect(12), NAMES, resamples=50, seed=3)
    assert out["images"] == 12 and out["resamples"] == 50
    assert out["map50"]["delta"] == 0.0 and out["map50"]["delta_ci"] == [0.0, 0.0]
    for row in out["per_class"].values():
        assert row["delta"] == 0.0 and row["delta_ci"] == [0.0, 0.0] and row["instances"] == 12
    assert regressions(out, 0.0) == []


def test_a_class_the_challenger_lost_shows_with_its_interval() -> None:
    out = bootstrap_compare(perfect(12), blind_to_scratches(12), NAMES, resamples=100)
    item, scratch = out["per_class"]["item"], out["per_class"]["scratch"]
    assert item["champion_ap50"] == pytest.approx(item["challenger_ap50"])
    assert scratch["champion_ap50"] > 0.9 and scratch["challenger_ap50"] == 0.0
    assert scratch["delta_ci"][1] < 0, "the whole interval lies below zero"
    assert out["map50"]["delta"] == pytest.approx((item["delta"] + scratch["delta"]) / 2)
    worse = regressions(out, 0.05)
    assert len(worse) == 1 and worse[0].startswith("scratch:")
    text = comparison_text("a", "b", out)
    assert "| scratch | 12 |" in text and "paired bootstrap" in text


def test_pooled_full_sample_equals_ap_per_class_on_all_rows() -> None:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(15):
        hits = [(int(rng.integers(0, 2)), float(rng.random()), bool(rng.random() < 0.6)) for _ in range(3)]
        rows.append(image(f"{i}.jpg", hits, [int(c) for c in rng.integers(0, 2, 2)]))
    out = bootstrap_compare(rows, rows, NAMES, resamples=10)
    ap, classes = ap_per_class(
        np.concatenate([r.tp for r in rows]),
        np.concatenate([r.conf for r in rows]),
        np.concatenate([r.pred_cls for r in rows]),
        np.concatenate([r.target_cls for r in rows]),
    )
    direct = {NAMES[int(c)]: float(a[0]) for a, c in zip(ap, classes, strict=True)}
    assert {k: v["champion_ap50"] for k, v in out["per_class"].items()} == pytest.approx(direct)
    assert out["map50"]["champion"] == pytest.approx(float(np.mean(list(direct.values()))))
    direct95 = {NAMES[int(c)]: float(a.mean()) for a, c in zip(ap, classes, strict=True)}
    assert {k: v["champion_ap50_95"] for k, v in out["per_class"].items()} == pytest.approx(direct95)
    assert out["map50_95"]["champion"] == pytest.approx(float(np.mean(list(direct95.values()))))
    assert out["map50_95"]["delta"] == 0.0 and out["map50_95"]["delta_ci"] == [0.0, 0.0]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ap_per_class_gives_ultralytics_figures(seed: int) -> None:
    """The comparison reports ultralytics' AP: the same figures on random rows, ties and unlabelled classes included."""
    from ultralytics.utils.metrics import ap_per_class as ultralytics_ap_per_class

    rng = np.random.default_rng(seed)
    n = 60
    tp = rng.random((n, 10)) < np.linspace(0.8, 0.2, 10)
    conf = np.round(rng.random(n), 1)  # few distinct values: many ties
    pred_cls = rng.integers(0, 4, n).astype(np.float64)
    target_cls = rng.integers(0, 3, 25).astype(np.float64)  # class 3 is predicted but never labelled
    target_cls[:2] = 2.0
    pred_cls[pred_cls == 2] = 1.0  # class 2 is labelled but never predicted: AP 0
    ap, classes = ap_per_class(tp, conf, pred_cls, target_cls)
    out = ultralytics_ap_per_class(tp, conf, pred_cls, target_cls, plot=False)
    np.testing.assert_array_equal(classes, out[6])
    np.testing.assert_allclose(ap, out[5], rtol=0, atol=1e-12)
    assert ap[list(classes).index(2)].tolist() == [0.0] * 10 and ap.max() > 0.3


def test_the_two_models_must_be_scored_on_the_same_images() -> None:
    with pytest.raises(ValueError, match="same images"):
        bootstrap_compare(perfect(3), perfect(4), NAMES, resamples=5)


# ------------------------------------------------------------------ the promotion guard


def _version(root: Path, name: str, created: str) -> None:
    weights = root.parent / f"{name}.pt"
    weights.write_bytes(b"not really a model, but the registry only checks the bytes " + name.encode())
    registry.register(name, weights=weights, meta={"created_at": created}, card=f"# {name}\n", root=root)


def _comparison(delta_scratch: float) -> dict[str, Any]:
    return {
        "images": 10,
        "map50": {"champion": 0.8, "challenger": 0.8 + delta_scratch / 2, "delta": delta_scratch / 2},
        "per_class": {
            "item": {"champion_ap50": 0.9, "challenger_ap50": 0.9, "delta": 0.0, "delta_ci": [0, 0], "instances": 10},
            "scratch": {
                "champion_ap50": 0.7,
                "challenger_ap50": 0.7 + delta_scratch,
                "delta": delta_scratch,
                "delta_ci": [delta_scratch - 0.1, delta_scratch + 0.1],
                "instances": 10,
            },
        },
        "dataset": {"name": "bench"},
    }


def _set_comparison(root: Path, version: str, champion: str, comparison: dict[str, Any]) -> None:
    meta = registry.load_meta(version, root)
    meta["comparisons"] = {champion: comparison}
    registry.save_meta(version, meta, root)


@pytest.fixture
def reg(tmp_path: Path) -> Path:
    root = tmp_path / "models"
    _version(root, "champ", "2026-12-01T00:00:00")
    _version(root, "chall", "2026-12-02T00:00:00")
    registry.promote("champ", by="test", root=root)
    return root


def test_a_challenger_never_compared_is_refused(reg: Path) -> None:
    check = promotion_check("chall", root=reg)
    assert not check["ok"] and "has not been compared" in check["reason"]
    with pytest.raises(PromotionRefused, match="models compare champ chall"):
        guarded_promote("chall", root=reg)
    assert registry.active_version(reg) == "champ"
    assert promotion_check("champ", root=reg)["ok"], "promoting the active version again needs no comparison"


def test_worse_beyond_tolerance_is_refused_unless_forced_and_the_log_says_who(reg: Path) -> None:
    _set_comparison(reg, "chall", "champ", _comparison(-0.2))
    with pytest.raises(PromotionRefused, match=r"scratch: AP50 0\.700 -> 0\.500"):
        guarded_promote("chall", root=reg, tolerance=0.05)
    with pytest.raises(PromotionRefused, match="needs --by"):
        guarded_promote("chall", root=reg, tolerance=0.05, force=True, by="ana")
    assert registry.active_version(reg) == "champ"
    rec = guarded_promote("chall", root=reg, tolerance=0.05, force=True, by="ana", reason="scratch labels fixed")
    assert registry.active_version(reg) == "chall"
    logged = registry.promotions(reg)[-1]
    assert logged == rec
    assert logged["promoted_by"] == "ana" and logged["previous"] == "champ"
    guard = logged["guard"]
    assert guard["forced"] is True and guard["forced_by"] == "ana" and guard["forced_reason"] == "scratch labels fixed"
    assert guard["passed"] is False and guard["regressions"][0].startswith("scratch:")


def test_within_tolerance_is_promoted_and_recorded_as_passed(reg: Path) -> None:
    _set_comparison(reg, "chall", "champ", _comparison(-0.01))
    rec = guarded_promote("chall", root=reg, tolerance=0.05, by="ci")
    assert rec["guard"] == {"tolerance": 0.05, "champion": "champ", "passed": True, "map50_delta": -0.005}
    assert json.loads((reg / "active.json").read_text())["version"] == "chall"


def test_the_cli_refuses_in_one_line(reg: Path) -> None:
    _set_comparison(reg, "chall", "champ", _comparison(-0.3))
    cmd = [sys.executable, "-m", "inspector", "models", "promote", "chall", "--models-dir", str(reg)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.startswith("error: promotion refused: chall is worse than champ") and r.stderr.count("\n") == 1
    r = subprocess.run(
        [*cmd, "--force", "--by", "ana", "--reason", "hotfix"], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    assert "FORCED over: scratch" in r.stdout
    assert registry.promotions(reg)[-1]["guard"]["forced_by"] == "ana"
