"""Health, readiness, metrics, models, policy, the OpenAPI schema, and the bounded inference queue."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from inspector.api.app import create_app
from inspector.pipeline import InspectionPipeline
from inspector.types import Frame
from tests.api.conftest import Api, WrappedPipeline, add_keys, jpeg, make_settings

pytestmark = pytest.mark.api


def test_ready_when_model_and_storage_are_up(api: Api) -> None:
    r = api.client.get("/v1/ready", headers=api.h("wms"))
    assert r.status_code == 200
    body = r.json()
    assert body["ready"] is True
    assert {k: v["ok"] for k, v in body["checks"].items()} == {
        "model": True,
        "anomaly": True,  # informative: the station serves without an anomaly model and says so
        "database": True,
        "images": True,
        "disk": True,
    }


def test_without_a_model_the_api_starts_but_cannot_inspect(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    settings.detector.model = str(tmp_path / "no-such-model.pt")
    app = create_app(settings)  # no pipeline injected: built at start-up, and that fails
    with TestClient(app) as client:
        keys = add_keys(app)
        h = {"X-API-Key": keys["wms"]}
        assert client.get("/v1/health").status_code == 200
        r = client.get("/v1/ready", headers=h)
        assert r.status_code == 503
        check = r.json()["checks"]["model"]
        assert check["ok"] is False and "no-such-model.pt" in check["detail"]
        assert r.json()["checks"]["database"]["ok"] is True
        p = client.post("/v1/inspections", headers=h, files=[("images", ("a.jpg", jpeg()))])
        assert p.status_code == 503
        assert p.headers["content-type"] == "application/problem+json"
        assert p.json()["code"] == "model_not_ready" and "no-such-model.pt" in p.json()["detail"]
        assert int(p.headers["retry-after"]) > 0
        assert client.get("/v1/inspections", headers=h).json()["items"] == []


def test_the_pipeline_is_built_at_start_up_from_settings(tmp_path: Path, detector: Any, db_url: str | None) -> None:
    settings = make_settings(tmp_path, db_url=db_url)
    settings.detector.model = str(detector.weights)
    settings.detector.imgsz = 320
    app = create_app(settings)
    with TestClient(app) as client:
        keys = add_keys(app)
        h = {"X-API-Key": keys["wms"]}
        assert client.get("/v1/ready", headers=h).json()["ready"] is True
        r = client.post("/v1/inspections", headers=h, files=[("images", ("a.jpg", jpeg()))])
        assert r.status_code == 201, r.text
        assert client.get("/v1/models", headers=h).json()["serving"] == r.json()["versions"]["model"]


def test_metrics_count_requests_inspections_and_model_latency(api: Api) -> None:
    bodies = [api.inspect([jpeg(seed=i)]).json() for i in range(2)]
    api.client.get("/v1/inspections/00000000-0000-4000-8000-000000000000", headers=api.h("wms"))
    text = api.client.get("/metrics", headers=api.h("wms")).text
    post = 'inspector_http_requests_total{method="POST",route="/v1/inspections",station="bench-1",status="201"} 2.0'
    assert post in text
    assert 'route="/v1/inspections/{inspection_id}",station="bench-1",status="404"' in text
    expected: dict[tuple[str, str], int] = {}
    for b in bodies:
        key = (b["grade"]["level"], b["disposition"]["path"])
        expected[key] = expected.get(key, 0) + 1
    for (grade, disp), n in expected.items():
        line = (
            f'inspector_inspections_total{{disposition="{disp}",grade="{grade}",source="api",station="bench-1"}} '
            f"{float(n)}"
        )
        assert line in text
    assert 'inspector_model_latency_seconds_count{station="bench-1"} 2.0' in text
    assert "inspector_http_request_duration_seconds_bucket" in text
    assert 'inspector_inference_queue{station="bench-1"} 0.0' in text


def test_two_apps_in_one_process_keep_their_own_metrics(tmp_path: Path, pipeline: InspectionPipeline) -> None:
    a = create_app(make_settings(tmp_path / "a"), pipeline=pipeline)
    b = create_app(make_settings(tmp_path / "b"), pipeline=pipeline)
    with TestClient(a) as ca, TestClient(b) as cb:
        ka, kb = add_keys(a), add_keys(b)
        ca.get("/v1/models", headers={"X-API-Key": ka["wms"]})
        text_b = cb.get("/metrics", headers={"X-API-Key": kb["wms"]}).text
        assert "/v1/models" not in text_b


def test_models_lists_the_registry(api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "registry"
    for version in ("v1", "v2"):
        (root / version).mkdir(parents=True)
        (root / version / "weights.pt").write_bytes(b"weights")
    (root / "v2" / "meta.json").write_text(json.dumps({"map50": 0.61}))
    (root / "no-weights").mkdir()
    (root / "active.json").write_text(json.dumps({"version": "v2"}))
    monkeypatch.setenv("INSPECTOR_MODELS_DIR", str(root))
    body = api.client.get("/v1/models", headers=api.h("wms")).json()
    assert body["active"] == "v2"
    assert body["serving"] == api.app.state.pipeline_slot.pipeline.model_version
    assert [(m["version"], m["active"], m["meta"]) for m in body["models"]] == [
        ("v1", False, None),
        ("v2", True, {"map50": 0.61}),
    ]


def test_put_policy_validates_swaps_and_survives_a_restart(tmp_path: Path, detector: Any, db_url: str | None) -> None:
    from inspector.pipeline import build_pipeline

    settings = make_settings(tmp_path, db_url=db_url)
    app = create_app(settings, pipeline=build_pipeline(settings, detector=detector))
    with TestClient(app) as client:
        keys = add_keys(app)
        admin = {"X-API-Key": keys["admin"]}
        current = client.get("/v1/policy", headers=admin).json()
        assert current["source"] == "pipeline" and current["policy"]["version"] == current["version"]

        bad = client.put("/v1/policy", headers=admin, json={**current["policy"], "labour_rate": -1})
        assert bad.status_code == 422 and bad.json()["code"] == "invalid_policy"
        assert "labour_rate" in bad.json()["detail"]
        assert (
            client.put(
                "/v1/policy",
                headers=admin,
                content=b"[1",
            ).status_code
            == 422
        )

        new = {**current["policy"], "version": "test-2", "labour_rate": current["policy"]["labour_rate"] + 5}
        put = client.put("/v1/policy", headers=admin, json=new)
        assert put.status_code == 200, put.text
        assert put.json()["version"] == "test-2"
        assert client.get("/v1/policy", headers=admin).json() == {**put.json(), "source": "api"}
        r = client.post("/v1/inspections", headers=admin, files=[("images", ("a.jpg", jpeg()))]).json()
        assert r["versions"]["policy"] == "test-2" and r["disposition"]["policy_version"] == "test-2"

    # A new process on the same data folder starts with the stored policy.
    app2 = create_app(settings, pipeline=build_pipeline(settings, detector=detector))
    with TestClient(app2) as client:
        admin = {"X-API-Key": keys["admin"]}
        assert client.get("/v1/policy", headers=admin).json()["version"] == "test-2"
        r = client.post("/v1/inspections", headers=admin, files=[("images", ("a.jpg", jpeg(seed=2)))]).json()
        assert r["versions"]["policy"] == "test-2"


def test_openapi_schema_validates_and_documents_every_route(api: Api) -> None:
    from openapi_spec_validator import validate

    schema = api.client.get("/openapi.json").json()
    validate(schema)
    expected = {
        ("post", "/v1/inspections"),
        ("get", "/v1/inspections"),
        ("get", "/v1/inspections/{inspection_id}"),
        ("get", "/v1/inspections/{inspection_id}/images/{n}"),
        ("post", "/v1/inspections/{inspection_id}/decision"),
        ("get", "/v1/policy"),
        ("put", "/v1/policy"),
        ("get", "/v1/models"),
        ("get", "/v1/health"),
        ("get", "/v1/ready"),
        ("get", "/metrics"),
        ("post", "/v1/webhooks"),
        ("get", "/v1/webhooks"),
        ("delete", "/v1/webhooks/{endpoint_id}"),
        ("get", "/v1/webhooks/{endpoint_id}/deliveries"),
    }
    documented = {(m, p) for p, ops in schema["paths"].items() for m in ops}
    assert expected <= documented
    for method, path in expected:
        op = schema["paths"][path][method]
        assert op.get("summary") and op.get("responses"), (method, path)
        if path != "/v1/health":
            assert op.get("security"), f"{method} {path} must declare the API key"
            assert "401" in op["responses"]
    post = schema["paths"]["/v1/inspections"]["post"]
    form = post["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert "images" in json.dumps(schema["components"]["schemas"]) or "images" in json.dumps(form)
    assert (
        post["responses"]["409"]["content"]["application/problem+json"]["schema"]["$ref"]
        == "#/components/schemas/Problem"
    )
    assert "X-API-Key" in json.dumps(schema["components"]["securitySchemes"])


class GatedPipeline(WrappedPipeline):
    """The real pipeline behind a gate, so a test can hold inspections in flight."""

    def __init__(self, inner: InspectionPipeline) -> None:
        super().__init__(inner)
        self.started = threading.Semaphore(0)
        self.gate = threading.Event()

    def before(self, frames: Sequence[Frame]) -> None:
        self.started.release()
        assert self.gate.wait(30)


def test_a_full_inference_queue_answers_503_with_retry_after(tmp_path: Path, pipeline: InspectionPipeline) -> None:
    gated = GatedPipeline(pipeline)
    settings = make_settings(tmp_path, inference_queue=1, inference_workers=1)
    app = create_app(settings, pipeline=gated)
    with TestClient(app) as client:
        keys = add_keys(app)
        h = {"X-API-Key": keys["wms"]}
        results: list[Any] = []

        def post(seed: int) -> None:
            results.append(client.post("/v1/inspections", headers=h, files=[("images", ("a.jpg", jpeg(seed=seed)))]))

        threads = [threading.Thread(target=post, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        assert gated.started.acquire(timeout=20)  # one is running
        deadline = time.monotonic() + 20
        while app.state.runner.depth < 2 and time.monotonic() < deadline:  # and one is waiting
            time.sleep(0.01)
        assert app.state.runner.depth == 2
        full = client.post("/v1/inspections", headers=h, files=[("images", ("a.jpg", jpeg(seed=9)))])
        assert full.status_code == 503
        assert full.json()["code"] == "queue_full"
        assert int(full.headers["retry-after"]) >= 1
        gated.gate.set()
        for t in threads:
            t.join(timeout=60)
        assert [r.status_code for r in results] == [201, 201]
        assert 'inspector_inference_rejected_total{station="bench-1"} 1.0' in client.get("/metrics", headers=h).text
