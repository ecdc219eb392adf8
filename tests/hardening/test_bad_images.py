"""The bad-image corpus: each upload gets a clear 4xx and leaves nothing behind, or is decoded right.

"Right" means the pipeline sees the upright 8-bit BGR picture, checked pixel by
pixel against what the image shows, for EXIF-rotated, CMYK, 16-bit and grey
files. The whole corpus is also sent to a real ``inspector serve`` process,
whose peak resident memory (VmHWM) must stay under 1.5 GB.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from inspector.api.app import create_app
from inspector.detect.base import Detector
from inspector.imageio import ImageError, decode_image
from inspector.pipeline import InspectionPipeline, build_pipeline
from inspector.types import Frame
from tests.api.conftest import Api, WrappedPipeline, add_keys, make_settings
from tests.hardening import images
from tests.hardening.images import BAD, ODD, Bad, Odd

RSS_LIMIT_KIB = 1_500 * 1024


class Recording(WrappedPipeline):
    """The real pipeline, keeping the frames it was given."""

    def __init__(self, inner: InspectionPipeline) -> None:
        super().__init__(inner)
        self.frames: list[Frame] = []

    def before(self, frames: Sequence[Frame]) -> None:
        self.frames.extend(frames)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory, detector: Detector) -> Iterator[tuple[Api, Recording]]:
    tmp = tmp_path_factory.mktemp("images")
    settings = make_settings(tmp)
    rec = Recording(build_pipeline(settings, detector=detector))
    app = create_app(settings, pipeline=rec)
    with TestClient(app) as client:
        yield Api(app=app, client=client, settings=settings, keys=add_keys(app)), rec


def _post(api: Api, data: bytes, filename: str = "view.jpg", content_type: str = "image/jpeg") -> Any:
    return api.client.post("/v1/inspections", headers=api.h("wms"), files=[("images", (filename, data, content_type))])


def _stored(api: Api) -> tuple[int, list[Path]]:
    count = len(api.client.get("/v1/inspections?limit=200", headers=api.h("wms")).json()["items"])
    return count, sorted(p for p in (api.data_dir / "images").rglob("*") if p.is_file())


@pytest.mark.parametrize("odd", ODD, ids=[o.name for o in ODD])
def test_odd_images_reach_the_pipeline_upright_bgr_8_bit(recorded: tuple[Api, Recording], odd: Odd) -> None:
    api, rec = recorded
    data, expected = odd.make()
    rec.frames.clear()
    r = _post(api, data, "view.bin", "application/octet-stream")
    assert r.status_code == 201, r.text
    (frame,) = rec.frames
    seen = frame.image
    assert seen.dtype == np.uint8 and seen.ndim == 3 and seen.shape[2] == 3
    assert seen.shape == expected.shape, f"{odd.name}: the pipeline saw {seen.shape}, the picture is {expected.shape}"
    diff = float(np.abs(seen.astype(np.int16) - expected.astype(np.int16)).mean())
    assert diff <= odd.tolerance, f"{odd.name}: mean difference {diff:.2f} from the upright BGR picture"
    view = r.json()["views"][0]
    assert (view["height"], view["width"]) == expected.shape[:2]
    # The original bytes are kept as they came, whatever they are.
    back = api.client.get(view["image_url"], headers=api.h("wms"))
    assert back.status_code == 200 and back.content == data


@pytest.mark.parametrize("bad", BAD, ids=[b.name for b in BAD])
def test_bad_images_get_a_clear_4xx_and_leave_nothing(recorded: tuple[Api, Recording], bad: Bad) -> None:
    api, rec = recorded
    before = _stored(api)
    rec.frames.clear()
    r = _post(api, bad.make(), bad.filename, bad.content_type)
    assert r.status_code == bad.status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["code"] == bad.code and problem["detail"] and problem.get("view") == 0
    assert rec.frames == [], "a refused upload must not reach the pipeline"
    assert _stored(api) == before, "a refused upload must store nothing"


def test_the_declared_content_type_is_not_trusted(recorded: tuple[Api, Recording]) -> None:
    """A PNG sent as image/jpeg is a PNG: decoded as one, stored as one."""
    api, _ = recorded
    png = cv2.imencode(".png", images.scene())[1].tobytes()
    r = _post(api, png, "photo.jpg", "image/jpeg")
    assert r.status_code == 201, r.text
    assert r.json()["views"][0]["image"]["media_type"] == "image/png"


def test_a_body_that_is_not_multipart_is_refused(recorded: tuple[Api, Recording]) -> None:
    """Regression: a JPEG or JSON body got 422 "images: Field required"; it is a 415 that says what to send."""
    api, _ = recorded
    for content_type, body, status in (
        ("image/jpeg", images.jpeg(), 415),
        ("application/json", b'{"images": []}', 415),
        ("application/x-www-form-urlencoded", b"images=abc", 415),
        (None, b"raw bytes", 415),
        ("multipart/form-data", b"no boundary", 400),
        ("multipart/form-data; boundary=zz", b"--yy\r\ngarbage", 400),
    ):
        headers = api.h("wms", **({"content-type": content_type} if content_type else {}))
        r = api.client.post("/v1/inspections", headers=headers, content=body)
        assert r.status_code == status, (content_type, r.text)
        assert r.headers["content-type"] == "application/problem+json" and r.json()["detail"]
        if status == 415:
            assert r.json()["code"] == "unsupported_media_type" and "multipart/form-data" in r.json()["detail"]
    no_key = api.client.post("/v1/inspections", headers={"content-type": "application/json"}, content=b"{}")
    assert no_key.status_code == 401, "the key is checked first"


def test_a_declared_bomb_is_refused_from_its_header(monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: a PNG declaring 50,000 x 50,000 pixels was a 422 'not readable'; it is a 413, no pixel decoded."""
    decoded: list[str] = []
    real_load, real_imdecode = Image.Image.load, cv2.imdecode
    monkeypatch.setattr(Image.Image, "load", lambda self: decoded.append("PIL") or real_load(self))
    monkeypatch.setattr(cv2, "imdecode", lambda *a: decoded.append("cv2") or real_imdecode(*a))
    for w, h in ((50_000, 50_000), (8_000, 6_000), (40_000, 1_001)):
        with pytest.raises(ImageError) as err:
            decode_image(images.png_declaring(w, h), max_pixels=40_000_000)
        assert err.value.code == "too_many_pixels", (w, h, err.value)
    assert decoded == [], f"pixels were decoded: {decoded}"


def test_views_that_add_up_to_too_many_pixels_are_refused_before_decoding(
    recorded: tuple[Api, Recording], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: 8 small PNGs of 39.6 megapixels each (under the per-image limit) took a server to 2 GB."""
    api, rec = recorded
    decoded: list[str] = []
    real_load, real_imdecode = Image.Image.load, cv2.imdecode
    monkeypatch.setattr(Image.Image, "load", lambda self: decoded.append("PIL") or real_load(self))
    monkeypatch.setattr(cv2, "imdecode", lambda *a: decoded.append("cv2") or real_imdecode(*a))
    before = _stored(api)
    rec.frames.clear()
    views = [images.png_declaring(6000, 6600) for _ in range(8)]
    r = api.client.post(
        "/v1/inspections",
        headers=api.h("wms"),
        files=[("images", (f"v{n}.png", b, "image/png")) for n, b in enumerate(views)],
    )
    assert r.status_code == 413, r.text
    assert r.json()["code"] == "too_many_pixels" and "add up to" in r.json()["detail"]
    assert decoded == [] and rec.frames == [] and _stored(api) == before


def test_exif_rotated_webp_is_turned_upright() -> None:
    """Regression: OpenCV ignores the EXIF orientation of WebP files, so they reached the model on their side."""
    data, upright = images.exif_rotated_webp(6)
    assert np.array_equal(decode_image(data), upright)


# ------------------------------------------------------- a real server process


def _send(client: httpx.Client, bad: Bad) -> httpx.Response:
    return client.post("/v1/inspections", files=[("images", (bad.filename, bad.make(), bad.content_type))])


def _largest(url: str, key: str, png: bytes) -> httpx.Response:
    with httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=300) as client:
        return client.post("/v1/inspections", files=[("images", (f"v{n}.png", png, "image/png")) for n in range(2)])


def test_the_corpus_against_a_served_station_keeps_peak_memory_under_1_5_gb(
    served_factory: Any, tmp_path: Path
) -> None:
    server = served_factory()
    key = server.bootstrap_keys()["operator"]
    with httpx.Client(base_url=server.url, headers={"X-API-Key": key}, timeout=120) as client:
        warm = client.post("/v1/inspections", files=[("images", ("a.jpg", images.jpeg(640, 480), "image/jpeg"))])
        assert warm.status_code == 201, warm.text
        after_warm_up = server.vm_hwm_kib()
        results = {}
        for bad in BAD:
            r = _send(client, bad)
            results[bad.name] = r.status_code
            assert (r.status_code, r.json()["code"]) == (bad.status, bad.code), (bad.name, r.text)
        for odd in ODD:
            r = client.post("/v1/inspections", files=[("images", ("v.bin", odd.make()[0], "image/png"))])
            results[odd.name] = r.status_code
            assert r.status_code == 201, (odd.name, r.text)
        # Over the 20 MB upload limit: refused by its Content-Length, and while streaming without one.
        big = images.jpeg() + b"\0" * 21_000_000
        r = client.post("/v1/inspections", files=[("images", ("big.jpg", big, "image/jpeg"))])
        assert (r.status_code, r.json()["code"]) == (413, "content_too_large")

        def chunks() -> Iterator[bytes]:
            yield b'--b\r\nContent-Disposition: form-data; name="images"; filename="a.jpg"\r\n\r\n'
            for _ in range(22):
                yield b"\0" * 1_000_000
            yield b"\r\n--b--\r\n"

        r = client.post(
            "/v1/inspections", headers={"content-type": "multipart/form-data; boundary=b"}, content=chunks()
        )
        assert (r.status_code, r.json()["code"]) == (413, "content_too_large")
        results["over-the-size-limit"] = r.status_code
        # Views under the per-image limit that add up to too many pixels: refused from their headers.
        many = [("images", (f"v{n}.png", images.png_declaring(6000, 6600), "image/png")) for n in range(8)]
        r = client.post("/v1/inspections", files=many)
        assert (r.status_code, r.json()["code"]) == (413, "too_many_pixels"), r.text
        # The largest inspection accepted: two real 20-megapixel views, the 40 allowed.
        large = np.zeros((3333, 6000, 3), np.uint8)
        large[::50] = 255
        big_png = cv2.imencode(".png", large, [cv2.IMWRITE_PNG_COMPRESSION, 9])[1].tobytes()
        del large
        # Three of them at once: the pixel budget lets one decode at a time.
        with ThreadPoolExecutor(3) as pool:
            big = list(pool.map(lambda _: _largest(server.url, key, big_png), range(3)))
        assert [r.status_code for r in big] == [201] * 3, [r.text for r in big]
        results["largest-accepted-2x20MP-3-at-once"] = 201
        listed = client.get("/v1/inspections?limit=200").json()["items"]
        assert len(listed) == 4 + len(ODD), "exactly the good uploads were stored"
        peak = server.vm_hwm_kib()
    report = {
        "vm_hwm_mb_after_warm_up": round(after_warm_up / 1024, 1),
        "vm_hwm_mb_after_corpus": round(peak / 1024, 1),
        "limit_mb": RSS_LIMIT_KIB // 1024,
        "uploads": len(BAD) + len(ODD) + 6,
        "statuses": results,
    }
    (tmp_path / "bad-images-report.json").write_text(json.dumps(report, indent=2))
    print(f"\nbad-image corpus: peak RSS {peak / 1024:.0f} MB (after warm-up {after_warm_up / 1024:.0f} MB)")
    assert peak < RSS_LIMIT_KIB, report
