"""Misuse from a security read: what a hostile or careless client can make the station do, and what it may not.

Each test sends the misuse for real (to the app in-process, straight into its ASGI
entry where the bytes it reads must be counted, or to a served station over a socket)
and checks the answer, that nothing was stored or announced, and what the station kept.
"""

from __future__ import annotations

import json
import random
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from inspector.api import media
from inspector.detect.base import Detector
from inspector.pipeline import build_pipeline
from inspector.store.keys import create_key, lookup, revoke
from inspector.store.webhooks import EVENT_TYPES, add_endpoint
from station.sources.synthetic import BenchSchedule
from tests.api.conftest import Api, jpeg, make_settings, served_app
from tests.station.server import LiveServer, station_server

# ------------------------------------------------------------------ builders


def new_key(api: Api, role: str, name: str) -> str:
    with api.app.state.store.db.write() as s:
        return create_key(s, role, name)[1]


def revoke_key(api_or_app: Any, key: str) -> None:
    app = getattr(api_or_app, "app", api_or_app)
    with app.state.store.db.write() as s:
        info = lookup(s, key)
        assert info is not None
        revoke(s, info.id)


def count(api: Api, table: str) -> int:
    return int(api.sql(f"SELECT count(*) FROM {table}")[0][0])


def stored(api: Api) -> tuple[int, int, int]:
    """Inspections, decisions and outbox events in the database."""
    return count(api, "inspections"), count(api, "decisions"), count(api, "outbox")


@pytest.fixture(scope="module")
def subscribed(module_api: Api) -> Api:
    """The module's app with a webhook subscribed to every event, so that an event queued would show in the outbox."""
    with module_api.app.state.store.db.write() as s:
        add_endpoint(s, "http://127.0.0.1:9/hook", list(EVENT_TYPES))
    return module_api


@dataclass
class Answer:
    status: int
    body: dict[str, Any]
    consumed: int


def straight_in(
    api: Api, method: str, path: str, payload: bytes, headers: dict[str, str], *, declare_length: bool = True
) -> Answer:
    """One request into the app's ASGI entry; its body handed over 64 KB at a time, as the app asks for it."""
    chunk = 65_536
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    raw.append(
        (b"content-length", str(len(payload)).encode()) if declare_length else (b"transfer-encoding", b"chunked")
    )
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), *raw],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }

    async def run() -> Answer:
        consumed = 0
        messages: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            nonlocal consumed
            part = payload[consumed : consumed + chunk]
            consumed += len(part)
            return {"type": "http.request", "body": part, "more_body": consumed < len(payload)}

        async def send(message: dict[str, Any]) -> None:
            messages.append(message)

        await api.app(scope, receive, send)
        status = next(m["status"] for m in messages if m["type"] == "http.response.start")
        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
        return Answer(status, json.loads(body) if body else {}, consumed)

    portal = api.client.portal
    assert portal is not None
    return portal.call(run)


# ------------------------------------------------------ 1. metrics cardinality


def metrics_size(api: Api) -> int:
    r = api.client.get("/metrics", headers=api.h("admin"))
    assert r.status_code == 200
    return len(r.content)


def test_invented_methods_and_paths_do_not_grow_the_metrics(module_api: Api) -> None:
    """2,000 requests X1 /<random> ... X2000 /v1/inspections: one OTHER series, not 2,000 (3.8 MB before the fix)."""
    api = module_api
    rng = random.Random(7)
    paths = ["/", "/v1/inspections", "/v1/health", "/static/station.css", "/no/such/thing"]
    for path in [*paths, "/nowhere"]:  # the OTHER series of each route exist before the measurement
        api.client.request("X0", path)
    before = metrics_size(api)
    for i in range(1, 2001):
        path = rng.choice(paths) if i % 2 else f"/{rng.getrandbits(64):016x}/{i}"
        r = api.client.request(f"X{i}", path)
        assert r.status_code in (401, 404, 405), (i, path, r.status_code)
    after = metrics_size(api)
    print(f"/metrics: {before} bytes before, {after} after 2,000 invented requests")
    text = api.client.get("/metrics", headers=api.h("admin")).text
    assert 'method="X1"' not in text and 'method="OTHER"' in text
    assert not any(f'/{i}"' in text for i in (1, 2, 1000)), "a raw path became a label"
    assert after - before < 5_000, (before, after)


# ------------------------------------------------------ 2. the key before the body


UPLOAD = {"content-type": "multipart/form-data; boundary=zz"}


def upload(size: int) -> bytes:
    """A well-formed multipart body of about ``size`` bytes: one view in ``images``."""
    head = (
        b'--zz\r\nContent-Disposition: form-data; name="images"; filename="v.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
    )
    return head + b"\0" * size + b"\r\n--zz--\r\n"


@pytest.mark.parametrize("given", ["none", "wrong", "revoked"])
def test_an_unauthenticated_15_mb_upload_is_refused_before_its_body_is_read(module_api: Api, given: str) -> None:
    api = module_api
    keys = {"none": None, "wrong": "insp_" + "w" * 43, "revoked": new_key(api, "wms", "soon revoked")}
    if given == "revoked":
        revoke_key(api, keys["revoked"] or "")
    key = keys[given]
    headers = {**UPLOAD, **({"x-api-key": key} if key else {})}
    before = stored(api)
    answer = straight_in(api, "POST", "/v1/inspections", upload(15_000_000), headers)
    assert answer.status == 401, answer
    assert answer.body["code"] == ("missing_api_key" if key is None else "invalid_api_key")
    assert answer.consumed == 0, f"{answer.consumed} bytes of the body were read before the key was checked"
    chunked = straight_in(api, "POST", "/v1/inspections", upload(15_000_000), headers, declare_length=False)
    assert (chunked.status, chunked.consumed) == (401, 0)
    assert stored(api) == before


def test_a_live_key_gets_its_body_read(module_api: Api) -> None:
    """The counter above can see a read: with a live key the same kind of upload is read whole (and refused)."""
    api = module_api
    body = upload(1_000_000)
    answer = straight_in(api, "POST", "/v1/inspections", body, {**UPLOAD, **api.h("wms")})
    assert (answer.consumed, answer.status) == (len(body), 422), answer


@pytest.mark.parametrize("declare_length", [True, False], ids=["content-length", "chunked"])
def test_a_3_mb_json_body_is_refused_with_413_unparsed(module_api: Api, declare_length: bool) -> None:
    api = module_api
    limit = int(api.settings.server.max_json_kb * 1000)
    array = ("[" + ",".join(["0"] * 1_500_000) + "]").encode()
    assert len(array) > 3_000_000
    answer = straight_in(
        api,
        "PUT",
        "/v1/policy",
        array,
        {"content-type": "application/json", **api.h("admin")},
        declare_length=declare_length,
    )
    assert (answer.status, answer.body["code"]) == (413, "content_too_large"), answer
    assert answer.consumed <= (limit + 65_536 if not declare_length else 0), answer.consumed
    assert api.client.get("/v1/policy", headers=api.h("admin")).status_code == 200


def test_uploads_keep_their_own_limit(module_api: Api) -> None:
    """The JSON cap is not the upload cap: a 200 KB view still goes in."""
    api = module_api
    big = jpeg(1200, 900, seed=3)
    assert len(big) > 1000 * api.settings.server.max_json_kb
    assert api.inspect([big]).status_code == 201


# --------------------------------------------- 3. the annotated view, drawn once


def test_the_annotated_view_is_decoded_once_and_kept_beside_the_image(
    module_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = module_api
    created = api.inspect([jpeg(seed=11)]).json()
    decodes: list[int] = []
    real = media.decode_image

    def counted(data: bytes, **kwargs: Any) -> Any:
        decodes.append(len(data))
        return real(data, **kwargs)

    monkeypatch.setattr(media, "decode_image", counted)
    url = f"/v1/inspections/{created['id']}/images/0?annotated=1"
    first, second, third = (api.client.get(url, headers=api.h("wms")) for _ in range(3))
    assert first.status_code == 200 and first.content[:2] == b"\xff\xd8"
    assert first.content == second.content == third.content
    assert len(decodes) == 1, f"decoded {len(decodes)} times for three calls"
    sha = created["views"][0]["image"]["sha256"]
    image = api.app.state.store.images.path_for(sha)
    copies = list(image.parent.glob(f"{sha}.annotated-*.jpg"))
    assert [c.read_bytes() for c in copies] == [first.content]
    assert not list(image.parent.glob("*.tmp")), "no temporary file is left behind"


# -------------------------------------------- 4. non-finite numbers, deep nesting


def nested(levels: int, kind: str) -> str:
    return "[" * levels + "]" * levels if kind == "list" else '{"a":' * levels + "1" + "}" * levels


ITEMS = [
    ("infinity", '{"rma": "RMA-INF", "price": Infinity}', "non_finite_number"),
    ("minus-infinity", '{"price": -Infinity}', "non_finite_number"),
    ("nan", '{"price": NaN}', "non_finite_number"),
    ("overflow", '{"price": 1e999}', "non_finite_number"),
    ("deep-lists", '{"flags": ' + nested(10_000, "list") + "}", "too_deeply_nested"),
    ("deep-objects", '{"sku": ' + nested(10_000, "object") + "}", "too_deeply_nested"),
    ("deep-past-the-limit", '{"flags": ' + nested(40, "list") + "}", "too_deeply_nested"),
]


@pytest.mark.parametrize(("item", "code"), [(i, c) for _, i, c in ITEMS], ids=[n for n, _, _ in ITEMS])
def test_a_non_finite_or_deeply_nested_item_is_422_and_stores_nothing(subscribed: Api, item: str, code: str) -> None:
    api = subscribed
    before = stored(api)
    r = api.client.post(
        "/v1/inspections",
        headers=api.h("wms"),
        files=[("images", ("v.jpg", jpeg(), "image/jpeg"))],
        data={"item": item},
    )
    assert (r.status_code, r.json()["code"]) == (422, code), r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert stored(api) == before, "nothing is stored and no webhook event is queued"


BODIES = [
    ("infinity", '{"action": "accept", "note": Infinity}', "non_finite_number"),
    ("nan-deep-inside", '{"action": "accept", "x": [1, [2, {"y": NaN}]]}', "non_finite_number"),
    ("overflow", '{"action": "accept", "note": -1e400}', "non_finite_number"),
    ("deep-lists", '{"action": "accept", "note": ' + nested(10_000, "list") + "}", "too_deeply_nested"),
    ("deep-objects", nested(10_000, "object"), "too_deeply_nested"),
]


@pytest.mark.parametrize(("body", "code"), [(b, c) for _, b, c in BODIES], ids=[n for n, _, _ in BODIES])
@pytest.mark.parametrize("route", ["decision", "flags"])
def test_a_non_finite_or_deeply_nested_json_body_is_422(subscribed: Api, route: str, body: str, code: str) -> None:
    api = subscribed
    created = api.inspect([jpeg(seed=5)]).json()
    before = stored(api), count(api, "feedback_flags")
    for content_type in ("application/json", None):
        headers = api.h("operator", **({"content-type": content_type} if content_type else {}))
        r = api.client.post(f"/v1/inspections/{created['id']}/{route}", headers=headers, content=body)
        assert (r.status_code, r.json()["code"]) == (422, code), (content_type, r.text)
    assert (stored(api), count(api, "feedback_flags")) == before


def test_finite_numbers_still_go_in(module_api: Api) -> None:
    r = module_api.inspect([jpeg(seed=6)], item={"rma": "RMA-FINE", "price": 1e300, "flags": []})
    assert r.status_code == 201 and r.json()["item"]["price"] == 1e300


# ------------------------------------------------ 5. idempotency per API key


def test_idempotency_keys_belong_to_the_api_key_that_sent_them(module_api: Api) -> None:
    """Client A claims "RMA-1": B and C sending "RMA-1" are neither blocked nor served A's inspection."""
    api = module_api
    a, b, c = (new_key(api, "wms", f"client {n}") for n in "abc")
    view, other_view = jpeg(seed=21), jpeg(seed=22)

    def post(key: str, image: bytes) -> httpx.Response:
        headers = {"X-API-Key": key, "Idempotency-Key": "RMA-1"}
        return api.client.post("/v1/inspections", headers=headers, files=[("images", ("v.jpg", image, "image/jpeg"))])

    first = post(a, view)
    assert first.status_code == 201
    same_body = post(b, view)
    assert same_body.status_code == 201 and "Idempotent-Replayed" not in same_body.headers, "not A's stored answer"
    other_body = post(c, other_view)
    assert other_body.status_code == 201, "another client's claim does not block this one"
    assert len({first.json()["id"], same_body.json()["id"], other_body.json()["id"]}) == 3
    for key, image, mine in ((a, view, first), (b, view, same_body), (c, other_view, other_body)):
        again = post(key, image)
        assert (again.status_code, again.headers.get("Idempotent-Replayed")) == (201, "true")
        assert again.json()["id"] == mine.json()["id"], "each client's retry replays its own inspection"
    assert post(a, other_view).status_code == 409, "the same client with another body is still a conflict"


# --------------------------------------------------------- 6. security headers


PAGES = [
    ("GET", "/v1/health", None),
    ("GET", "/v1/inspections", None),
    ("GET", "/v1/inspections", "wms"),
    ("GET", "/metrics", "admin"),
    ("GET", "/", None),
    ("GET", "/static/station.css", None),
    ("GET", "/static/main.js", None),
    ("GET", "/no/such/page", None),
    ("POST", "/v1/inspections", None),
    ("DELETE", "/v1/health", None),
]


@pytest.mark.parametrize(("method", "path", "role"), PAGES)
def test_every_answer_carries_the_security_headers(module_api: Api, method: str, path: str, role: str | None) -> None:
    api = module_api
    r = api.client.request(
        method, path, headers=api.h(role) if role else {}, content=b"{}" if method == "POST" else None
    )
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "no-referrer"
    csp = r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp
    assert "unsafe-inline" not in csp and "https:" not in csp, "the page and the API load nothing from elsewhere"


def test_the_docs_page_keeps_its_assets(module_api: Api) -> None:
    """Swagger UI loads its bundle from a CDN and starts from an inline script: its policy lets both in."""
    r = module_api.client.get("/docs")
    assert r.status_code == 200 and r.headers["x-frame-options"] == "DENY"
    csp = r.headers["content-security-policy"]
    for src in ("cdn.jsdelivr.net", "'unsafe-inline'"):
        assert src in csp
    assert "https://cdn.jsdelivr.net" in r.text


# ------------------------------------------------------------ 7. public docs


@pytest.fixture(scope="module")
def private_docs(tmp_path_factory: pytest.TempPathFactory, detector: Detector) -> Iterator[Api]:
    from tests.api.conftest import add_keys

    settings = make_settings(tmp_path_factory.mktemp("private-docs"), public_docs=False)
    app = served_app(settings, build_pipeline(settings, detector=detector))
    with TestClient(app) as client:
        yield Api(app=app, client=client, settings=settings, keys=add_keys(app))


DOCS = ["/docs", "/openapi.json", "/redoc"]


@pytest.mark.parametrize("path", DOCS)
def test_public_docs_open_without_a_key_and_say_so(module_api: Api, path: str) -> None:
    api = module_api
    assert api.client.get(path).status_code == 200
    description = api.client.get("/openapi.json").json()["info"]["description"]
    assert "Every endpoint but `/v1/health`, `/docs` and `/openapi.json` needs an" in description


@pytest.mark.parametrize("path", DOCS)
def test_private_docs_need_a_key(private_docs: Api, path: str) -> None:
    api = private_docs
    r = api.client.get(path)
    assert (r.status_code, r.json()["code"]) == (401, "missing_api_key")
    assert api.client.get(path, headers={"X-API-Key": "insp_nope"}).status_code == 401
    assert api.client.get(path, headers=api.h("wms")).status_code == 200
    description = api.client.get("/openapi.json", headers=api.h("wms")).json()["info"]["description"]
    assert "Every endpoint but `/v1/health` needs an" in description


# ------------------------------------------------------------ 8. who acted


def test_decisions_and_flags_keep_the_key_name_beside_the_claimed_actor(subscribed: Api) -> None:
    api = subscribed
    key = new_key(api, "operator", "wms-prod")
    created = api.inspect([jpeg(seed=31)]).json()
    iid = created["id"]
    r = api.client.post(
        f"/v1/inspections/{iid}/decision", headers={"X-API-Key": key}, json={"action": "accept", "actor": "alice"}
    )
    assert r.status_code == 201, r.text
    decision = r.json()["decisions"][-1]
    assert (decision["actor"], decision["key_name"]) == ("alice", "wms-prod")
    read = api.client.get(f"/v1/inspections/{iid}", headers=api.h("wms")).json()["decisions"][-1]
    assert (read["actor"], read["key_name"]) == ("alice", "wms-prod")
    rows = api.sql("SELECT actor, key_name FROM decisions WHERE inspection_id = :i", i=iid)
    assert rows == [("alice", "wms-prod")]
    events = [json.loads(b[0])["data"] for b in api.sql("SELECT body FROM outbox WHERE type = 'inspection.decided'")]
    announced = [e["decision"] for e in events if e["inspection_id"] == iid]
    assert [(d["actor"], d["key_name"]) for d in announced] == [("alice", "wms-prod")]
    flag = api.client.post(
        f"/v1/inspections/{iid}/flags", headers={"X-API-Key": key}, json={"kind": "missed_defect", "view": 0}
    )
    assert flag.status_code == 201 and flag.json()["key_name"] == "wms-prod", flag.text
    listed = api.client.get(f"/v1/inspections/{iid}/flags", headers=api.h("wms")).json()["items"]
    assert [f["key_name"] for f in listed] == ["wms-prod"]


# ------------------------------------------------ 9. a revoked key's live view


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The real app with its bench camera under uvicorn on a loopback port."""
    schedule = BenchSchedule(empty_s=0.8, enter_s=0.3, still_s=1.6, leave_s=0.3)
    server = station_server(tmp_path_factory.mktemp("misuse-live"), schedule=schedule, fps=15.0)
    try:
        yield server
    finally:
        server.stop()


def test_an_open_live_view_ends_when_its_key_is_revoked(live: LiveServer) -> None:
    with live.app.state.store.db.write() as s:
        key = create_key(s, "operator", "bench tablet")[1]
    url = live.url + "/station/stream.mjpg"
    with (
        httpx.stream("GET", url, headers={"X-API-Key": key}, timeout=10) as mine,
        httpx.stream("GET", url, headers=live.h("operator"), timeout=10) as theirs,
    ):
        assert mine.status_code == 200 and theirs.status_code == 200
        frames = mine.iter_bytes()
        received = len(next(frames))
        revoke_key(live.app, key)
        revoked_at = time.monotonic()
        for chunk in frames:
            received += len(chunk)
            assert time.monotonic() - revoked_at < 8, "the stream outlived its key's revocation"
        ended_after = time.monotonic() - revoked_at
        assert next(theirs.iter_bytes()), "a live key's stream goes on"
    assert received > 0
    print(f"the live view ended {ended_after:.2f} s after its key was revoked")
    assert ended_after < 4
    assert httpx.get(live.url + "/station/frame.jpg", headers={"X-API-Key": key}).status_code == 401


def test_over_a_socket_an_anonymous_upload_is_answered_before_its_body_is_sent(live: LiveServer) -> None:
    """Headers announcing 15 MB and not one byte of body: the answer comes at once, the connection closed."""
    host, port = live.url.removeprefix("http://").split(":")
    head = (
        "POST /v1/inspections HTTP/1.1\r\nHost: bench\r\nContent-Type: multipart/form-data; boundary=zz\r\n"
        "Content-Length: 15000000\r\n\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(head.encode())
        t0 = time.monotonic()
        reply = b""
        while b"\r\n\r\n" not in reply:
            part = sock.recv(65536)
            assert part, "the connection closed without an answer"
            reply += part
        waited = time.monotonic() - t0
    status_line, _, rest = reply.partition(b"\r\n")
    assert status_line.split()[1] == b"401", reply[:300]
    assert b"connection: close" in rest.lower()
    assert waited < 2, f"answered after {waited:.2f} s"
