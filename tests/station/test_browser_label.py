"""The label's state on the operator page, in headless Chromium (the browser fixtures of test_browser.py).

The station prints to a raw TCP port on 127.0.0.1 where no printer listens at
first: Enter accepts, the page says the printer is not reachable and that it
retries; a fake printer comes up on that port and the page says the label
printed, with no key pressed. P prints it again. Keyboard only.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from inspector.config import LabelsConfig
from inspector.labelmap import default_labelmap
from inspector.pipeline import build_pipeline
from station.sources.synthetic import BenchSchedule, SyntheticBenchSource
from tests.api.conftest import served_app
from tests.fakeprinter import FakePrinter, unused_port
from tests.station import test_browser as shared  # skips this module too without Chromium or Playwright
from tests.station.server import BoxDetector, LiveServer, station_settings, synthetic_bench

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser
browser = shared.browser  # the page (keyed in as an operator) on this module's server
page = shared.page

# One item that stays on the bench: the result on the page stays the decided one.
STILL = BenchSchedule(empty_s=0.7, enter_s=0.4, still_s=600.0, leave_s=0.4)


@pytest.fixture(scope="module")
def port() -> int:
    return unused_port()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, port: int) -> Iterator[LiveServer]:
    """The real app and page with the synthetic bench, printing to 127.0.0.1:``port``."""
    tmp = tmp_path_factory.mktemp("label")
    labels = LabelsConfig(printer=f"tcp:127.0.0.1:{port}", retry_s=0.1, timeout_s=1.0)
    settings = station_settings(tmp).model_copy(update={"labels": labels})
    bench = synthetic_bench(3)
    app = served_app(settings, build_pipeline(settings, detector=BoxDetector(bench.empty(), default_labelmap().names)))
    app.state.station_sources = [SyntheticBenchSource("cam0", seed=3, fps=15.0, schedule=STILL, bench=bench)]
    live = LiveServer(app, settings).start()
    try:
        yield live
    finally:
        live.stop()


def _status_is(status: str) -> str:
    return f"() => document.querySelector('#label-status')?.dataset.status === '{status}'"


def test_the_page_says_whether_the_label_printed(page: Page, server: LiveServer, port: int) -> None:
    shared._wait_shown(page, 1, 30)
    shared._press_until(page, ["Enter"], "() => window.__station.decisions.some(d => d.action === 'accept')")
    page.wait_for_function(_status_is("retrying"), timeout=15_000)
    said = page.inner_text("#label-status")
    assert "Printer not reachable: retrying" in said and "refused the connection" in said

    printer = FakePrinter(port)
    try:
        page.wait_for_function(_status_is("printed"), timeout=20_000)
        assert page.inner_text("#label-status").strip() == "Label printed"
        shown = page.evaluate("() => document.body.dataset.shownId")
        assert shown.encode() in printer.wait_for(1)[0]

        page.keyboard.press("p")  # again, for a label that was torn
        page.wait_for_function("() => document.querySelector('#action-msg').textContent.includes('again')")
        assert shown.encode() in printer.wait_for(2)[1]
        page.wait_for_function(_status_is("printed"), timeout=20_000)
    finally:
        printer.close()
