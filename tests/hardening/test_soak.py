"""The soak harness (``make soak``) in a few seconds: a real server, real clients, figures that are measured.

The full soak runs for 20 minutes and is not part of the suite; this runs the same code for two
windows of 3 s against a real ``inspector serve`` (camera, trigger and live view on, a small model
input to keep it quick) and checks that what it writes is shaped as documented and comes from the
run, and that the server is gone afterwards.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from inspector.bench import soak

LIGHT = {
    "INSPECTOR_DETECTOR__IMGSZ": "320",
    "INSPECTOR_DETECTOR__THREADS": "1",
    "INSPECTOR_THREADS": "1",
    "INSPECTOR_CAMERA__FPS": "10",
}


@pytest.fixture(scope="module")
def soaked(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any], list[str], Path]:
    out = tmp_path_factory.mktemp("soak") / "soak.json"
    work = out.parent / "work"
    work.mkdir()
    lines: list[str] = []
    plan = soak.Plan(seconds=6, window_s=3, clients=1, pool=3, out=out, env=LIGHT, work=work)
    result = soak.run(plan, log=lines.append)
    return result, json.loads(out.read_text()), lines, work


def test_the_soak_writes_one_entry_per_window_with_measured_figures(soaked: Any) -> None:
    result, written, lines, _ = soaked
    assert written == result
    assert written["complete"] and written["ok"], lines
    windows = written["windows"]
    assert [w["window"] for w in windows] == [1, 2]
    assert windows[0]["start_s"] == 0 and windows[0]["end_s"] == windows[1]["start_s"] < windows[1]["end_s"]
    for w in windows:
        assert w["requests"]["post"] > 0 and w["requests_total"] >= w["requests"]["post"]
        assert w["errors"] == {}
        lat = w["post_inspections"]
        assert lat["n"] == w["requests"]["post"] and 0 < lat["p50_ms"] <= lat["p99_ms"]
        assert w["rss_mb"] > 50 and w["open_fds"] > 3 and w["threads"] > 1 and w["processes"] >= 1
        assert w["live_view_fps"] > 0  # the viewer read frames in every window
        assert w["db_mb"] > 0
    # one live-view stream, opened at the start and read to the end without breaking
    assert windows[0]["requests"]["live"] == 1 and "live" not in windows[1]["requests"]
    # the store grows: more rows, more image bytes at the second window's end than at the first's
    assert windows[1]["inspections_stored"] > windows[0]["inspections_stored"] > 0
    assert windows[1]["images_mb"] > windows[0]["images_mb"] > 0
    totals = written["totals"]
    assert totals["acknowledged"] >= sum(w["post_inspections"]["n"] for w in windows)
    assert totals["lost"] == 0 and totals["errors"] == {}
    assert written["model"]["serving"]
    assert written["settings"]["camera"]["fps"] == 10 and written["settings"]["station_enabled"] is True
    assert written["machine"]["cores"] >= 1


def test_the_soak_leaves_no_server_and_no_data_folder_behind(soaked: Any) -> None:
    _, written, lines, work = soaked
    assert written["server_exit_code"] is not None and written["server_stopped_cleanly"]  # stopped, reaped, not killed
    assert list(work.iterdir()) == []  # the data folder and the server log of a clean run are removed
    assert len(lines) == 2 and all(line.startswith("window ") for line in lines)


def _window(n: int, p99: float | None, rss: float, fds: int) -> dict[str, Any]:
    lat = {"n": 10, "p50_ms": 1.0, "p99_ms": p99} if p99 is not None else {"n": 0}
    return {"window": n, "post_inspections": lat, "rss_mb": rss, "open_fds": fds}


@pytest.mark.parametrize(
    ("last", "flat"),
    [
        ((100.0, 1000.0, 20), {"post_p99_ms": True, "rss_mb": True, "open_fds": True}),
        ((109.0, 1099.0, 22), {"post_p99_ms": True, "rss_mb": True, "open_fds": True}),
        ((111.0, 1000.0, 20), {"post_p99_ms": False, "rss_mb": True, "open_fds": True}),
        ((100.0, 1200.0, 20), {"post_p99_ms": True, "rss_mb": False, "open_fds": True}),
        ((100.0, 1000.0, 40), {"post_p99_ms": True, "rss_mb": True, "open_fds": False}),
        ((80.0, 1000.0, 20), {"post_p99_ms": False, "rss_mb": True, "open_fds": True}),
        ((None, 1000.0, 20), {"post_p99_ms": False, "rss_mb": True, "open_fds": True}),
    ],
)
def test_the_verdict_compares_the_last_window_with_the_second(
    last: tuple[float | None, float, int], flat: dict[str, bool]
) -> None:
    windows = [_window(1, 500.0, 900.0, 15), _window(2, 100.0, 1000.0, 20), _window(3, 300.0, 1500.0, 99)]
    v = soak.verdict([*windows, _window(4, *last)])
    assert v["compared"] == [2, 4]
    assert {k: v[k]["flat"] for k in flat} == flat
    assert v["rss_mb"]["ratio"] == round(last[1] / 1000.0, 3)


def test_one_window_has_no_verdict() -> None:
    assert soak.verdict([_window(1, 100.0, 1000.0, 20)])["compared"] is None
