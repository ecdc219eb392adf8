"""The expected return on the operator page, in headless Chromium (the browser fixtures of test_browser.py).

The WMS announces an RMA with two lines; the operator types it, presses 2, and the
next item is inspected as line 2: its SKU is on the result. Keyboard only.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.station import test_browser as shared  # skips this module too without Chromium or Playwright
from tests.station.server import LiveServer, station_server

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser
browser = shared.browser  # the page (keyed in as an operator) on this module's server
page = shared.page
_api = shared._api


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The real app with the synthetic bench and the box detector (what is inspected does not matter here)."""
    live = station_server(tmp_path_factory.mktemp("returns"), schedule=shared.SCHEDULE, fps=15.0, seed=11)
    try:
        yield live
    finally:
        live.stop()


def _scan(page: Page, code: str) -> None:
    """Like a scanner: R focuses the field and lands in it, Enter sends."""
    page.keyboard.press("Escape")
    page.keyboard.type(code)
    page.keyboard.press("Enter")


def _text_has(selector: str, text: str) -> str:
    return f"() => (document.querySelector('{selector}')?.textContent || '').includes('{text}')"


def test_an_rma_with_two_lines_then_key_2_inspects_line_2(page: Page, server: LiveServer) -> None:
    rma = "RMA-BENCH-0002"
    lines = [
        {"line": 1, "sku": "PH-M250", "price": 199.0, "reason": "changed mind", "days_since_sale": 4},
        {"line": 2, "sku": "LT-W140", "price": 1050.0, "reason": "defective", "days_since_sale": 12},
    ]
    put = httpx.put(f"{server.url}/v1/returns/{rma}", headers=server.h("wms"), json={"lines": lines}, timeout=10)
    assert put.status_code in (200, 201), put.text
    _scan(page, rma)
    page.wait_for_function("() => document.querySelectorAll('#expected tbody tr').length === 2", timeout=10_000)
    panel = page.inner_text("#expected")
    assert "LT-W140" in panel and re.search(r"1,?050\.00", panel) and "defective" in panel  # in the locale
    page.keyboard.press("2")
    page.wait_for_function("() => document.querySelector('#expected tr.chosen')?.dataset.line === '2'", timeout=10_000)
    page.wait_for_function(_text_has("#return-info", "LT-W140"), timeout=40_000)
    assert "line 2 of 2" in page.inner_text("#return-info")
    found = _api(server, f"/v1/inspections?rma={rma}")["items"]
    assert len(found) == 1
    inspection = _api(server, f"/v1/inspections/{found[0]['id']}")
    assert inspection["item"]["sku"] == "LT-W140" and inspection["return"]["line"] == 2


def test_an_rma_nobody_announced_is_said_and_the_item_is_inspected_without_it(page: Page, server: LiveServer) -> None:
    _scan(page, "RMA-NOT-EXPECTED-9")
    page.wait_for_function(_text_has("#expected", "not expected"), timeout=10_000)
    page.wait_for_function(_text_has("#return-info", "RMA-NOT-EXPECTED-9"), timeout=40_000)
    assert "inspected without it" in page.inner_text("#return-info")
    assert _api(server, "/v1/inspections?rma=RMA-NOT-EXPECTED-9")["items"]
