"""POST/GET /v1/inspections against a real SQLite file and the real pipeline."""

from __future__ import annotations

import hashlib
import json
import threading
from typing import Any

import cv2
import numpy as np
import pytest

from inspector.types import DispositionPath, GradeLevel
from tests.api.conftest import Api, bomb_png, gif, jpeg, png, webp

pytestmark = pytest.mark.api

ITEM = {
    "rma": "RMA-1001",
    "lpn": "LPN0001",
    "sku": "SKU-X",
    "category": "phone",
    "return_reason": "changed mind",
    "price": 199.0,
}


def test_post_returns_the_whole_inspection_and_stores_it(api: Api) -> None:
    views = [jpeg(seed=1), png(seed=2), webp(seed=3)]
    r = api.inspect(views, ITEM)
    assert r.status_code == 201, r.text
    body = r.json()
    assert r.headers["location"] == f"/v1/inspections/{body['id']}"
    assert [v["n"] for v in body["views"]] == [0, 1, 2]
    assert [v["image"]["media_type"] for v in body["views"]] == ["image/jpeg", "image/png", "image/webp"]
    assert [v["image"]["sha256"] for v in body["views"]] == [hashlib.sha256(b).hexdigest() for b in views]
    assert all(isinstance(v["detections"], list) for v in body["views"])
    assert GradeLevel(body["grade"]["level"])
    assert body["grade"]["reasons"], "a grade always comes with its reasons"
    assert DispositionPath(body["disposition"]["path"])
    assert len(body["disposition"]["alternatives"]) >= 2
    pipeline = api.app.state.pipeline_slot.pipeline
    assert body["versions"] == {
        "model": pipeline.model_version,
        "policy": pipeline.policy_version,
        "rubric": pipeline.rubric_version,
        "taxonomy": pipeline.taxonomy_version,
    }
    assert {"decode", "queue", "pipeline", "total"} <= set(body["timings_ms"])
    for k, v in ITEM.items():
        assert body["item"][k] == v
    assert body["decisions"] == [] and body["final"]["decided"] is False
    assert body["final"]["grade"] == body["grade"]["level"]

    # The same JSON comes back from GET, and the row is in the database itself, with its station.
    got = api.client.get(f"/v1/inspections/{body['id']}", headers=api.h("wms")).json()
    assert got == body
    row = api.sql("SELECT grade, disposition, rma, sku, station_id FROM inspections WHERE id = :i", i=body["id"])
    assert row == [(body["grade"]["level"], body["disposition"]["path"], "RMA-1001", "SKU-X", "bench-1")]
    assert body["station_id"] == "bench-1"
    assert api.sql("SELECT count(*) FROM inspection_images WHERE inspection_id = :i", i=body["id"]) == [(3,)]


def test_images_are_content_addressed_and_served_back(api: Api) -> None:
    a, b = jpeg(seed=4), png(seed=5)
    body = api.inspect([a, b, a]).json()
    digest = hashlib.sha256(a).hexdigest()
    path = api.data_dir / "images" / digest[:2] / digest[2:4] / digest
    assert path.read_bytes() == a
    for n, original in enumerate([a, b, a]):
        r = api.client.get(f"/v1/inspections/{body['id']}/images/{n}", headers=api.h("wms"))
        assert r.status_code == 200
        assert r.content == original
    assert r.headers["content-type"] == "image/jpeg"
    ann = api.client.get(f"/v1/inspections/{body['id']}/images/1?annotated=1", headers=api.h("wms"))
    assert ann.status_code == 200 and ann.headers["content-type"] == "image/jpeg"
    drawn = cv2.imdecode(np.frombuffer(ann.content, np.uint8), cv2.IMREAD_COLOR)
    plain = cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR)
    assert drawn.shape == plain.shape
    n_boxes = len(body["views"][1]["detections"])
    # The annotated view is a JPEG of the original with boxes drawn: compare it with the same JPEG
    # encoding of the original, so that compression noise cancels and only drawing remains.
    from inspector.api.media import encode_jpeg

    reference = cv2.imdecode(np.frombuffer(encode_jpeg(plain, quality=90), np.uint8), cv2.IMREAD_COLOR)
    diff = float(np.abs(drawn.astype(np.int16) - reference.astype(np.int16)).mean())
    if n_boxes:
        assert diff > 0.1, "boxes were drawn"
    else:
        assert diff < 0.05, "nothing to draw: the annotated view is the original"


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/v1/inspections/00000000-0000-4000-8000-000000000000", 404, "not_found"),
        ("/v1/inspections/not-a-uuid", 422, "invalid_request"),
        ("/v1/inspections/..%2F..%2Fetc%2Fpasswd", 404, "not_found"),
        ("/v1/inspections/00000000-0000-4000-8000-000000000000/images/0", 404, "not_found"),
        ("/v1/inspections/00000000-0000-4000-8000-000000000000/images/-1", 422, "invalid_request"),
        ("/v1/inspections/00000000-0000-4000-8000-000000000000/images/x", 422, "invalid_request"),
        ("/v1/inspections?grade=Z", 422, "invalid_request"),
        ("/v1/inspections?cursor=garbage", 422, "bad_cursor"),
        ("/v1/inspections?since=yesterday", 422, "invalid_request"),
        ("/v1/inspections?limit=0", 422, "invalid_request"),
    ],
)
def test_bad_reads_are_problems(shared_api: Api, path: str, status: int, code: str) -> None:
    r = shared_api.client.get(path, headers=shared_api.h("wms"))
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    p = r.json()
    assert p["status"] == status and p["code"] == code and p["detail"] and p["title"]


def test_image_number_past_the_views_is_404(api: Api) -> None:
    body = api.inspect([jpeg()]).json()
    r = api.client.get(f"/v1/inspections/{body['id']}/images/1", headers=api.h("wms"))
    assert r.status_code == 404 and r.json()["code"] == "not_found"


def _multipart(images: list[bytes], item: str | None = None) -> dict[str, Any]:
    files = [("images", (f"v{i}", b, "application/octet-stream")) for i, b in enumerate(images)]
    return {"files": files, "data": {"item": item} if item is not None else None}


@pytest.mark.parametrize(
    ("make", "status", "code"),
    [
        (lambda: _multipart([b""]), 422, "empty_image"),
        (lambda: _multipart([b"this is not an image at all" * 10]), 422, "bad_image"),
        (lambda: _multipart([jpeg()[:400]]), 422, "corrupt_image"),
        (lambda: _multipart([gif()]), 415, "unsupported_format"),
        (lambda: _multipart([bomb_png()]), 413, "too_many_pixels"),
        (lambda: _multipart([jpeg()] * 9), 422, "bad_view_count"),
        (lambda: _multipart([jpeg()], item="{not json"), 422, "bad_item_json"),
        (lambda: _multipart([jpeg()], item="[1, 2]"), 422, "bad_item_json"),
        (lambda: _multipart([jpeg()], item='{"category": "toys//lego"}'), 422, "invalid_item"),
        (lambda: _multipart([jpeg()], item='{"price": -3}'), 422, "invalid_item"),
        (lambda: _multipart([jpeg()], item='{"flags": ["haunted"]}'), 422, "invalid_item"),
        (lambda: _multipart([jpeg()], item='{"colour": "red"}'), 422, "invalid_item"),
        (lambda: {"data": {"item": "{}"}}, 415, "unsupported_media_type"),
        (lambda: {"json": {"images": []}}, 415, "unsupported_media_type"),
        (lambda: {"files": [("item", (None, "{}"))]}, 422, "invalid_request"),
        (lambda: _multipart([jpeg(16, 4)]), 422, "image_too_small"),
    ],
)
def test_bad_uploads_get_problem_details(shared_api: Api, make: Any, status: int, code: str) -> None:
    api = shared_api
    before = api.client.get("/v1/inspections", headers=api.h("wms")).json()["items"]
    r = api.client.post("/v1/inspections", headers=api.h("wms"), **make())
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    p = r.json()
    assert (p["status"], p["code"]) == (status, code)
    assert p["type"].endswith(code) and p["detail"]
    # Nothing was stored for a refused request.
    assert api.client.get("/v1/inspections", headers=api.h("wms")).json()["items"] == before


def test_upload_over_the_size_limit_is_413(tmp_path: Any, pipeline: Any) -> None:
    from fastapi.testclient import TestClient

    from inspector.api.app import create_app
    from tests.api.conftest import add_keys, make_settings

    settings = make_settings(tmp_path, max_upload_mb=0.05)
    app = create_app(settings, pipeline=pipeline)
    with TestClient(app) as client:
        keys = add_keys(app)
        big = np.random.default_rng(0).integers(0, 255, (300, 300, 3), dtype=np.uint8)
        data = cv2.imencode(".png", big)[1].tobytes()
        assert len(data) > 50_000
        r = client.post("/v1/inspections", headers={"X-API-Key": keys["wms"]}, files=[("images", ("a.png", data))])
        assert r.status_code == 413
        assert r.json()["code"] == "content_too_large"
        assert r.headers["content-type"] == "application/problem+json"
        ok = client.post(
            "/v1/inspections", headers={"X-API-Key": keys["wms"]}, files=[("images", ("a.jpg", jpeg(96, 64)))]
        )
        assert ok.status_code == 201


# ------------------------------------------------------------- idempotency


def test_a_retry_with_the_same_key_gets_the_stored_response(api: Api) -> None:
    first = api.inspect([jpeg(seed=7)], ITEM, **{"Idempotency-Key": "order-77"})
    again = api.inspect([jpeg(seed=7)], ITEM, **{"Idempotency-Key": "order-77"})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers.get("idempotent-replayed") == "true"
    assert "idempotent-replayed" not in first.headers
    other = api.inspect([jpeg(seed=8)], ITEM, **{"Idempotency-Key": "order-77"})
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_key_reused"
    other_item = api.inspect([jpeg(seed=7)], {**ITEM, "rma": "RMA-2"}, **{"Idempotency-Key": "order-77"})
    assert other_item.status_code == 409
    assert len(api.client.get("/v1/inspections", headers=api.h("wms")).json()["items"]) == 1


def test_twenty_concurrent_retries_create_exactly_one_inspection(api: Api) -> None:
    image = jpeg(seed=11)
    results: list[Any] = []
    barrier = threading.Barrier(20)

    def post() -> None:
        barrier.wait()
        results.append(api.inspect([image], ITEM, **{"Idempotency-Key": "burst-1"}))

    threads = [threading.Thread(target=post) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(results) == 20
    assert {r.status_code for r in results} == {201}, [r.text for r in results if r.status_code != 201]
    assert len({r.json()["id"] for r in results}) == 1
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in results) == 19
    assert api.sql("SELECT count(*) FROM inspections") == [(1,)]
    # stored under the sending API key's id: another client's "burst-1" is another key
    assert api.sql("SELECT status FROM idempotency_keys WHERE key LIKE :k", k="%:burst-1") == [("done",)]


def test_a_failed_request_frees_its_idempotency_key(api: Api) -> None:
    bad = api.inspect([b"junk" * 40], None, **{"Idempotency-Key": "k-fail"})
    assert bad.status_code == 422
    # Refused before the key was claimed, so the same key may carry a good request.
    good = api.inspect([jpeg()], None, **{"Idempotency-Key": "k-fail"})
    assert good.status_code == 201


# -------------------------------------------------------------- list/cursor


def test_list_filters_and_cursor_pagination(api: Api) -> None:
    made = []
    for i in range(7):
        item = {"rma": f"RMA-{i % 2}", "sku": "SKU-A" if i < 4 else "SKU-B", "category": "phone"}
        made.append(api.inspect([jpeg(seed=100 + i)], item).json())
    newest_first = [b["id"] for b in reversed(made)]

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        q = "/v1/inspections?limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = api.client.get(q, headers=api.h("wms")).json()
        seen += [b["id"] for b in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == newest_first and pages == 3

    def ids(query: str) -> list[str]:
        r = api.client.get(f"/v1/inspections?{query}", headers=api.h("wms"))
        assert r.status_code == 200, r.text
        return [b["id"] for b in r.json()["items"]]

    assert ids("rma=RMA-1") == [b["id"] for b in reversed(made) if b["item"]["rma"] == "RMA-1"]
    assert ids("sku=SKU-B&rma=RMA-0") == [
        b["id"] for b in reversed(made) if b["item"]["sku"] == "SKU-B" and b["item"]["rma"] == "RMA-0"
    ]
    grade = made[0]["grade"]["level"]
    assert ids(f"grade={grade}") == [b["id"] for b in reversed(made) if b["grade"]["level"] == grade]
    disp = made[0]["disposition"]["path"]
    assert ids(f"disposition={disp}") == [b["id"] for b in reversed(made) if b["disposition"]["path"] == disp]
    assert ids(f"since={made[3]['created_at'].replace('+', '%2B')}") == newest_first[:4]
    assert ids("since=2999-01-01T00:00:00Z") == []
    assert ids("rma=nobody") == []


def test_the_station_service_stores_frames_as_jpeg(api: Api) -> None:
    """The in-process service (used by the bench) returns the same body as the HTTP API, and the pipeline's result."""
    from inspector.api.service import Created
    from inspector.items import ItemInfo
    from inspector.types import Frame
    from tests.api.conftest import picture

    service = api.app.state.inspections
    frames = [Frame(image=picture(seed=21), camera_id="cam0"), Frame(image=picture(seed=22), camera_id="cam1")]

    async def run() -> Created:
        return await service.create(frames, ItemInfo(rma="RMA-9"), idempotency_key="station-1", source="station")

    created = api.client.portal.call(run)
    body = created.body
    assert created.inspection is not None and created.inspection.id == body["id"] and not created.replayed
    assert [v.frame.camera_id for v in created.inspection.views] == ["cam0", "cam1"]
    assert body["grade"]["level"] == created.inspection.grade.level.value
    assert body["source"] == "station"
    assert [v["camera_id"] for v in body["views"]] == ["cam0", "cam1"]
    assert all(v["image"]["media_type"] == "image/jpeg" for v in body["views"])
    again = api.client.portal.call(run)
    assert again.replayed and again.body == body
    assert api.client.get(f"/v1/inspections/{body['id']}", headers=api.h("wms")).json() == body
    listed = api.client.portal.call(lambda: service.list(rma="RMA-9"))
    assert [b["id"] for b in listed["items"]] == [body["id"]]
    r = api.client.get(f"/v1/inspections/{body['id']}/images/1", headers=api.h("wms"))
    assert r.headers["content-type"] == "image/jpeg"
    assert cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR).shape == (240, 320, 3)
    assert json.dumps(body)  # plain JSON all the way down


def test_a_big_view_is_decoded_at_the_models_size_and_answered_in_its_own_pixels(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 1280x960 JPEG is decoded at half size for a 640 px model; the answer speaks full-size pixels."""
    from inspector.data.synth import render_sample
    from inspector.imageio import reduction
    from inspector.types import Frame

    pipeline = api.app.state.pipeline_slot.pipeline
    inner = pipeline.detector
    shapes: list[tuple[int, ...]] = []

    class Spy:
        imgsz = inner.imgsz
        model_version = inner.model_version
        class_names = inner.class_names

        def detect(self, frames: Any) -> Any:
            shapes.extend(f.image.shape for f in frames)
            return inner.detect(frames)

    monkeypatch.setattr(pipeline, "detector", Spy())
    ok, buf = cv2.imencode(".jpg", render_sample(7, size=(1280, 960)).image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    r = api.inspect([buf.tobytes()], ITEM)
    assert r.status_code == 201, r.text
    view = r.json()["views"][0]
    assert (view["width"], view["height"]) == (1280, 960)
    factor = reduction((1280, 960), inner.imgsz)
    assert factor > 1 and shapes == [(960 // factor, 1280 // factor, 3)]
    # the same picture decoded whole: the model finds the same boxes, in the same coordinates
    whole = inner.detect([Frame(image=cv2.imdecode(buf, cv2.IMREAD_COLOR))])[0]
    assert len(whole) > 0
    best = whole.row(int(np.argmax(whole.confidence)))
    got = [d for d in view["detections"] if d["class_name"] == best.class_name]
    assert got, f"the reduced view lost the {best.class_name} found on the whole picture"
    assert max(_iou(best.xyxy, tuple(d["xyxy"])) for d in got) > 0.8


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0
