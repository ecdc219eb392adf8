"""The operator page and the station endpoints, mounted on the API's FastAPI app.

``mount(app, settings)`` adds the station to the API's app (whoever composes the
process calls it after ``create_app``). It serves the page shell at ``/`` and its assets under
``/static`` (no build step, nothing fetched from the internet), the live view
as MJPEG, the station status as a long poll, and the operator's controls
(manual capture, RMA/LPN entry, empty-bench reference). It also appends a
lifespan factory to ``app.state.background`` that starts the cameras and the
trigger once the API's store and pipeline are up, and stops them on shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import mimetypes
import signal
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles

from inspector.api.deps import SettingsDep, StoreDep, has_role, key_for
from inspector.api.problems import Problem, responses
from inspector.api.returns import ReturnBook
from inspector.api.service import InspectionService
from inspector.config import Settings
from inspector.disposition.loaders import load_catalogue, serving_catalogue_file
from inspector.errors import Conflict
from inspector.items import ItemInfo
from inspector.store import Store
from inspector.store import returns as returns_store
from inspector.store.keys import KeyInfo, Role
from inspector.types import Frame, Inspection
from station.capture import LinesOf, Submit
from station.demo_returns import DEMO_SLIP_SHARE, DemoReturns
from station.labels import LabelReader
from station.runtime import StationRuntime
from station.sources import FrameSource, mask_url, open_source
from station.sources.synthetic import SyntheticBenchSource

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
# The page's scripts are ES modules: browsers run them only when served as JavaScript, whatever the host maps .js to.
mimetypes.add_type("text/javascript", ".js")
BOUNDARY = "frame"


# --------------------------------------------------------------------------- building


def build_sources(settings: Settings) -> tuple[list[FrameSource], list[str]]:
    """One source per configured spec, camera ids cam0, cam1, ..."""
    cam = settings.camera
    sources: list[FrameSource] = []
    specs: list[str] = []
    for i, spec in enumerate(cam.sources):
        sources.append(open_source(spec, f"cam{i}", fps=cam.fps, width=cam.width, height=cam.height, seed=cam.seed + i))
        specs.append(mask_url(spec))  # camera URLs may carry a password; the page never shows it
    return sources, specs


def build_runtime(
    settings: Settings,
    *,
    submit: Submit | None,
    loop: asyncio.AbstractEventLoop | None = None,
    model_ready: Callable[[], bool | None] | None = None,
    sources: list[FrameSource] | None = None,
    lines_of: LinesOf | None = None,
    demo: DemoReturns | None = None,
) -> StationRuntime:
    st = settings.station
    specs: list[str] | None = None
    if sources is None:
        sources, specs = build_sources(settings)
    for source in sources:  # the demo's return slips name returns the station expects
        if demo is not None and isinstance(source, SyntheticBenchSource) and source.on_item is None:
            source.on_item = demo.announce
            source.slip_share = DEMO_SLIP_SHARE
    reader = LabelReader(rma_pattern=st.rma_pattern, lpn_pattern=st.lpn_pattern) if st.read_labels else None
    return StationRuntime(
        sources,
        specs=specs,
        submit=submit,
        loop=loop,
        fps=settings.camera.fps,
        trigger=st,
        reference_dir=st.reference_dir or settings.storage.data_dir / "station",
        label_reader=reader,
        lines_of=lines_of,
        model_ready=model_ready,
        station_id=settings.station_id,
        live_width=st.live_width,
    )


def _submit(service: InspectionService) -> Submit:
    """Inspections go through the API's in-process service, like any other client's."""

    async def submit(frames: list[Frame], item: ItemInfo, key: str) -> Inspection:
        created = await service.create(frames, item, idempotency_key=key, source="station")
        if created.inspection is None:  # each capture has a key of its own: a replay is a capture sent twice
            raise Conflict(f"capture {key} was inspected already", code="capture_repeated")
        return created.inspection

    return submit


def _lines_of(book: ReturnBook) -> LinesOf:
    """How many live lines an RMA's expected return has: a capture of one with several waits for the operator."""

    def lines_of(rma: str) -> int:
        with book.store.db.read() as s:
            return len(returns_store.live_lines(s, rma, book.clock()))

    return lines_of


def _demo(settings: Settings, book: ReturnBook) -> DemoReturns | None:
    """The embedded demo's expected returns, on the synthetic bench only (``returns.demo``)."""
    if not settings.returns.demo:
        return None

    def put(rma: str, lines: list[dict[str, Any]]) -> None:
        book.push(
            [returns_store.Entry(rma, int(ln["line"]), returns_store.ReturnLine(**ln)) for ln in lines], source="demo"
        )

    served = serving_catalogue_file(settings.disposition.catalogue_file, settings.storage.data_dir)
    return DemoReturns(put, load_catalogue(served))  # the SKUs the station values items by


# ------------------------------------------------------------------------------ auth


VIEW_COOKIE = "inspector_station_key"
KEY_RECHECK_S = 1.0  # an open live view ends within this long of its key's revocation


def _operator(request: Request, settings: SettingsDep, store: StoreDep) -> KeyInfo:
    """The operator controls need an operator (or admin) key as X-API-Key, like the API's decision endpoint."""
    return has_role(key_for(settings, store, request.headers.get("x-api-key")), Role.OPERATOR, Role.ADMIN)


def _viewer(request: Request, settings: SettingsDep, store: StoreDep) -> KeyInfo:
    """The live view: the key as a header, or as the page's session cookie (an ``<img>`` sends no header)."""
    given = request.headers.get("x-api-key") or request.cookies.get(VIEW_COOKIE)
    return has_role(key_for(settings, store, given), Role.OPERATOR, Role.ADMIN)


def _still_viewer(settings: Settings, store: Store, given: str | None) -> bool:
    """Whether the key an open live view was let in with may still watch (not revoked, not demoted)."""
    try:
        has_role(key_for(settings, store, given), Role.OPERATOR, Role.ADMIN)
    except Problem:
        return False
    return True


# Routes take it before Runtime: the key is checked before anything about the station is told.
Operator = Annotated[KeyInfo, Depends(_operator)]
Viewer = Annotated[KeyInfo, Depends(_viewer)]


def _runtime(request: Request) -> StationRuntime:
    runtime: StationRuntime | None = request.app.state.station
    if runtime is None:
        raise HTTPException(503, "the station is not running (cameras off or still starting)")
    return runtime


Runtime = Annotated[StationRuntime, Depends(_runtime)]


def _line_of(body: dict[str, Any]) -> int | None:
    """The ``line`` of a page request: a return line number 1-999, or null."""
    raw = body.get("line")
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= 999:
        raise HTTPException(422, "line must be a whole number from 1 to 999, or null")
    return raw


def _binary(media_type: str, description: str) -> dict[str, Any]:
    """The documented success of a route that answers bytes rather than JSON."""
    return {"description": description, "content": {media_type: {"schema": {"type": "string", "format": "binary"}}}}


# --------------------------------------------------------------------------- lifespan


class _Closing:
    """Ends the live view and long polls when the server is asked to stop.

    The server waits for open responses before it shuts the app down, and a
    live view never ends by itself; so the stop signal is chained here.
    """

    def __init__(self) -> None:
        self.event = threading.Event()
        self.on_close: list[Callable[[], None]] = []
        self._previous: dict[int, Any] = {}

    def set(self) -> None:
        """End the live views and wake the long polls now."""
        self.event.set()
        for callback in list(self.on_close):
            with contextlib.suppress(Exception):
                callback()

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            prev = signal.getsignal(sig)
            self._previous[sig] = prev

            def handler(signum: int, frame: Any, prev: Any = prev) -> None:
                self.set()
                if callable(prev):
                    prev(signum, frame)

            signal.signal(sig, handler)

    def uninstall(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig, prev in self._previous.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(sig, prev)
        self._previous.clear()


def _lifespan_factory(
    settings: Settings, service: InspectionService
) -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    @contextlib.asynccontextmanager
    async def station_lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not settings.station.enabled:
            yield
            return
        loop = asyncio.get_running_loop()
        sources = getattr(app.state, "station_sources", None)  # tests and embedders may provide their own
        runtime = build_runtime(
            settings,
            submit=_submit(service),
            loop=loop,
            model_ready=service.model_ready,
            sources=sources,
            lines_of=_lines_of(service.returns),
            demo=await asyncio.to_thread(_demo, settings, service.returns),
        )
        closing: _Closing = app.state.station_closing
        closing.on_close.append(runtime.release_waiters)
        closing.install()
        app.state.station = runtime
        runtime.start(loop)
        log.info("station started with %d camera(s)", len(runtime.status()["cameras"]))
        try:
            yield
        finally:
            closing.set()
            closing.uninstall()
            closing.on_close.clear()
            await asyncio.to_thread(runtime.stop)
            app.state.station = None

    return station_lifespan


# ----------------------------------------------------------------------------- routes


def mount(app: FastAPI, settings: Settings) -> None:
    """Register the operator page and the station endpoints; start the station with the app."""
    service: InspectionService = app.state.inspections
    app.state.station = None
    app.state.station_closing = _Closing()
    if not STATIC_DIR.is_dir():  # pragma: no cover - packaging error
        raise RuntimeError(f"the operator page assets are missing: {STATIC_DIR}")
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    def operator_page() -> HTMLResponse:
        """The operator page shell, in the station's language before any key (it asks for the operator key itself)."""
        html = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
        html = html.replace('<html lang="en">', f'<html lang="{settings.station.language}">', 1)
        return HTMLResponse(html, headers={"Cache-Control": "no-cache"})

    router = APIRouter(prefix="/station", tags=["station"])

    def closing() -> bool:
        flag: _Closing = app.state.station_closing
        return flag.event.is_set()

    def page_settings() -> dict[str, Any]:
        """What the page says things in: the station's language (the operator may switch) and the policy's currency."""
        slot = app.state.pipeline_slot
        policy = getattr(slot.pipeline, "policy", None)  # a pipeline without a policy (a stand-in) names no currency
        currency = getattr(policy, "currency", None)
        return {"language": settings.station.language, "currency": currency}

    @router.get(
        "/stream.mjpg",
        summary="Live view (MJPEG)",
        response_class=StreamingResponse,
        responses={
            200: _binary(f"multipart/x-mixed-replace; boundary={BOUNDARY}", "JPEG frames"),
            **responses(401, 403, 503),
        },
    )
    async def stream(request: Request, _op: Viewer, runtime: Runtime) -> StreamingResponse:
        """The live view as multipart JPEG; the page's ``<img>`` authenticates with the session cookie.

        The key is checked again every ``KEY_RECHECK_S`` while the stream is open: revoking it ends the stream.
        """
        given = request.headers.get("x-api-key") or request.cookies.get(VIEW_COOKIE)
        store: Store = request.app.state.store

        async def frames() -> AsyncIterator[bytes]:
            last = -1
            recheck = time.monotonic() + KEY_RECHECK_S
            while not runtime.stopped and not closing():
                if time.monotonic() >= recheck:
                    if not await asyncio.to_thread(_still_viewer, settings, store, given):
                        return
                    recheck = time.monotonic() + KEY_RECHECK_S
                seq, jpeg = runtime.latest_jpeg()
                if jpeg is not None and seq != last:
                    last = seq
                    head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                    yield head.encode("ascii") + jpeg + b"\r\n"
                await asyncio.sleep(0.01)

        return StreamingResponse(
            frames(),
            media_type=f"multipart/x-mixed-replace; boundary={BOUNDARY}",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    @router.get(
        "/frame.jpg",
        summary="The newest live-view frame",
        response_class=Response,
        responses={200: _binary("image/jpeg", "the frame"), **responses(401, 403, 503)},
    )
    def frame(_op: Viewer, runtime: Runtime) -> Response:
        _, jpeg = runtime.latest_jpeg()
        if jpeg is None:
            raise HTTPException(503, "no frame yet")
        return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    @router.post(
        "/session",
        summary="Let this browser's live view in: the operator key as an HttpOnly cookie",
        status_code=204,
        response_class=Response,
        responses=responses(401, 403),
    )
    def open_session(request: Request, _op: Operator) -> Response:
        """An ``<img>`` cannot send X-API-Key, so the page trades its checked key for a same-site cookie."""
        out = Response(status_code=204)
        out.set_cookie(
            VIEW_COOKIE,
            request.headers.get("x-api-key", ""),
            httponly=True,
            samesite="strict",
            path="/station",
            secure=request.url.scheme == "https",
        )
        return out

    @router.delete(
        "/session", summary="Forget this browser's live-view cookie", status_code=204, response_class=Response
    )
    def close_session() -> Response:
        out = Response(status_code=204)
        out.delete_cookie(VIEW_COOKIE, path="/station")
        return out

    @router.get(
        "/status",
        summary="Cameras, trigger, shift check, model; long poll with after=version",
        responses=responses(401, 403, 422),
    )
    async def status(
        request: Request,
        _op: Operator,
        after: Annotated[int | None, Query(ge=0)] = None,
        wait: Annotated[float, Query(ge=0, le=30)] = 20.0,
    ) -> dict[str, Any]:
        runtime: StationRuntime | None = request.app.state.station
        if runtime is None:
            return {
                "version": 0,
                "running": False,
                "camera_ready": False,
                "model_ready": service.model_ready(),
                "message": "the station is off" if not settings.station.enabled else "the station is starting",
                "state": "off" if not settings.station.enabled else "starting",
                "storage": await asyncio.to_thread(service.storage_check),
                **page_settings(),
            }
        if after is not None and not closing():
            await runtime.wait_for_change(after, min(wait, 25.0))
        out = runtime.status()
        out["running"] = not runtime.stopped
        out["storage"] = await asyncio.to_thread(service.storage_check)  # a full or read-only disk: a banner
        out.update(page_settings())
        return out

    @router.get(
        "/captures/{n}.jpg",
        summary="View n of the last capture",
        response_class=Response,
        responses={200: _binary("image/jpeg", "the view"), **responses(401, 403, 404, 422, 503)},
    )
    def capture_image(n: int, _op: Operator, runtime: Runtime) -> Response:
        jpeg = runtime.capture_jpeg(n)
        if jpeg is None:
            raise HTTPException(404, f"no view {n} in the last capture")
        return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    @router.post(
        "/capture",
        status_code=202,
        summary="Manual capture: inspect what is on the bench now",
        responses=responses(401, 403, 409, 503),
    )
    def capture(_op: Operator, runtime: Runtime) -> dict[str, Any]:
        if not runtime.camera_ready and not any(c["healthy"] for c in runtime.status()["cameras"]):
            raise HTTPException(409, "no camera is delivering frames")
        runtime.request_capture()
        return {"accepted": True}

    @router.post(
        "/item",
        summary="RMA / LPN typed or scanned at the page (and the return line), for the next capture",
        responses=responses(400, 401, 403, 422, 503),
    )
    def item(
        _op: Operator,
        runtime: Runtime,
        body: Annotated[dict[str, Any], Body(examples=[{"rma": "RMA-2024-000123", "lpn": None, "line": None}])],
    ) -> dict[str, Any]:
        values: dict[str, str | None] = {}
        for key in ("rma", "lpn"):
            raw = body.get(key)
            if raw is not None and not isinstance(raw, str):
                raise HTTPException(422, f"{key} must be a string or null")
            value = (raw or "").strip()
            if len(value) > 64 or any(not (c.isalnum() or c in "-_./:") for c in value):
                raise HTTPException(422, f"{key} must be at most 64 letters, digits or - _ . / :")
            values[key] = value or None
        line = _line_of(body)
        runtime.set_item(values["rma"], values["lpn"], line)
        return {"rma": values["rma"], "lpn": values["lpn"], "line": line}

    @router.post(
        "/line",
        summary="The return line the operator picked (null: go on without one)",
        responses=responses(401, 403, 422, 503),
    )
    def line(
        _op: Operator, runtime: Runtime, body: Annotated[dict[str, Any], Body(examples=[{"line": 2}])]
    ) -> dict[str, Any]:
        """For the capture waiting for it ("capture"), else for the typed RMA's next capture ("next")."""
        picked = _line_of(body)
        return {"line": picked, "applies_to": runtime.choose_line(picked)}

    @router.post(
        "/reference",
        status_code=202,
        summary="Store the empty bench as seen now as the reference",
        responses=responses(401, 403, 409, 503),
    )
    def reference(_op: Operator, runtime: Runtime) -> JSONResponse:
        if not runtime.store_reference():
            raise HTTPException(409, "take the item off the bench first: the reference is the empty bench")
        return JSONResponse({"accepted": True}, status_code=202)

    @router.post(
        "/shift-check",
        status_code=202,
        summary="Check the empty bench against its reference again",
        responses=responses(401, 403, 503),
    )
    def shift_check(_op: Operator, runtime: Runtime) -> dict[str, Any]:
        runtime.request_shift_check()
        return {"accepted": True}

    app.include_router(router)
    app.state.background.append(_lifespan_factory(settings, service))
