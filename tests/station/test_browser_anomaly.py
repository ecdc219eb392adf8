"""The anomaly heat map on the operator page, in headless Chromium (the browser fixtures of test_browser.py).

The synthetic bench's item is scored by a stand-in anomaly model (colour distance from the crop's median);
A shows its heat map in place of the view and A again hides it; U confirms a region as a new class, which the
flag stores with the region's box. Keyboard only.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from inspector.grading import FamilyPrediction
from inspector.items import FAMILIES
from inspector.labelmap import default_labelmap
from inspector.pipeline import build_pipeline
from station.sources.synthetic import BenchSchedule, SyntheticBenchSource
from tests.api.conftest import served_app
from tests.builders import MedianColourScorer
from tests.station import test_browser as shared  # skips this module too without Chromium or Playwright
from tests.station.server import BoxDetector, LiveServer, station_settings, synthetic_bench

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser

browser = shared.browser
page = shared.page

STILL = BenchSchedule(empty_s=0.7, enter_s=0.4, still_s=600.0, leave_s=0.4)


class Phone:
    """A family classifier stand-in: the bench shows a phone, so the phone's anomaly model scores it."""

    def predict(self, image: Any, box: tuple[float, float, float, float]) -> FamilyPrediction:
        return FamilyPrediction("phone", 0.99)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = station_settings(tmp_path_factory.mktemp("heat"))
    bench = synthetic_bench(5)
    pipeline = build_pipeline(settings, detector=BoxDetector(bench.empty(), default_labelmap().names))
    pipeline.family = Phone()
    pipeline.anomaly = MedianColourScorer(families=FAMILIES, threshold=40.0)
    app = served_app(settings, pipeline)
    app.state.station_sources = [SyntheticBenchSource("cam0", seed=5, fps=15.0, schedule=STILL, bench=bench)]
    live = LiveServer(app, settings).start()
    try:
        yield live
    finally:
        live.stop()


def test_a_shows_the_heat_map_and_hides_it_again(page: Page, server: LiveServer) -> None:
    shared._wait_shown(page, 1, 30)
    page.wait_for_function("() => document.querySelector('#views canvas')?.__bitmap", timeout=10_000)
    assert page.is_visible("#heat-toggle")
    before = page.evaluate("() => document.querySelector('#views canvas').toDataURL()")
    page.keyboard.press("a")
    page.wait_for_function("() => document.querySelector('#views canvas').dataset.heat === '1'", timeout=10_000)
    assert page.evaluate("() => document.querySelector('#views canvas').toDataURL()") != before
    assert page.inner_text("#action-msg").startswith("Heat map:")
    assert page.get_attribute("#heat-toggle", "aria-pressed") == "true"
    page.keyboard.press("A")
    page.wait_for_function("() => document.querySelector('#views canvas').dataset.heat === ''", timeout=10_000)
    assert page.evaluate("() => document.querySelector('#views canvas').toDataURL()") == before


def test_u_confirms_a_region_as_a_new_class(page: Page, server: LiveServer) -> None:
    shared._wait_shown(page, 1, 30)
    iid = page.evaluate("() => document.body.dataset.shownId")
    shown = httpx.get(f"{server.url}/v1/inspections/{iid}", headers=server.h("operator"), timeout=10).json()
    region = shown["views"][0]["anomaly"]["regions"][0]
    shared._press_until(page, ["u", "1"], "() => document.activeElement?.id === 'flag-class'")
    page.keyboard.type("Burn")
    page.keyboard.press("Enter")  # refused: a class is lower case
    page.wait_for_function("() => document.querySelector('#action-msg').textContent.includes('lower case')")
    page.keyboard.press("Control+A")  # the typed text, replaced by the next
    page.keyboard.type("burn_mark")
    page.keyboard.press("Enter")
    page.wait_for_function("() => window.__station.flags.some(f => f.kind === 'anomaly')", timeout=10_000)
    flags = httpx.get(f"{server.url}/v1/inspections/{iid}/flags", headers=server.h("operator"), timeout=10).json()
    assert [(f["kind"], f["class_name"], f["box"]) for f in flags["items"]] == [
        ("anomaly", "burn_mark", region["xyxy"])
    ]
