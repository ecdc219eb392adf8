"""Crafted ids, file names and query parameters never read or write outside the data folder.

A secret file sits next to the data folder; every crafted request is checked
for its content in the answer, and the files outside the data folder are the
same before and after. Uploaded file names are ignored: images are stored
under their sha256 only.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.api.conftest import Api, jpeg

SECRET = "top-secret-8d1f0c"

TRAVERSALS = [
    "../../secret.txt",
    "..%2F..%2Fsecret.txt",
    "%2e%2e%2f%2e%2e%2fsecret.txt",
    "..%252F..%252Fsecret.txt",
    "....//....//secret.txt",
    "/etc/passwd",
    "%2Fetc%2Fpasswd",
    "..\\..\\secret.txt",
    "secret.txt%00.jpg",
    "a" * 5000,
]
FILE_NAMES = [
    "../../outside.jpg",
    "../../../../../../tmp/outside.jpg",
    "/tmp/absolute.jpg",
    "..\\..\\windows.jpg",
    "a/../../b.jpg",
    "nul\x00byte.jpg",
    ".",
    "",
    "~/.ssh/authorized_keys",
]


def _outside(root: Path, data_dir: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and not p.resolve().is_relative_to(data_dir.resolve())
    }


@pytest.fixture
def secret(module_api: Api) -> Path:
    path = module_api.data_dir.parent / "secret.txt"
    path.write_text(SECRET)
    return path


def test_crafted_ids_and_paths_read_nothing_outside(module_api: Api, secret: Path) -> None:
    api = module_api
    h = api.h("admin")
    before = _outside(api.data_dir.parent, api.data_dir)
    iid = api.inspect([jpeg(seed=41)]).json()["id"]
    for bad in TRAVERSALS:
        for path in (
            f"/v1/inspections/{bad}",
            f"/v1/inspections/{bad}/images/0",
            f"/v1/inspections/{iid}/images/{bad}",
            f"/v1/inspections/{bad}/decision",
            f"/v1/webhooks/{bad}",
            f"/v1/webhooks/{bad}/deliveries",
            f"/station/captures/{bad}.jpg",
            f"/static/{bad}",
            f"/{bad}",
        ):
            for method in ("GET", "POST", "DELETE"):
                r = api.client.request(method, path, headers=h)
                station_off = path.startswith("/station/") and r.status_code == 503  # no cameras in this app
                assert r.status_code < 500 or station_off, f"{method} {path}: {r.status_code} {r.text[:200]}"
                assert SECRET.encode() not in r.content, f"{method} {path} read the secret"
                assert b"root:x:0:0" not in r.content, f"{method} {path} read /etc/passwd"
    assert _outside(api.data_dir.parent, api.data_dir) == before


def test_crafted_query_parameters_read_nothing_outside(module_api: Api, secret: Path) -> None:
    api = module_api
    h = api.h("admin")
    for bad in TRAVERSALS:
        for query in (
            f"cursor={bad}",
            f"rma={bad}",
            f"sku={bad}",
            f"since={bad}",
            f"grade={bad}",
            f"disposition={bad}",
            f"limit={bad}",
        ):
            r = api.client.get(f"/v1/inspections?{query}", headers=h)
            assert r.status_code in (200, 422), f"{query}: {r.status_code} {r.text[:200]}"
            assert SECRET.encode() not in r.content
        r = api.client.get(f"/v1/inspections/00000000-0000-4000-8000-000000000000/images/0?annotated={bad}", headers=h)
        assert r.status_code in (404, 422)


def test_uploaded_file_names_are_never_used_as_paths(module_api: Api, tmp_path: Path) -> None:
    api = module_api
    root = api.data_dir.parent
    before = _outside(root, api.data_dir)
    absolute = [Path("/tmp/outside.jpg"), Path("/tmp/absolute.jpg")]
    existed = [p.exists() for p in absolute]
    stored = []
    for n, name in enumerate(FILE_NAMES):
        r = api.client.post(
            "/v1/inspections",
            headers=api.h("wms"),
            files=[("images", (name, jpeg(seed=300 + n), "image/jpeg"))],
        )
        if not name:  # a part without a file name is a plain form field, not a file
            assert r.status_code == 422, r.text
            continue
        assert r.status_code == 201, f"{name!r}: {r.text}"
        stored.append(r.json()["views"][0]["image"]["sha256"])
    assert _outside(root, api.data_dir) == before, "an upload wrote outside the data folder"
    assert [p.exists() for p in absolute] == existed, "an upload wrote to an absolute path"
    for name in ("outside.jpg", "absolute.jpg", "windows.jpg", "b.jpg"):
        assert not list(root.rglob(name)), f"{name} was written"
    files = [p for p in (api.data_dir / "images").rglob("*") if p.is_file()]
    assert files and all(re.fullmatch(r"[0-9a-f]{64}", p.name) for p in files), files
    assert {p.name for p in files} >= set(stored)
    for p in files:
        assert p.parent.parent.name == p.name[:2] and p.parent.name == p.name[2:4]
