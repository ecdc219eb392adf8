"""API keys: every endpoint but health needs one, and roles limit what a key may do."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from inspector.api.app import create_app
from inspector.store.keys import revoke
from tests.api.conftest import Api, jpeg, make_settings

pytestmark = pytest.mark.api

MISSING = "00000000-0000-4000-8000-000000000000"

# (method, path, request kwargs, status for wms, operator, admin); 404/422 mean "let in, then refused on the input".
MATRIX: list[tuple[str, str, dict[str, Any], tuple[int, int, int]]] = [
    ("GET", "/v1/inspections", {}, (200, 200, 200)),
    ("GET", f"/v1/inspections/{MISSING}", {}, (404, 404, 404)),
    ("GET", f"/v1/inspections/{MISSING}/images/0", {}, (404, 404, 404)),
    ("POST", "/v1/inspections", {"files": [("images", ("a", b""))]}, (422, 422, 422)),
    ("POST", f"/v1/inspections/{MISSING}/decision", {"json": {"action": "accept"}}, (403, 404, 404)),
    ("GET", "/v1/policy", {}, (200, 200, 200)),
    ("PUT", "/v1/policy", {"json": {"nonsense": True}}, (403, 403, 422)),
    ("GET", "/v1/models", {}, (200, 200, 200)),
    ("GET", "/v1/ready", {}, (200, 200, 200)),
    ("GET", "/metrics", {}, (200, 200, 200)),
    ("GET", "/v1/webhooks", {}, (403, 403, 200)),
    ("POST", "/v1/webhooks", {"json": {"url": "ftp://x"}}, (403, 403, 422)),
    ("DELETE", "/v1/webhooks/wh_0000000000000000", {}, (403, 403, 404)),
    ("GET", "/v1/webhooks/wh_0000000000000000/deliveries", {}, (403, 403, 200)),
]


@pytest.mark.parametrize(("method", "path", "kwargs", "expected"), MATRIX, ids=[f"{m} {p}" for m, p, _, _ in MATRIX])
def test_roles(shared_api: Api, method: str, path: str, kwargs: dict[str, Any], expected: tuple[int, int, int]) -> None:
    api = shared_api
    no_key = api.client.request(method, path, **kwargs)
    assert no_key.status_code == 401, no_key.text
    assert no_key.json()["code"] == "missing_api_key"
    assert "x-api-key" in no_key.headers["www-authenticate"].lower()
    wrong = api.client.request(method, path, headers={"X-API-Key": "insp_" + "x" * 43}, **kwargs)
    assert wrong.status_code == 401 and wrong.json()["code"] == "invalid_api_key"
    for role, status in zip(("wms", "operator", "admin"), expected, strict=True):
        r = api.client.request(method, path, headers=api.h(role), **kwargs)
        assert r.status_code == status, f"{role}: {r.text}"
        if status == 403:
            assert r.json()["code"] == "forbidden" and role in r.json()["detail"]


def test_health_needs_no_key(api: Api) -> None:
    r = api.client.get("/v1/health")
    assert r.status_code == 200 and r.json()["status"] == "ok"


def test_bearer_token_works_for_scrapers(api: Api) -> None:
    r = api.client.get("/metrics", headers={"Authorization": f"Bearer {api.keys['wms']}"})
    assert r.status_code == 200 and "inspector_http_requests_total" in r.text


def test_a_revoked_key_is_refused_at_once(api: Api) -> None:
    assert api.client.get("/v1/inspections", headers=api.h("wms")).status_code == 200
    with api.app.state.store.db.read() as s:
        from inspector.store.keys import lookup

        info = lookup(s, api.keys["wms"])
    assert info is not None
    with api.app.state.store.db.write() as s:
        revoke(s, info.id)
    r = api.client.get("/v1/inspections", headers=api.h("wms"))
    assert r.status_code == 401 and r.json()["code"] == "invalid_api_key"


def test_keys_are_stored_hashed_and_never_in_clear(api: Api) -> None:
    api.inspect([jpeg()])
    if api.app.state.store.db.dialect == "sqlite":  # the whole file, not only the columns we know of
        raw = b""
        for f in sorted(api.data_dir.glob("inspector.db*")):
            raw += f.read_bytes()
    else:  # every column of every row of the keys table
        raw = repr(api.sql("SELECT * FROM api_keys")).encode()
    for key in api.keys.values():
        assert key.encode() not in raw
    hashes = {h for (h,) in api.sql("SELECT key_hash FROM api_keys")}
    import hashlib

    assert {hashlib.sha256(k.encode()).hexdigest() for k in api.keys.values()} <= hashes


def test_require_auth_off_lets_everyone_in(tmp_path: Any, pipeline: Any, db_url: str | None) -> None:
    settings = make_settings(tmp_path, db_url=db_url, require_auth=False)
    with TestClient(create_app(settings, pipeline=pipeline)) as client:
        assert client.get("/v1/webhooks").status_code == 200
        assert client.post("/v1/inspections", files=[("images", ("a.jpg", jpeg()))]).status_code == 201


def test_binds_loopback_by_default() -> None:
    from inspector.config import Settings

    assert Settings().server.host == "127.0.0.1"
