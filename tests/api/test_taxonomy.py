"""A WMS's own category names through the API: 201 with values, the mapping named in the reasons and
recorded with the inspection, GET /v1/taxonomy, and a mapping file that replaces the shipped one."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from inspector.api.app import create_app
from inspector.config import Settings
from inspector.labelmap import default_labelmap
from inspector.pipeline import PipelineError, build_pipeline
from inspector.taxonomy import load_taxonomy
from inspector.types import Detections, Frame
from tests.api.conftest import Api, add_keys, make_settings

pytestmark = pytest.mark.api
NAMES = default_labelmap().names
SHIPPED = load_taxonomy().version
LONG = "electronics/phones/" + "/".join(f"level-{i:02d}" for i in range(15))  # past the old 32-character column


class ItemWithScratch:
    """The item and one small scratch in every view: the grade is a condition grade, so values are weighed."""

    @property
    def model_version(self) -> str:
        return "scratch-1"

    @property
    def class_names(self) -> tuple[str, ...]:
        return NAMES

    def detect(self, frames: Sequence[Frame]) -> list[Detections]:
        return [
            Detections(
                xyxy=np.array([[40, 30, 280, 210], [150, 110, 160, 118]], np.float32),
                confidence=np.array([0.97, 0.9], np.float32),
                class_id=np.array([NAMES.index("item"), NAMES.index("scratch")], np.int64),
                class_names=NAMES,
            )
            for _ in frames
        ]


def serve(settings: Settings) -> Iterator[Api]:
    app = create_app(settings, pipeline=build_pipeline(settings, detector=ItemWithScratch()))
    with TestClient(app) as client:
        yield Api(app=app, client=client, settings=settings, keys=add_keys(app))


@pytest.fixture
def api(tmp_path: Path, db_url: str | None) -> Iterator[Api]:
    yield from serve(make_settings(tmp_path, db_url=db_url))


# category, entry the grade's and the recommendation's reasons name (None: not mapped), rubric, value table
CASES = [
    ("personal_care", "personal_care/", "bottle", "bottle"),
    ("electronics/phones", "electronics/phones/", "phone", "phone"),
    ("Apparel/Men/Shirts", "apparel/", "garment", "garment"),
    (LONG, "electronics/phones/", "phone", "phone"),
    ("garden/tools", None, "generic", "generic"),
]


@pytest.mark.parametrize(("category", "entry", "rubric", "table"), CASES)
def test_the_wms_category_is_inspected_and_valued(
    api: Api, category: str, entry: str | None, rubric: str, table: str
) -> None:
    r = api.inspect(item={"rma": "RMA-7", "category": category, "price": 120.0})
    assert r.status_code == 201, r.text
    body = r.json()
    assert f"by the {rubric} rubric" in body["grade"]["reasons"][0]["text"]
    said = "is not mapped" if entry is None else f"is mapped by '{entry}'"
    grade_reason = next(x for x in body["grade"]["reasons"] if x["code"] in ("category_mapped", "generic_rubric"))
    assert grade_reason["text"].startswith(f"category '{category}' {said}")
    assert grade_reason["text"].endswith(f"{rubric} rubric")
    value_reason = next(x for x in body["disposition"]["reasons"] if x["code"] == "value_table")
    assert value_reason["text"].startswith(f"category '{category}' {said}")
    assert value_reason["text"].endswith(f"{table} value table")
    assert body["disposition"]["rule"] != "unknown_value"
    assert not any("value unknown" in a["note"] for a in body["disposition"]["alternatives"])
    assert body["item"]["taxonomy"] == {
        "category": category,
        "entry": entry,
        "via": [],
        "rubric": rubric,
        "family": None if rubric == "generic" else rubric,
        "value_table": table,
        "version": SHIPPED,
    }
    assert body["versions"]["taxonomy"] == SHIPPED
    stored = api.client.get(f"/v1/inspections/{body['id']}", headers=api.h()).json()
    assert stored["versions"]["taxonomy"] == SHIPPED and stored["item"]["category"] == category
    assert api.sql("SELECT category FROM inspections WHERE id = :i", i=body["id"]) == [(category,)]


def test_get_taxonomy(api: Api) -> None:
    r = api.client.get("/v1/taxonomy", headers=api.h("wms"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["version"] == SHIPPED and body["source"] == "pipeline"
    phones = next(e for e in body["entries"] if e["key"] == "electronics/phones/")
    assert (phones["match"], phones["rubric"], phones["family"], phones["value_table"]) == (
        "prefix",
        "phone",
        "phone",
        "phone",
    )
    assert body["resolved"] is None and "generic" in body["rubrics"]

    resolved = api.client.get("/v1/taxonomy", params={"category": "Electronics/Mobile/Android"}, headers=api.h())
    assert resolved.json()["resolved"] == {
        "category": "Electronics/Mobile/Android",
        "entry": "electronics/mobile/",
        "via": ["electronics/phones/"],
        "rubric": "phone",
        "family": "phone",
        "value_table": "phone",
        "version": SHIPPED,
    }


@pytest.mark.parametrize(
    ("params", "headers", "status", "code"),
    [
        ({"category": "toys//lego"}, True, 422, "invalid_category"),
        ({"category": "x" * 201}, True, 422, None),
        ({}, False, 401, None),
    ],
)
def test_get_taxonomy_errors(api: Api, params: dict[str, str], headers: bool, status: int, code: str | None) -> None:
    r = api.client.get("/v1/taxonomy", params=params, headers=api.h() if headers else {})
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    if code is not None:
        assert r.json()["code"] == code


MAPPING = """\
version: site-3
categories:
  gadgets/: {rubric: phone, family: phone, value_table: phone}
  widgets: {same_as: gadgets/small}
"""


def test_a_mapping_file_replaces_the_shipped_one(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    settings.disposition.taxonomy_file = tmp_path / "mapping.yaml"
    settings.disposition.taxonomy_file.write_text(MAPPING)
    for api in serve(settings):
        assert api.client.get("/v1/taxonomy", headers=api.h()).json()["version"] == "site-3"
        body = api.inspect(item={"category": "widgets", "price": 80.0}).json()
        assert "by the phone rubric" in body["grade"]["reasons"][0]["text"]
        assert body["item"]["taxonomy"]["via"] == ["gadgets/"]
        assert body["versions"]["taxonomy"] == "site-3"
        unmapped = api.inspect(item={"category": "electronics/phones", "price": 80.0}).json()
        assert "by the generic rubric" in unmapped["grade"]["reasons"][0]["text"]  # the shipped entries are gone


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: x\ncategories: {a: {same_as: b}, b: {same_as: a}}\n", "entry 'a': same_as cycle a -> b -> a"),
        ("version: x\ncategories: {toys: {rubric: lego, value_table: boxed}}\n", "entry 'toys': unknown rubric 'lego'"),
    ],
)
def test_a_bad_mapping_file_stops_the_station_with_its_reason(tmp_path: Path, text: str, message: str) -> None:
    settings = make_settings(tmp_path)
    settings.disposition.taxonomy_file = tmp_path / "mapping.yaml"
    settings.disposition.taxonomy_file.write_text(text)
    with pytest.raises(PipelineError, match=message):
        build_pipeline(settings, detector=ItemWithScratch())
