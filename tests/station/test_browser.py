"""The operator page in a real browser: headless Chromium (Debian's ``chromium``) driven by Playwright.

The real app runs under uvicorn with the synthetic bench camera and a real
YOLO detector (the promoted model, or an untrained YOLOv8n when none is), so
the rest-to-recommendation latency measured here is the station's own: from
the moment the synthetic item comes to rest to the moment its recommendation
is on the page. The figures go to ``bench/station_latency.json``.
Keyboard only: the test never clicks.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from station.sources.synthetic import BenchSchedule
from tests.station.server import LiveServer, drift_yesterday, readme_png, station_server

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("INSPECTOR_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO = Path(__file__).resolve().parents[2]
SCHEDULE = BenchSchedule(empty_s=0.7, enter_s=0.4, still_s=1.6, leave_s=0.4)
LATENCY_SAMPLES = 8

if not Path(CHROMIUM).is_file():
    pytest.skip(
        f"browser tests skipped: no Chromium at {CHROMIUM} (apt-get install chromium, or set INSPECTOR_CHROMIUM)",
        allow_module_level=True,
    )
if importlib.util.find_spec("playwright") is None:
    pytest.skip("browser tests skipped: the playwright package is not installed", allow_module_level=True)

from playwright.sync_api import Browser, Page, sync_playwright  # noqa: E402
from playwright.sync_api import TimeoutError as PlaywrightTimeout  # noqa: E402


def _detector(tmp: Path) -> Any:
    """The promoted model when there is one; else an untrained YOLOv8n with the station's labelmap."""
    from inspector.config import DetectorConfig
    from inspector.detect import load_detector
    from inspector.detect.base import DetectorError
    from inspector.registry import resolve_weights

    try:
        weights, version = resolve_weights(None)
        return load_detector(DetectorConfig(), weights, version)
    except DetectorError:
        pass
    from ultralytics import YOLO
    from ultralytics.nn.tasks import DetectionModel

    from inspector.labelmap import default_labelmap

    names = default_labelmap().names
    model = YOLO("yolov8n.yaml", task="detect")
    model.model = DetectionModel("yolov8n.yaml", nc=len(names), verbose=False)
    model.model.names = dict(enumerate(names))
    path = tmp / "untrained.pt"
    model.save(str(path))
    return load_detector(DetectorConfig(confidence=0.05), path, "untrained-yolov8n")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("browser")
    live = station_server(tmp, schedule=SCHEDULE, fps=15.0, detector=_detector(tmp), seed=7)
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def page(browser: Browser, server: LiveServer) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    # everything the page does must pass its Content-Security-Policy
    pg.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
    pg.goto(server.url + "/")
    # the key prompt, by keyboard only
    pg.wait_for_selector("#key-dialog[open]")
    pg.keyboard.type(server.keys["operator"])
    pg.keyboard.press("Enter")
    pg.wait_for_function("() => !document.querySelector('#key-dialog').open", timeout=10_000)
    yield pg
    context.close()
    assert not errors, f"the page raised: {errors}"


def _shown(page: Page) -> dict[str, float]:
    return page.evaluate("() => window.__station.shownAt")


def _wait_shown(page: Page, count: int, timeout_s: float) -> None:
    page.wait_for_function(
        f"() => Object.keys(window.__station.shownAt).length >= {count}", timeout=timeout_s * 1000, polling=50
    )


def _press_until(page: Page, keys: list[str], done: str, attempts: int = 4) -> None:
    """Press ``keys`` like an operator: a key that lands just as a new result arrives is refused, press again."""
    for _ in range(attempts):
        page.wait_for_timeout(450)
        for key in keys:
            page.keyboard.press(key)
        try:
            page.wait_for_function(done, timeout=3000, polling=50)
            return
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
    raise AssertionError(f"{keys} did not lead to {done}")


def _mjpeg_fps(server: LiveServer, seconds: float = 2.0) -> float:
    """Frames per second of the live view for a second client while the page watches it too."""
    frames, t0 = 0, time.monotonic()
    with httpx.stream("GET", server.url + "/station/stream.mjpg", headers=server.h("operator"), timeout=10) as r:
        buffer = b""
        for chunk in r.iter_bytes():
            buffer += chunk
            while (i := buffer.find(b"\r\n\r\n\xff\xd8")) >= 0:
                frames += 1
                buffer = buffer[i + 6 :]
            if time.monotonic() - t0 > seconds:
                break
    return frames / (time.monotonic() - t0)


def _api(server: LiveServer, path: str) -> dict[str, Any]:
    r = httpx.get(server.url + path, headers=server.h("operator"), timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def test_the_page_shows_a_synthetic_inspection(page: Page, server: LiveServer) -> None:
    _wait_shown(page, 1, 30)
    shown_id = page.evaluate("() => document.body.dataset.shownId")
    body = _api(server, f"/v1/inspections/{shown_id}")
    assert page.inner_text("#grade").replace(" ", "_") == body["grade"]["level"]
    assert page.inner_text("#disposition").replace(" ", "_") == body["disposition"]["path"]
    reasons = page.locator("#reasons li").all_inner_texts()
    assert reasons and reasons[0] == (body["grade"]["reasons"] + body["disposition"]["reasons"])[0]["text"]
    assert page.locator("#alternatives tbody tr").count() == len(body["disposition"]["alternatives"])
    # the captured view is drawn with its boxes on a canvas
    page.wait_for_function(
        "() => { const c = document.querySelector('#views canvas');"
        " return c && c.getContext('2d').getImageData(c.width / 2, c.height / 2, 1, 1).data[3] > 0; }",
        timeout=10_000,
    )
    assert "ok" in page.get_attribute("#pill-camera", "class")
    assert "model ready" in page.inner_text("#pill-model")
    assert page.evaluate("() => document.querySelector('#live').naturalWidth") == 640


def test_enter_accepts_and_the_decision_reaches_the_api(page: Page, server: LiveServer) -> None:
    _wait_shown(page, 1, 30)
    _press_until(page, ["Enter"], "() => window.__station.decisions.some(d => d.action === 'accept')")
    decided = page.evaluate("() => window.__station.decisions.find(d => d.action === 'accept').id")
    body = _api(server, f"/v1/inspections/{decided}")
    assert body["decisions"][-1]["action"] == "accept"
    assert body["final"]["decided"] and body["final"]["grade"] == body["grade"]["level"]


def test_number_keys_override_with_a_reason_code(page: Page, server: LiveServer) -> None:
    _wait_shown(page, 1, 30)
    # 1: the first override (the first grade other than the recommended one), 2: the second reason code
    _press_until(page, ["1", "2"], "() => window.__station.decisions.some(d => d.action === 'override')")
    sent = page.evaluate("() => window.__station.decisions.find(d => d.action === 'override')")
    body = _api(server, f"/v1/inspections/{sent['id']}")
    last = body["decisions"][-1]
    assert last["action"] == "override" and last["reason_code"] == "no_damage"
    assert last["grade"] == next(g for g in "ABCD" if g != body["grade"]["level"])
    if page.evaluate("() => document.body.dataset.shownId") == sent["id"]:
        assert "overridden" in page.inner_text("#decision")


def test_a_scanned_rma_goes_with_the_next_item_and_history_finds_it(page: Page, server: LiveServer) -> None:
    page.keyboard.press("Escape")
    # a barcode scanner types the code and Enter, with the focus anywhere on the page
    page.keyboard.type("RMA-SCAN-7")
    page.keyboard.press("Enter")
    deadline = time.monotonic() + 20
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not found:
        found = _api(server, "/v1/inspections?rma=RMA-SCAN-7")["items"]
        time.sleep(0.2)
    assert len(found) == 1 and found[0]["source"] == "station"
    page.keyboard.press("/")
    page.keyboard.type("RMA-SCAN-7")
    page.keyboard.press("Enter")
    page.wait_for_function("() => [...document.querySelectorAll('#history-list button')].length === 1", timeout=10_000)
    assert "RMA-SCAN-7" in page.inner_text("#history-list")
    page.keyboard.press("Enter")  # the focused row opens it
    page.wait_for_function(f"() => document.body.dataset.shownId === '{found[0]['id']}'", timeout=10_000)
    page.keyboard.press("Escape")


def test_rest_to_recommendation_latency(page: Page, server: LiveServer) -> None:
    """Every automatic capture shown on the page, from the item's rest to its recommendation on screen."""
    cycle_s = SCHEDULE.empty_s + SCHEDULE.enter_s + SCHEDULE.still_s + SCHEDULE.leave_s
    _wait_shown(page, LATENCY_SAMPLES + 1, 15 + LATENCY_SAMPLES * cycle_s * 1.5)
    shown = _shown(page)
    initial = page.evaluate("() => window.__station.initialId")
    recent = _api(server, "/station/status")["recent"]
    latencies = []
    for record in recent:
        iid = record["inspection_id"]
        if record["manual"] or record["rest_at"] is None or iid not in shown or iid == initial:
            continue
        latencies.append(shown[iid] - record["rest_at"] * 1000.0)
    assert len(latencies) >= LATENCY_SAMPLES, f"only {len(latencies)} automatic inspections were shown"
    values = np.array(latencies)
    server_side = np.array([r["server_latency_ms"] for r in recent if r["server_latency_ms"] and not r["manual"]])
    assert (values > 0).all()
    figures = {
        "what": "station rest-to-recommendation latency: synthetic item at rest -> recommendation visible on the page",
        "n": len(values),
        "p50_ms": round(float(np.percentile(values, 50)), 1),
        "p95_ms": round(float(np.percentile(values, 95)), 1),
        "max_ms": round(float(values.max()), 1),
        "server_p50_ms": round(float(np.percentile(server_side, 50)), 1),
        "mjpeg_fps": round(_mjpeg_fps(server), 1),
        "camera_fps": server.settings.camera.fps,
        "still_frames": server.settings.station.still_frames,
        "model_version": server.app.state.pipeline_slot.pipeline.model_version,
        "imgsz": server.settings.detector.imgsz,
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "browser": f"headless {Path(CHROMIUM).name}",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    # A figure, not a pass mark: `make bench` asks for it to be written (timings belong in the benchmark).
    if os.environ.get("INSPECTOR_STATION_LATENCY") == "1":
        out = REPO / "bench" / "station_latency.json"
        out.parent.mkdir(exist_ok=True)
        out.write_text(json.dumps(figures, indent=2) + "\n")


def test_screenshot_for_the_readme(page: Page) -> None:
    """Refreshed when missing or with INSPECTOR_SCREENSHOTS=1 (so a test run leaves docs/ alone)."""
    target = REPO / "docs" / "station.png"
    if target.exists() and os.environ.get("INSPECTOR_SCREENSHOTS") != "1":
        pytest.skip("docs/station.png exists; set INSPECTOR_SCREENSHOTS=1 to refresh it")
    page.keyboard.press("Escape")
    page.keyboard.press("/")  # clear the history search: the whole list
    page.keyboard.press("Control+A")
    page.keyboard.press("Backspace")
    page.keyboard.press("Enter")
    page.keyboard.press("Escape")
    page.wait_for_function("() => document.querySelectorAll('#history-list button').length > 3", timeout=10_000)
    # an item at rest on the bench, its inspection on the page
    shown = len(_shown(page))
    _wait_shown(page, shown + 1, 15)
    page.wait_for_function("() => document.body.dataset.trigger === 'CAPTURED'", timeout=10_000)
    page.wait_for_timeout(300)
    page.evaluate("() => window.scrollTo(0, 0)")
    readme_png(page, target)
    assert target.stat().st_size < 350_000
    from PIL import Image

    raw = target.with_suffix(".raw.png")
    # the override step: a disposition picked with a number key, the reason codes offered next
    _press_until(page, ["5"], "() => document.querySelector('#override-options li[data-code]') !== null")
    override = target.with_name("station-override.png")
    page.locator("section.result").screenshot(path=str(raw))
    with Image.open(raw) as img:
        img.convert("RGB").quantize(colors=96).save(override, optimize=True)
    raw.unlink()
    page.keyboard.press("Escape")
    assert override.stat().st_size < 300_000


def test_banners_say_when_the_camera_or_the_model_is_not_ready(browser: Browser, tmp_path: Path) -> None:
    from station.sources.camera import OpenCVSource
    from tests.api.conftest import served_app
    from tests.station.server import LiveServer, station_settings
    from tests.station.standin import FlakyCapture

    settings = station_settings(tmp_path)
    settings.detector.model = str(tmp_path / "missing-weights.pt")  # the pipeline cannot load
    app = served_app(settings)
    app.state.station_sources = [
        OpenCVSource("rtsp://user:secret@10.0.0.9/live", capture_factory=lambda _t: FlakyCapture({"down": True}))
    ]
    live = LiveServer(app, settings).start()
    context = browser.new_context()
    try:
        pg = context.new_page()
        pg.goto(live.url + "/")
        pg.wait_for_selector("#key-dialog[open]")
        pg.keyboard.type(live.keys["operator"])
        pg.keyboard.press("Enter")
        pg.wait_for_function(
            "() => document.querySelectorAll('#banners .banner.bad').length >= 2", timeout=10_000, polling=100
        )
        banners = pg.inner_text("#banners")
        assert "Camera cam0 (rtsp://***@10.0.0.9/live) is not ready: reconnecting" in banners
        assert "secret" not in banners
        assert "The model is not ready" in banners
        assert "bad" in pg.get_attribute("#pill-camera", "class")
        assert pg.inner_text("#pill-model") == "model not ready"
    finally:
        context.close()
        live.stop()


def _flag_keys(page: Page, keys: list[str], draw: bool, done: str, attempts: int = 5) -> None:
    """M or F, maybe a box dragged on the view, then the pick; again if a new result landed in between."""
    for _ in range(attempts):
        page.wait_for_timeout(450)
        page.keyboard.press(keys[0])
        if draw:
            try:  # the view must be drawn before a box can be dragged on it
                page.wait_for_selector("#views canvas[data-scale]", timeout=3000)
                canvas = page.locator("#views canvas[data-scale]").first
                canvas.scroll_into_view_if_needed()
                box = canvas.bounding_box()
                assert box is not None
                page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.3)
                page.mouse.down()
                page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.55, steps=5)
                page.mouse.up()
                page.wait_for_function(
                    "() => document.querySelector('#flag-title').textContent.includes('drawn')", timeout=2000
                )
            except PlaywrightTimeout:
                page.keyboard.press("Escape")
                continue
        for key in keys[1:]:
            page.keyboard.press(key)
        try:
            page.wait_for_function(done, timeout=3000, polling=50)
            return
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
    raise AssertionError(f"{keys} did not lead to {done}")


def test_m_flags_a_missed_defect_with_a_drawn_box_and_f_a_false_one(page: Page, server: LiveServer) -> None:
    _wait_shown(page, 1, 30)
    page.keyboard.press("Escape")
    assert "missed defect" in page.inner_text("footer.keys") and "false defect" in page.inner_text("footer.keys")
    _flag_keys(page, ["m", "1"], True, "() => window.__station.flags.some(f => f.kind === 'missed_defect')")
    sent = page.evaluate("() => window.__station.flags.find(f => f.kind === 'missed_defect')")
    stored = _api(server, f"/v1/inspections/{sent['id']}/flags")["items"]
    missed = [f for f in stored if f["kind"] == "missed_defect"]
    assert len(missed) == 1 and missed[0]["class_name"] == "scratch" and missed[0]["actor"]
    body = _api(server, f"/v1/inspections/{sent['id']}")
    x1, y1, x2, y2 = missed[0]["box"]
    view = body["views"][missed[0]["view"]]
    assert 0 <= x1 < x2 <= view["width"] and 0 <= y1 < y2 <= view["height"]
    assert 0.2 < x1 / view["width"] < 0.4 and 0.5 < x2 / view["width"] < 0.7, "the box is where it was dragged"
    assert body["decisions"] == [] or body["final"]["decided"], "a flag leaves the decision as it was"

    shown = page.evaluate("() => document.body.dataset.shownId")
    if any(v["detections"] for v in _api(server, f"/v1/inspections/{shown}")["views"]):
        _flag_keys(page, ["f", "1"], False, "() => window.__station.flags.some(f => f.kind === 'false_defect')")
        sent = page.evaluate("() => window.__station.flags.find(f => f.kind === 'false_defect')")
        false = [f for f in _api(server, f"/v1/inspections/{sent['id']}/flags")["items"] if f["kind"] == "false_defect"]
        assert len(false) == 1 and false[0]["detection"] == 0
    else:
        page.keyboard.press("f")
        assert "No detections to flag" in page.inner_text("#action-msg")


def test_a_drift_warning_shows_on_the_page(page: Page, server: LiveServer) -> None:
    rare = drift_yesterday(server)
    page.wait_for_selector("#banners .banner.drift", timeout=20_000)
    text = page.inner_text("#banners")
    assert f"share of grade {rare}" in text and "Drift on" in text
    metrics = httpx.get(server.url + "/metrics", headers=server.h("operator"), timeout=10).text
    assert f'inspector_drift_warning{{key="{rare}",metric="grade_share"}} 1.0' in metrics
