"""Anomaly models from good items only: a tiny one trained on a handful of renders, its file, its thresholds."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest
from typer.testing import CliRunner

from inspector import registry
from inspector.anomaly.base import AnomalyError, AnomalyScorer
from inspector.anomaly.features import for_inference, item_crop
from inspector.anomaly.load import load_scorer
from inspector.anomaly.metrics import aupro, auroc
from inspector.anomaly.model import AnomalyModel
from inspector.data.synth import Bench
from inspector.training import anomaly as train

FAMILY = "boxed"
U8 = npt.NDArray[np.uint8]


@dataclass
class Tiny:
    model: AnomalyModel
    damaged: U8  # RGB crop with a burn
    twin: U8  # the same crop without it
    burn_box: tuple[float, float, float, float]  # in crop pixels
    good: list[U8]


def _crop(image: U8, box: list[float]) -> tuple[U8, tuple[int, int, int, int]]:
    c, win = item_crop(image, box)
    return np.ascontiguousarray(c[:, :, ::-1]), win


@pytest.fixture(scope="module")
def tiny() -> Tiny:
    """A PatchCore model fitted in seconds: good boxes from other benches plus the test item's clean view."""
    r = Bench(203).render(3, family=FAMILY, defect_free=True, unknown=("burn",), with_clean=True)
    assert r.clean is not None
    damaged, (a, b, _, _) = _crop(r.image, r.meta["item"]["box"])
    twin = np.ascontiguousarray(r.clean[b : b + damaged.shape[0], a : a + damaged.shape[1], ::-1])
    x0, y0, x1, y1 = r.meta["unknown"][0]["box"]
    good = [
        _crop(g.image, g.meta["item"]["box"])[0]
        for g in (Bench(100 + i).render(i, family=FAMILY, defect_free=True) for i in range(4))
    ]
    ex = train.extractor(threads=2)
    run = for_inference(ex)
    fm = train.fit_family("patchcore", train.extract(run, [twin, *good[:2]]), train.extract(run, good[2:]))
    model = AnomalyModel(ex, {FAMILY: fm}, version="tiny", runner=run)
    return Tiny(model, damaged, twin, (x0 - a, y0 - b, x1 - a, y1 - b), good)


def test_a_tiny_model_finds_a_burn_on_an_item_it_learned_as_good(tiny: Tiny) -> None:
    assert isinstance(tiny.model, AnomalyScorer)
    hurt, clean = tiny.model.score(tiny.damaged, FAMILY), tiny.model.score(tiny.twin, FAMILY)
    assert hurt.score > clean.score
    assert hurt.heat.shape == tiny.damaged.shape[:2]
    y, x = np.unravel_index(int(hurt.heat.argmax()), hurt.heat.shape)
    x0, y0, x1, y1 = tiny.burn_box
    pad = 6  # the map is smoothed (sigma 4 px at the model's input)
    assert x0 - pad <= x <= x1 + pad and y0 - pad <= y <= y1 + pad


@pytest.fixture(scope="module")
def blended(tiny: Tiny) -> AnomalyModel:
    """PatchCore and the painted-damage classifier on the same few good crops (seconds)."""
    from inspector.training.painted import fit_head

    run = tiny.model._run
    head = fit_head(run, [tiny.twin, *tiny.good[:2]], copies=4, epochs=6, log=lambda _: None)
    fm = train.fit_family(
        "patchcore+painted",
        train.extract(run, [tiny.twin, *tiny.good[:2]]),
        train.extract(run, tiny.good[2:]),
        head=head,
    )
    return AnomalyModel(tiny.model._extractor, {FAMILY: fm}, version="tiny-blend", runner=run)


def test_the_blend_of_patchcore_and_the_painted_classifier_finds_the_burn(blended: AnomalyModel, tiny: Tiny) -> None:
    hurt, clean = blended.score(tiny.damaged, FAMILY), blended.score(tiny.twin, FAMILY)
    assert hurt.score > clean.score
    y, x = np.unravel_index(int(hurt.heat.argmax()), hurt.heat.shape)
    x0, y0, x1, y1 = tiny.burn_box
    assert x0 - 6 <= x <= x1 + 6 and y0 - 6 <= y <= y1 + 6
    fm = blended.family(FAMILY)
    assert fm.arrays["scales"].shape == (2,) and (fm.arrays["scales"] > 0).all()  # each part over its own threshold


def test_a_blended_model_file_scores_as_the_model_in_memory(blended: AnomalyModel, tiny: Tiny, tmp_path: Path) -> None:
    path = tmp_path / "blend.pt"
    blended.save(path)
    again = AnomalyModel.load(path, version="blend")
    assert again.family(FAMILY).method == "patchcore+painted"
    # banks and weights are stored in half precision
    assert again.score(tiny.damaged, FAMILY).score == pytest.approx(blended.score(tiny.damaged, FAMILY).score, rel=0.02)


def test_painting_touches_only_the_blotch_away_from_the_border() -> None:
    from inspector.training.painted import paint

    rng = np.random.default_rng(1)
    image = np.full((224, 224, 3), 128, np.uint8)
    others = [np.zeros((50, 80, 3), np.uint8)]
    for _ in range(10):
        out, mask = paint(rng, image, others)
        assert mask.any() and not mask[:22].any() and not mask[:, -22:].any()
        grown = cv2.dilate(mask.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
        assert (out[~grown] == 128).all()  # the soft edge of the blotch reaches a few pixels, no further


@pytest.mark.parametrize(
    ("method", "head", "message"),
    [("mahalanobis", None, "unknown anomaly method"), ("painted", None, "needs the painted-damage classifier")],
)
def test_fit_family_names_what_is_missing(tiny: Tiny, method: str, head: None, message: str) -> None:
    feats = train.extract(tiny.model._run, tiny.good[:2])
    with pytest.raises(ValueError, match=message):
        train.fit_family(method, feats, feats, head=head)


def test_another_family_is_refused(tiny: Tiny) -> None:
    with pytest.raises(AnomalyError, match="'shoe'"):
        tiny.model.score(tiny.twin, "shoe")


def _register(tiny: Tiny, root: Path, version: str, tmp: Path) -> Path:
    weights = tmp / f"{version}.pt"
    tiny.model.save(weights)
    fm = tiny.model.family(FAMILY)
    meta = {
        "task": "anomaly",
        "method": "patchcore",
        "families": {FAMILY: {"threshold": fm.threshold, "pixel_threshold": fm.pixel_threshold}},
    }
    return registry.register(version, weights=weights, meta=meta, card="# tiny\n", root=root)


def _set_threshold(folder: Path, value: float) -> None:
    meta_path = folder / registry.META_FILE
    meta = json.loads(meta_path.read_text())
    meta["families"][FAMILY]["threshold"] = value
    meta_path.write_text(json.dumps(meta))


def test_thresholds_come_from_the_versions_meta(tiny: Tiny, tmp_path: Path) -> None:
    root = tmp_path / "models"
    folder = _register(tiny, root, "anomaly-a", tmp_path)
    score = tiny.model.score(tiny.damaged, FAMILY).score
    copy = root / "anomaly-b"
    shutil.copytree(folder, copy)
    for value, anomalous in ((score * 0.5, True), (score * 2.0, False)):
        _set_threshold(copy, value)
        result = load_scorer("anomaly-b", root).score(tiny.damaged, FAMILY)
        assert result.threshold == pytest.approx(value)
        assert result.anomalous is anomalous
    assert load_scorer("anomaly-a", root).score(tiny.damaged, FAMILY).score == pytest.approx(score, rel=1e-4)


def _write_garbage(p: Path) -> None:
    p.write_bytes(b"not a model at all")


def _truncate(p: Path) -> None:
    p.write_bytes(p.read_bytes()[:2000])


def _torchscript_without_header(p: Path) -> None:
    import torch

    torch.jit.save(torch.jit.script(torch.nn.Identity()), str(p))


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        (lambda p: p.unlink(), "not found"),
        (_write_garbage, "not a readable anomaly model"),
        (_truncate, "not a readable anomaly model"),
        (_torchscript_without_header, "corrupt anomaly model"),
    ],
)
def test_a_missing_or_corrupt_model_file_is_a_clear_error(tiny: Tiny, tmp_path: Path, spoil, message: str) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "models"
    folder = _register(tiny, root, "anomaly-x", tmp_path)
    weights = folder / registry.WEIGHTS_FILE
    spoil(weights)
    with pytest.raises(AnomalyError, match=message) as exc:
        load_scorer("anomaly-x", root)
    assert str(weights) in str(exc.value)


def test_a_broken_meta_is_named(tiny: Tiny, tmp_path: Path) -> None:
    root = tmp_path / "models"
    folder = _register(tiny, root, "anomaly-m", tmp_path)
    (folder / registry.META_FILE).write_text("{not json")
    with pytest.raises(AnomalyError, match=r"meta\.json: unreadable"):
        load_scorer("anomaly-m", root)


def test_an_anomaly_version_has_its_own_active_pointer(tiny: Tiny, tmp_path: Path) -> None:
    from inspector.cli import app

    root = tmp_path / "models"
    det_src = tmp_path / "det.pt"
    det_src.write_bytes(b"detector")
    registry.register("det-1", weights=det_src, meta={"task": "detect"}, card="# det\n", root=root)
    registry.promote("det-1", root=root, by="test")
    before = (root / registry.ACTIVE_FILE).read_bytes()
    with pytest.raises(AnomalyError, match="no active anomaly model"):
        load_scorer(None, root)
    _register(tiny, root, "anomaly-p", tmp_path)
    res = CliRunner().invoke(app, ["models", "promote", "anomaly-p", "--models-dir", str(root), "--by", "test"])
    assert res.exit_code == 0, res.output
    assert "active anomaly model: anomaly-p" in res.output
    assert (root / registry.ACTIVE_FILE).read_bytes() == before
    assert registry.active_version(root, registry.ANOMALY_ACTIVE_FILE) == "anomaly-p"
    assert registry.resolve_serving(root)[1] == "det-1"
    assert load_scorer(None, root).version == "anomaly-p"


def test_a_running_station_follows_the_anomaly_pointer(tiny: Tiny, tmp_path: Path) -> None:
    """A promoted anomaly model is served without a restart; one that does not load leaves the last one serving."""
    from inspector.api.hotswap import ModelWatcher
    from inspector.api.service import PipelineSlot
    from inspector.config import RegistryConfig
    from inspector.pipeline import build_pipeline
    from tests.api.conftest import make_settings
    from tests.builders import dets
    from tests.unit.test_pipeline import ITEM, ScriptedDetector

    root = tmp_path / "models"
    for version in ("anomaly-a", "anomaly-b", "anomaly-c"):
        _register(tiny, root, version, tmp_path)
    registry.promote("anomaly-a", root=root, by="test")
    settings = make_settings(tmp_path)
    settings.registry = RegistryConfig(root=root)
    pipeline = build_pipeline(settings, detector=ScriptedDetector(dets([ITEM])))
    assert pipeline.anomaly_status["version"] == "anomaly-a"
    slot = PipelineSlot()
    slot.set(pipeline)
    watcher = ModelWatcher(settings, slot)
    watcher.prime()
    assert watcher.check_anomaly()["swapped"] is False, "nothing promoted since start-up"

    registry.promote("anomaly-b", root=root, by="test")
    assert watcher.check_anomaly() == {"swapped": True, "serving": "anomaly-b", "previous": "anomaly-a", "reason": None}
    assert pipeline.anomaly_status["version"] == "anomaly-b"
    assert watcher.check()["swapped"] is False, "the detector's pointer did not move"

    registry.promote("anomaly-c", root=root, by="test")
    (root / "anomaly-c" / registry.WEIGHTS_FILE).write_bytes(b"corrupt")
    out = watcher.check_anomaly()
    assert out["swapped"] is False and out["serving"] == "anomaly-b"
    assert out["reason"].startswith("anomaly model anomaly-c: ")
    assert pipeline.anomaly_status["version"] == "anomaly-b"

    pinned = settings.model_copy(update={"anomaly": settings.anomaly.model_copy(update={"model": "anomaly-a"})})
    assert ModelWatcher(pinned, slot).check_anomaly(force=True)["reason"] == "the configuration pins it"


def test_train_anomaly_from_a_folder_of_good_crops(tiny: Tiny, tmp_path: Path) -> None:
    from inspector.cli import app

    data = tmp_path / "crops" / FAMILY
    data.mkdir(parents=True)
    for i, c in enumerate([tiny.twin, *tiny.good]):
        cv2.imwrite(str(data / f"{i}.png"), c[:, :, ::-1])
    root = tmp_path / "models"
    args = ["train", "--task", "anomaly", "--family", FAMILY, "--data", str(data.parent), "--models-dir", str(root)]
    res = CliRunner().invoke(app, [*args, "--name", "anomaly-cli"])
    assert res.exit_code == 0, res.output
    meta = registry.load_meta("anomaly-cli", root)
    assert meta["task"] == "anomaly"
    assert set(meta["families"]) == {FAMILY}
    card = (root / "anomaly-cli" / registry.CARD_FILE).read_text()
    assert f"{meta['families'][FAMILY]['threshold']:.4f}" in card
    assert load_scorer("anomaly-cli", root).families == (FAMILY,)
    bad = CliRunner().invoke(app, [*args[:-2], str(tmp_path / "none"), "--models-dir", str(root)])
    assert bad.exit_code != 0


# ------------------------------------------------------------------ metrics on hand-built maps


def _square(size: int, y0: int, y1: int, x0: int, x1: int) -> npt.NDArray[np.bool_]:
    m = np.zeros((size, size), bool)
    m[y0:y1, x0:x1] = True
    return m


_ONE = _square(10, 2, 4, 2, 4)
_TWO = _ONE | _square(10, 7, 9, 7, 9)


@pytest.mark.parametrize(
    ("maps", "masks", "expected"),
    [
        ([_ONE.astype(float)], [_ONE], 1.0),  # every region found before any false pixel
        ([np.ones((10, 10))], [_ONE], 0.15),  # one threshold: PRO = FPR, area 0.3^2/2 over 0.3
        ([_ONE * 2.0 - (_TWO & ~_ONE)], [_TWO], 0.5),  # one region found, the other below every clean pixel
        ([_ONE.astype(float), np.zeros((10, 10))], [_ONE, np.zeros((10, 10), bool)], 1.0),  # clean image adds FPR only
    ],
)
def test_aupro_on_hand_built_maps(maps: list[np.ndarray], masks: list[np.ndarray], expected: float) -> None:  # type: ignore[type-arg]
    assert aupro(maps, masks) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("scores", "labels", "expected"),
    [
        ([1, 2, 3, 4], [0, 0, 1, 1], 1.0),
        ([4, 3, 2, 1], [0, 0, 1, 1], 0.0),
        ([1, 1], [0, 1], 0.5),
        ([1, 2, 4, 3], [0, 1, 1, 0], 0.75),
    ],
)
def test_auroc_on_hand_built_scores(scores: list[float], labels: list[int], expected: float) -> None:
    assert auroc(scores, labels) == pytest.approx(expected)


@pytest.mark.parametrize(("fa", "expected"), [(0.0, 10.0), (0.1, 9.0), (0.25, 8.0)])
def test_threshold_at_a_false_alarm_rate(fa: float, expected: float) -> None:
    t = train.threshold_at(np.arange(1.0, 11.0), fa)
    assert t == pytest.approx(expected)
    assert (np.arange(1.0, 11.0) >= t).mean() <= fa


def test_the_served_figures_are_measured_at_the_models_own_thresholds(tiny: Tiny) -> None:
    """The bench's served record counts a clean view over the threshold as a false alarm, a burn over it as caught."""
    views = [
        train.View(FAMILY, "clean", tiny.twin, np.zeros(tiny.twin.shape[:2], bool)),
        train.View(FAMILY, "burn", tiny.damaged, np.ones(tiny.damaged.shape[:2], bool)),
        train.View("phone", "clean", tiny.twin, np.zeros(tiny.twin.shape[:2], bool)),  # a family it lacks: left out
    ]
    clean, burn = tiny.model.score(tiny.twin, FAMILY), tiny.model.score(tiny.damaged, FAMILY)
    threshold = (clean.score + burn.score) / 2  # between the two: the clean view passes, the burn is caught
    fm = tiny.model.family(FAMILY)
    between = tiny.model.with_thresholds({FAMILY: {"threshold": threshold, "pixel_threshold": fm.pixel_threshold}})
    got = train.served_figures(between, views)
    assert got["n"] == {"clean": 1, "damaged": 1, "unknown": 1}
    assert (got["false_alarm_at_threshold"], got["unknown_caught_at_threshold"], got["auroc"]) == (0.0, 1.0, 1.0)
    low = tiny.model.with_thresholds({FAMILY: {"threshold": clean.score / 2}})  # both over it
    assert train.served_figures(low, views)["false_alarm_at_threshold"] == 1.0
