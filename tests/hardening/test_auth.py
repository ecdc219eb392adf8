"""Auth misuse: every route but health refuses a missing or wrong key, roles hold, keys compare safely.

The route list comes from the app itself, so a route added later without a key
check fails here. The few that need no key are named with the reason.
"""

from __future__ import annotations

import hmac
import logging
import re
from typing import Any

import pytest

from inspector.store import keys as keys_module
from inspector.store.keys import lookup, revoke
from tests.api.conftest import Api, jpeg

# Routes that answer without a key, and why.
OPEN = {
    ("GET", "/v1/health"): "liveness probe",
    ("GET", "/"): "the operator page shell; it asks for the operator key itself",
    ("DELETE", "/station/session"): "forgets the browser's live-view cookie; it tells and opens nothing",
    ("GET", "/openapi.json"): "the public contract",
    ("GET", "/docs"): "the contract, rendered",
    ("GET", "/docs/oauth2-redirect"): "part of the rendered contract",
    ("GET", "/redoc"): "the contract, rendered",
}
SAMPLES = {"inspection_id": "00000000-0000-4000-8000-000000000000", "endpoint_id": "wh_0000000000000000", "n": "0"}
WRONG_KEYS = [
    "insp_" + "x" * 43,
    "insp_",
    "x",
    "insp_" + "x" * 300,
    "' OR 1=1 --",
]


def _routes(api: Api) -> list[tuple[str, str]]:
    """Every (method, path) the app answers: the schema's operations and the routes outside the schema."""
    fill = lambda path: re.sub(r"\{(\w+)(:\w+)?\}", lambda m: SAMPLES.get(m.group(1), "x"), path)  # noqa: E731
    found = {
        (method.upper(), fill(path))
        for path, ops in api.client.get("/openapi.json").json()["paths"].items()
        for method in ops
    }
    for route in api.app.routes:  # the top level: docs, the page, the static mount
        if isinstance(getattr(route, "path", None), str) and getattr(route, "methods", None):
            found |= {(m, fill(route.path)) for m in route.methods if m != "HEAD"}
    return sorted(found)


def test_every_route_but_the_open_ones_refuses_a_missing_or_wrong_key(module_api: Api) -> None:
    api = module_api
    routes = _routes(api)
    assert len(routes) >= 25, routes
    revoked_key = api.keys["wms"]
    with api.app.state.store.db.write() as s:
        info = lookup(s, revoked_key)
        assert info is not None
        revoke(s, info.id)
    wrong = [*WRONG_KEYS, revoked_key, api.keys["admin"] + " ", api.keys["admin"][:-1]]
    checked = 0
    for method, path in routes:
        template = path
        if (method, template) in OPEN:
            continue
        r = api.client.request(method, path)
        assert r.status_code == 401, f"{method} {path} without a key: {r.status_code} {r.text[:200]}"
        for key in wrong:
            r = api.client.request(method, path, headers={"X-API-Key": key})
            assert r.status_code == 401, f"{method} {path} with a wrong key: {r.status_code}"
        r = api.client.request(method, path, headers={"Authorization": "Bearer insp_nope"})
        assert r.status_code == 401, f"{method} {path} with a wrong bearer token: {r.status_code}"
        checked += 1
    assert checked >= 20
    for method, path in OPEN:
        if (method, path) in routes:
            assert api.client.request(method, path).status_code != 401 or path.startswith("/station")


def test_a_wms_key_cannot_change_the_policy(module_api: Api) -> None:
    api = module_api
    h_wms, h_op, h_admin = (
        {"X-API-Key": k} for k in (_fresh_key(api, "wms"), _fresh_key(api, "operator"), api.keys["admin"])
    )
    current = api.client.get("/v1/policy", headers=h_wms).json()
    document = current["policy"]
    for headers in (h_wms, h_op):
        r = api.client.put("/v1/policy", headers=headers, json=document)
        assert r.status_code == 403 and r.json()["code"] == "forbidden", r.text
        r = api.client.put("/v1/policy", headers=headers, json={"nonsense": True})
        assert r.status_code == 403, "the role is checked before the body"
    assert api.client.get("/v1/policy", headers=h_wms).json() == current, "the policy did not change"
    assert api.client.put("/v1/policy", headers=h_admin, json=document).status_code == 200


def _fresh_key(api: Api, role: str) -> str:
    from inspector.store.keys import create_key

    with api.app.state.store.db.write() as s:
        return create_key(s, role, f"fresh {role}")[1]


def test_keys_are_checked_by_hash_lookup_and_compare_digest(module_api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fails if the check is replaced by == on the key: the decision must go through hmac.compare_digest."""
    api = module_api
    key = _fresh_key(api, "operator")
    calls: list[tuple[Any, Any]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(keys_module.hmac, "compare_digest", spy)
    assert api.client.get("/v1/inspections", headers={"X-API-Key": key}).status_code == 200
    assert calls, "the key was not compared with hmac.compare_digest"
    assert all(key not in (a, b) for a, b in calls), "the key itself, not its digest, was compared"
    assert (keys_module.hash_key(key), keys_module.hash_key(key)) in calls

    # The result of compare_digest decides: if it says no, the key is refused.
    monkeypatch.setattr(keys_module.hmac, "compare_digest", lambda a, b: False)
    r = api.client.get("/v1/inspections", headers={"X-API-Key": key})
    assert r.status_code == 401 and r.json()["code"] == "invalid_api_key"
    # The operator page's own check goes the same way.
    assert api.client.post("/station/item", headers={"X-API-Key": key}, json={"rma": "RMA-1"}).status_code == 401


def test_keys_never_reach_the_log(module_api: Api, caplog: pytest.LogCaptureFixture) -> None:
    api = module_api
    good = _fresh_key(api, "operator")
    wrong = "insp_" + "w" * 43
    caplog.set_level(logging.DEBUG)
    for key in (good, wrong):
        h = {"X-API-Key": key}
        api.client.get("/v1/inspections", headers=h)
        api.client.get("/metrics", headers={"Authorization": f"Bearer {key}"})
        api.client.post("/v1/inspections", headers=h, files=[("images", ("a.jpg", jpeg()))])
        api.client.post("/v1/inspections", headers=h, files=[("images", ("a.jpg", b"junk"))])
        api.client.put("/v1/policy", headers=h, json={})
    text = "\n".join(f"{r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records)
    for key in (good, wrong):
        assert key not in text
        assert key[5:] not in text
