"""OpenAPI fuzzing with schemathesis, in-process against the real app, the bench station running.

Every operation in the schema gets generated requests, valid by the schema
(positive) and invalid (negative), seeded so CI replays the same cases. Each
response is checked: no server error, a documented status code and content
type, a body and headers that match the schema. Image uploads get real JPEG,
PNG and WebP views mixed into the generated multipart bodies, so the pipeline
runs too. The counts are printed and written to ``fuzz-report.json``.
"""

from __future__ import annotations

import collections
import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from inspector.config import CameraConfig, Settings, StationConfig, StorageConfig, WebhookConfig
from inspector.detect.base import Detector
from inspector.pipeline import build_pipeline
from tests.api.conftest import add_keys, served_app
from tests.hardening import images

EXAMPLES_PER_MODE = 20
MIN_CASES = 500
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
# Operations whose responses schemathesis cannot read to the end, with the reason.
NOT_FUZZED = {
    "GET /station/stream.mjpg": "an endless multipart/x-mixed-replace live view; covered by tests/station",
}
REAL_VIEWS = [
    images.jpeg(160, 120, seed=1),
    images.jpeg(200, 150, seed=2),
    cv2.imencode(".png", images.scene())[1].tobytes(),
    images.exif_rotated_webp()[0],
]


@pytest.fixture(scope="module")
def station_app(
    tmp_path_factory: pytest.TempPathFactory, detector: Detector
) -> Iterator[tuple[FastAPI, dict[str, str]]]:
    """The real app with its bench station on a folder camera showing the empty bench, 2 frames a second."""
    tmp = tmp_path_factory.mktemp("fuzz")
    cam = tmp / "camera"
    cam.mkdir()
    empty = images.jpeg(320, 240, seed=5)
    (cam / "bench.jpg").write_bytes(empty)
    cfg = Settings(
        storage=StorageConfig(data_dir=tmp / "data"),
        camera=CameraConfig(sources=[str(cam)], fps=2.0),
        station=StationConfig(enabled=True, read_labels=False),
        webhooks=WebhookConfig(
            poll_interval_s=0.2, base_delay_s=0.05, max_delay_s=0.2, timeout_s=1.0, allow_private_urls=True
        ),
    )
    app = served_app(cfg, build_pipeline(cfg, detector=detector))
    with asgi.get_client(app) as client:  # starts the lifespan (store, station) once, as a server would
        keys = add_keys(app)
        deadline = time.monotonic() + 30
        while client.get("/station/frame.jpg", headers={"X-API-Key": keys["operator"]}).status_code != 200:
            assert time.monotonic() < deadline, "the station camera delivered no frame"
            time.sleep(0.1)
        made = client.post(
            "/v1/inspections",
            headers={"X-API-Key": keys["wms"]},
            files=[("images", ("a.jpg", REAL_VIEWS[0], "image/jpeg"))],
        )
        assert made.status_code == 201, made.text
        hook = client.post("/v1/webhooks", headers={"X-API-Key": keys["admin"]}, json={"url": "http://127.0.0.1:9/"})
        assert hook.status_code == 201, hook.text
        keys = {**keys, "inspection_id": made.json()["id"], "endpoint_id": hook.json()["id"]}
        yield app, keys
    asgi.shutdown_lifespans()


def _with_real_views(case: Any, picks: list[int]) -> None:
    """Replace the generated views by real images: one or three views pass, two get a generated one added."""
    body = case.body
    if not (picks and isinstance(body, dict) and isinstance(body.get("images"), list)):
        return
    generated = body["images"]
    body["images"] = [REAL_VIEWS[i] for i in picks] + (generated[:1] if len(picks) == 2 else [])
    if len(picks) == 3:
        body["item"] = json.dumps({"rma": "RMA-FUZZ", "sku": "PH-M250", "category": "phone", "price": 12.5})


@dataclass
class Tally:
    cases: collections.Counter[str] = field(default_factory=collections.Counter)
    statuses: collections.Counter[str] = field(default_factory=collections.Counter)
    failures: dict[str, list[str]] = field(default_factory=lambda: collections.defaultdict(list))
    seconds: collections.Counter[str] = field(default_factory=collections.Counter)


def fuzz(
    op: Any, mode: GenerationMode, session: Any, auth: dict[str, str], real_ids: dict[str, str], tally: Tally
) -> None:
    """Run the seeded cases of one operation in one mode, recording every response and failed check.

    Valid cases name an existing inspection or webhook endpoint half of the time, so reads,
    decisions and deliveries answer with real bodies, not only 404.
    """
    label = op.label
    positive = mode == GenerationMode.POSITIVE
    uploads = label == "POST /v1/inspections" and positive
    picks = st.lists(st.integers(0, len(REAL_VIEWS) - 1), max_size=3) if uploads else st.just([])
    known = st.booleans() if positive and any(f"{{{p}}}" in op.path for p in real_ids) else st.just(False)

    @given(case=op.as_strategy(generation_mode=mode), picks=picks, known=known)
    @settings(
        max_examples=EXAMPLES_PER_MODE,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any, picks: list[int], known: bool) -> None:
        _with_real_views(case, picks)
        if known:
            for name, value in real_ids.items():
                if name in (case.path_parameters or {}):
                    case.path_parameters[name] = value
        if label == "GET /station/status" and positive:
            # A long poll holds up to 25 s by design (20 s by default); keep it short here.
            case.query = {**(case.query or {}), "wait": 0.05}
        t0 = time.perf_counter()
        response = case.call(session=session, headers=auth, timeout=60)
        tally.seconds[label] += time.perf_counter() - t0
        tally.cases[label] += 1
        tally.statuses[f"{label} {response.status_code}"] += 1
        try:
            case.validate_response(response, checks=CHECKS, headers=auth)
        except (AssertionError, BaseExceptionGroup) as exc:
            tally.failures[label].append(f"[{mode.value}] {response.status_code}: {exc}")

    with contextlib.suppress(Unsatisfiable):  # an operation without parameters has no invalid form
        run()


@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")  # schemathesis' own strategies
def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    station_app: tuple[FastAPI, dict[str, str]], tmp_path: Path
) -> None:
    app, keys = station_app
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    auth = {"X-API-Key": keys["admin"]}
    real_ids = {name: keys[name] for name in ("inspection_id", "endpoint_id")}
    tally = Tally()
    operations: list[str] = []
    with asgi.get_client(app) as session:
        for result in schema.get_all_operations():
            op = result.ok()
            operations.append(op.label)
            if op.label not in NOT_FUZZED:
                for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                    fuzz(op, mode, session, auth, real_ids, tally)

    cases, statuses, failures = tally.cases, tally.statuses, tally.failures
    total = sum(cases.values())
    n_failures = sum(len(v) for v in failures.values())
    report = {
        "cases": total,
        "failures": n_failures,
        "operations": len(operations),
        "not_fuzzed": NOT_FUZZED,
        "cases_by_operation": dict(cases),
        "seconds_by_operation": {k: round(v, 2) for k, v in tally.seconds.most_common()},
        "statuses": dict(sorted(statuses.items())),
        "failures_by_operation": {k: v[:5] for k, v in failures.items()},
    }
    out = tmp_path / "fuzz-report.json"
    out.write_text(json.dumps(report, indent=2))
    print(f"\nschemathesis: {total} cases over {len(operations)} operations, {n_failures} failures ({out})")

    assert n_failures == 0, json.dumps(report["failures_by_operation"], indent=1)[:8000]
    assert total >= MIN_CASES
    missing = [op for op in operations if op not in NOT_FUZZED and cases[op] == 0]
    assert not missing, f"operations that got no case: {missing}"
    # The upload endpoint really ran the pipeline, and refused garbage with a 4xx.
    assert statuses["POST /v1/inspections 201"] > 0, statuses
    assert any(k.startswith("POST /v1/inspections 4") for k in statuses), statuses


def test_the_schema_documents_what_malformed_requests_get(station_app: tuple[FastAPI, dict[str, str]]) -> None:
    """Regression: FastAPI documented 422 as plain JSON and no 400, but the app answers problem+json for both."""
    app, _ = station_app
    with asgi.get_client(app) as client:
        schema = client.get("/openapi.json").json()
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            where = f"{method.upper()} {path}"
            for status, answer in op["responses"].items():
                if status.startswith(("4", "5")) and (where, status) != ("GET /v1/ready", "503"):  # the checks
                    assert list(answer.get("content", {})) == ["application/problem+json"], (where, status)
            if "requestBody" in op:
                assert "400" in op["responses"], where
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    reference = schema["paths"]["/station/reference"]["post"]["responses"]
    assert "202" in reference and "200" not in reference, "the route answers 202"
    assert list(schema["paths"]["/station/frame.jpg"]["get"]["responses"]["200"]["content"]) == ["image/jpeg"]
