"""The labelmap endpoint: the classes of datasets/labelmap.yaml in id order, coloured as the server draws them."""

from __future__ import annotations

from pathlib import Path

import pytest

from inspector.draw import colour_for
from inspector.labelmap import default_labelmap
from tests.api.conftest import Api

pytestmark = pytest.mark.api


def test_labelmap_lists_the_classes_in_id_order_with_their_colours(api: Api) -> None:
    r = api.client.get("/v1/labelmap", headers=api.h("operator"))
    assert r.status_code == 200
    body = r.json()
    labelmap = default_labelmap()
    assert body["version"] == labelmap.version
    assert [c["name"] for c in body["classes"]] == list(labelmap.names)
    assert [c["id"] for c in body["classes"]] == list(range(len(labelmap)))
    assert [c["name"] for c in body["classes"] if c["defect"]] == list(labelmap.defect_names)
    assert [c["description"] for c in body["classes"]] == list(labelmap.descriptions)
    for c in body["classes"]:  # the live view's colours (BGR there), as #rrggbb
        b, g, red = colour_for(c["id"])
        assert c["colour"] == f"#{red:02x}{g:02x}{b:02x}"
    assert body["classes"][1]["colour"] == "#ffd700"  # scratch: gold, as on the annotated images


def test_labelmap_needs_a_key(api: Api) -> None:
    r = api.client.get("/v1/labelmap")
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert api.client.get("/v1/labelmap", headers=api.h("wms")).status_code == 200


def test_an_unreadable_labelmap_is_a_clear_503(api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "labelmap.yaml").write_text("classes: []\n")
    monkeypatch.setenv("INSPECTOR_DATASETS_DIR", str(tmp_path))
    default_labelmap.cache_clear()
    try:
        r = api.client.get("/v1/labelmap", headers=api.h("operator"))
    finally:
        default_labelmap.cache_clear()
    assert r.status_code == 503
    assert r.json()["code"] == "labelmap_unavailable" and "classes" in r.json()["detail"]
