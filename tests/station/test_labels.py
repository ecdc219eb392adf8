"""RMA / LPN label reading: codes drawn on a bench scene and read back."""

from __future__ import annotations

import importlib.util

import cv2
import numpy as np
import pytest

from station.labels import LabelReader, item_codes
from tests.station.standin import textured_bench

HAS_ZXING = importlib.util.find_spec("zxingcpp") is not None
BACKENDS = ["opencv", pytest.param("zxing", marks=pytest.mark.skipif(not HAS_ZXING, reason="zxing-cpp not installed"))]


def _qr(text: str, module_px: int = 4) -> np.ndarray:
    code = cv2.QRCodeEncoder.create().encode(text)
    code = cv2.resize(code, None, fx=module_px, fy=module_px, interpolation=cv2.INTER_NEAREST)
    return cv2.copyMakeBorder(code, 16, 16, 16, 16, cv2.BORDER_CONSTANT, value=255)


def _on_bench(*patches: tuple[np.ndarray, int, int]) -> np.ndarray:
    scene = textured_bench(640, 480, seed=5)
    for gray_or_bgr, x, y in patches:
        patch = cv2.cvtColor(gray_or_bgr, cv2.COLOR_GRAY2BGR) if gray_or_bgr.ndim == 2 else gray_or_bgr
        h, w = patch.shape[:2]
        scene[y : y + h, x : x + w] = patch
    return scene


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_qr_label_is_read_back(backend: str) -> None:
    reader = LabelReader(backend=backend)  # type: ignore[arg-type]
    reads = reader.read(_on_bench((_qr("RMA-2024-000123"), 40, 60)))
    assert [(r.kind, r.value) for r in reads] == [("rma", "RMA-2024-000123")]
    xs = [p[0] for p in reads[0].polygon]
    assert min(xs) >= 40 and max(xs) <= 40 + 157  # where the label is


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_structured_qr_gives_both_numbers(backend: str) -> None:
    reader = LabelReader(backend=backend)  # type: ignore[arg-type]
    reads = reader.read(_on_bench((_qr("rma=RMA-77881;lpn=LPN00012345"), 300, 200)))
    assert item_codes(reads) == ("RMA-77881", "LPN00012345")


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_empty_bench_has_no_label(backend: str) -> None:
    assert LabelReader(backend=backend).read(textured_bench(640, 480, seed=5)) == []  # type: ignore[arg-type]


@pytest.mark.skipif(not HAS_ZXING, reason="zxing-cpp not installed")
def test_a_code128_lpn_is_read_with_zxing() -> None:
    import zxingcpp

    code = zxingcpp.create_barcode("LPNQ7F3K2M9X1", zxingcpp.BarcodeFormat.Code128)
    bars = np.asarray(code.to_image(scale=2, add_quiet_zones=True))[:90]
    reads = LabelReader(backend="zxing").read(_on_bench((bars, 60, 300), (_qr("RMA-5551212"), 420, 40)))
    assert item_codes(reads) == ("RMA-5551212", "LPNQ7F3K2M9X1")
    assert any("128" in r.symbology for r in reads)


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("RMA-2024-000123", "rma", "RMA-2024-000123"),
        ("rma123456", "rma", "RMA123456"),
        ("  RMA 99-887  ", "rma", "RMA 99-887"),
        ("LPN00012345", "lpn", "LPN00012345"),
        ("lpn-ab12cd34", "lpn", "LPN-AB12CD34"),
        ('{"rma": "RMA-42424", "sku": "X1"}', "rma", "RMA-42424"),
        ("https://returns.example/r?lpn=LPNZZ998877", "lpn", "LPNZZ998877"),
        ("4006381333931", "other", "4006381333931"),
        ("RMA", "other", "RMA"),
        ("LPN12", "other", "LPN12"),
    ],
)
def test_codes_are_classified(text: str, kind: str, value: str) -> None:
    assert LabelReader(backend="opencv").classify(text) == (kind, value)


def test_patterns_are_configurable_and_checked() -> None:
    reader = LabelReader(rma_pattern=r"^R\d{6}$", backend="opencv")
    assert reader.classify("R123456") == ("rma", "R123456")
    assert reader.classify("RMA-2024-000123")[0] == "other"
    with pytest.raises(ValueError, match="bad RMA/LPN pattern"):
        LabelReader(rma_pattern="([unclosed", backend="opencv")


def test_no_code_is_invented_on_synthetic_bench_samples() -> None:
    """Whatever is read from a rendered return is a code printed in it (slips, product barcodes)."""
    synth = pytest.importorskip("inspector.data.synth")
    bench = synth.Bench(7)
    reader = LabelReader()
    for item_seed in range(2):
        sample = bench.sample(item_seed)
        printed = {c["text"] for c in sample.meta.get("codes", [])}
        assert {r.text for r in reader.read(sample.image)} <= printed


def test_a_label_stuck_on_the_synthetic_bench_is_read() -> None:
    synth = pytest.importorskip("inspector.data.synth")
    scene = synth.Bench(3).empty().copy()
    label = cv2.cvtColor(_qr("RMA-2026-004211", module_px=3), cv2.COLOR_GRAY2BGR)
    h, w = label.shape[:2]
    # tilted a little, as a label lies on a box
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    dst = np.float32([[300, 160], [300 + w, 172], [292 + w, 172 + h], [290, 160 + h]])
    warp = cv2.getPerspectiveTransform(src, dst)
    mask = cv2.warpPerspective(np.full((h, w), 255, np.uint8), warp, (scene.shape[1], scene.shape[0]))
    pasted = cv2.warpPerspective(label, warp, (scene.shape[1], scene.shape[0]))
    scene[mask > 0] = pasted[mask > 0]
    noisy = np.clip(scene + np.random.default_rng(0).normal(0, 3, scene.shape), 0, 255).astype(np.uint8)
    assert item_codes(LabelReader().read(noisy)) == ("RMA-2026-004211", None)
