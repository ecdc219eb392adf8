"""Expected returns: the WMS says what is coming back (one RMA, or many lines at once); the bench fills items from it.

An RMA is a path segment of any printable text but ``/`` (``{rma:path}``, so an RMA
holding one is a clear ``invalid_rma`` rather than a route that does not exist).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

import anyio
from fastapi import APIRouter, Depends, Path, Query, Request, Response

from inspector.api.deps import AnyKey, ServiceDep, require
from inspector.api.guards import strict_json
from inspector.api.problems import PROBLEM_JSON, Problem, responses
from inspector.api.returns_schemas import BulkOut, ReturnIn, ReturnOut, entry_of
from inspector.errors import InvalidInput
from inspector.store.keys import KeyInfo, Role
from inspector.store.returns import Entry, StoredLine, check_rma

router = APIRouter(prefix="/v1/returns", tags=["returns"])

WmsKey = Annotated[KeyInfo, Depends(require(Role.WMS, Role.ADMIN))]
Rma = Annotated[str, Path(description="the RMA: up to 200 printable characters, no '/', no padding")]
NDJSON = ("application/x-ndjson", "application/jsonl", "application/jsonlines", "application/json-seq")

LOOKUP_FAILED = {
    "description": "lookup=1 and the WMS could not be asked (down, slow, or an answer that cannot be used)",
    "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
}
BULK_BODY = {
    "requestBody": {
        "required": True,
        "description": "a JSON array of lines, or JSON lines (application/x-ndjson), each "
        '{"rma": ..., "line": 1, "lpn", "sku", "category", "price", "reason", "days_since_sale", "flags", ...}',
        "content": {
            "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
            "application/x-ndjson": {"schema": {"type": "string"}},
        },
    }
}


@router.put(
    "/{rma:path}",
    response_model=ReturnOut,
    summary="Announce one return (replaces its lines)",
    responses={201: {"model": ReturnOut, "description": "a return not known before"}, **responses(401, 403, 422)},
)
async def put_return(rma: Rma, body: ReturnIn, _key: WmsKey, service: ServiceDep, response: Response) -> Any:
    """Store the lines of ``rma``, replacing those stored before; 201 when it was not known, else 200.

    A line without ``line`` is numbered by its place in the list. The same content again changes
    nothing. It is forgotten ``returns.expire_days`` after this write unless ``expires_at`` says when.
    """
    check_rma(rma)
    if body.rma is not None and body.rma != rma:
        raise InvalidInput(f"the body names RMA {body.rma!r}, the URL {rma!r}", code="rma_mismatch")
    known, stored = await anyio.to_thread.run_sync(
        lambda: service.returns.put(rma, body.lines, expires_at=body.expires_at)
    )
    response.status_code = 200 if known else 201
    response.headers["Location"] = f"/v1/returns/{quote(rma, safe='')}"  # a header is ASCII; an RMA need not be
    return stored


@router.post(
    "",
    response_model=BulkOut,
    summary="Announce many return lines at once",
    responses=responses(401, 403, 413, 415, 422),
    openapi_extra=BULK_BODY,
)
async def push_returns(request: Request, _key: WmsKey, service: ServiceDep) -> dict[str, Any]:
    """Upsert each line by RMA + line (``line`` defaults to 1): ``created``, ``updated`` or ``unchanged``.

    Lines of an RMA that an entry does not name stay (``PUT`` replaces a whole return). An entry
    that cannot be stored is listed in ``bad`` with its index and why; every other one is stored.
    The body may be up to ``server.max_bulk_mb`` (8 MB).
    """
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind and kind != "application/json" and kind not in NDJSON:
        raise Problem(
            415, f"send a JSON array or JSON lines (application/x-ndjson), not {kind}", code="unsupported_media_type"
        )
    raw = await request.body()
    entries, bad = await anyio.to_thread.run_sync(_entries, raw, kind in NDJSON, service.returns.future)
    outcomes = await anyio.to_thread.run_sync(lambda: service.returns.push([e for _, e in entries]))
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    for outcome in outcomes:
        counts[outcome] += 1
    return {**counts, "bad": bad}


def _entries(
    raw: bytes, lines: bool, future: Callable[[datetime | None], datetime | None]
) -> tuple[list[tuple[int, Entry]], list[dict[str, Any]]]:
    """The good entries of a bulk body (with their index) and why each bad one is bad (``future``: the expiry check)."""
    if lines:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Problem(422, f"the body is not UTF-8: {exc.reason} at byte {exc.start}", code="bad_json") from None
        items: list[Any] = []
        for n, chunk in enumerate(c for c in text.splitlines() if c.strip()):
            try:
                items.append(strict_json(chunk, where=f"entry {n}"))
            except Problem as exc:
                items.append(InvalidInput(exc.detail, code=exc.code))
            except ValueError as exc:
                items.append(InvalidInput(f"not JSON: {exc}", code="bad_json"))
    else:
        try:
            parsed = strict_json(raw)
        except json.JSONDecodeError as exc:
            raise Problem(422, f"the body is not JSON: {exc.msg} at character {exc.pos}", code="bad_json") from None
        except ValueError as exc:
            raise Problem(422, f"the body is not JSON: {exc}", code="bad_json") from None
        if not isinstance(parsed, list):
            raise Problem(422, "send a JSON array of lines, or JSON lines (application/x-ndjson)", code="bad_json")
        items = parsed
    good: list[tuple[int, Entry]] = []
    bad: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        try:
            if isinstance(item, InvalidInput):
                raise item
            found = entry_of(item)
            future(found.expires_at)
            good.append((index, found))
        except InvalidInput as exc:
            where = item if isinstance(item, dict) else {}
            rma, line = where.get("rma"), where.get("line", 1)
            bad.append(
                {
                    "index": index,
                    "rma": rma if isinstance(rma, str) else None,
                    "line": line if isinstance(line, int) and not isinstance(line, bool) else None,
                    "code": exc.code,
                    "error": exc.message,
                }
            )
    return good, bad


@router.get(
    "/{rma:path}",
    response_model=ReturnOut,
    summary="Read one expected return",
    responses={**responses(401, 403, 404, 422), 502: LOOKUP_FAILED},
)
async def get_return(
    rma: Rma,
    _key: AnyKey,
    service: ServiceDep,
    lookup: Annotated[
        bool, Query(description="1: ask the WMS (returns.lookup_url) when the station does not know it")
    ] = False,
) -> Any:
    """Its live lines, when it expires, who wrote it, and the inspections matched to it.

    ``404 return_unknown`` when the station has no live line of it (and, with ``lookup=1``, the WMS
    does not know it either); ``502 lookup_failed`` when the WMS was to be asked and could not be.
    """
    found, failure = await anyio.to_thread.run_sync(lambda: service.returns.get(rma, lookup=lookup))
    if failure is not None:
        raise Problem(502, failure, code="lookup_failed")
    if found is None:
        raise Problem(404, f"RMA {rma} is not among the expected returns", code="return_unknown")
    return found


@router.get(
    "",
    response_model=StoredLine,
    summary="Find the expected line of an LPN",
    responses=responses(401, 403, 404, 422),
)
async def find_line(
    _key: AnyKey,
    service: ServiceDep,
    lpn: Annotated[str, Query(min_length=1, max_length=200, description="the item's licence plate number")],
) -> Any:
    """The live line that carries ``lpn``, with its ``rma``; ``404 return_unknown`` when none does."""
    found = await anyio.to_thread.run_sync(service.returns.by_lpn, lpn)
    if found is None:
        raise Problem(404, f"LPN {lpn} is on no expected return", code="return_unknown")
    return found


@router.delete(
    "/{rma:path}",
    status_code=204,
    summary="Forget an expected return",
    responses=responses(401, 403, 404, 422),
)
async def delete_return(rma: Rma, _key: WmsKey, service: ServiceDep) -> Response:
    """Every line of it goes; the inspections matched to it keep what they were filled with."""
    if not await anyio.to_thread.run_sync(service.returns.forget, rma):
        raise Problem(404, f"RMA {rma} is not among the expected returns", code="return_unknown")
    return Response(status_code=204)
