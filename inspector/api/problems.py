"""RFC 9457 problem details for every error the API returns.

Every 4xx and 5xx is ``application/problem+json`` with ``type``, ``title``,
``status``, ``detail``, ``instance`` and a stable machine-readable ``code``, so
a WMS client can branch on ``code`` and show ``detail`` to a person. The service
below raises the station's own errors (:mod:`inspector.errors`); this is the one
place that gives each kind its HTTP status. :class:`Problem` is for what only
HTTP knows about (keys, body types).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from inspector import errors
from inspector.store.faults import storage_fault

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:inspector:problem:"
log = logging.getLogger("inspector.api")

_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    410: "gone",
    413: "content_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
    507: "storage_full",
}


class Problem(Exception):
    """An error with a status, a stable code and a sentence for people."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        code: str | None = None,
        title: str | None = None,
        headers: Mapping[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.code = code or _CODES.get(status, "error")
        self.title = title or HTTPStatus(status).phrase
        self.headers = dict(headers or {})
        self.extensions = extensions


# The status of each kind of domain error; a subclass takes the entry of its nearest listed ancestor.
_STATUS: dict[type[errors.InspectorError], int] = {
    errors.Unsupported: 415,
    errors.TooLarge: 413,
    errors.InvalidInput: 422,
    errors.Gone: 410,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.Busy: 503,
    errors.Unavailable: 503,
    errors.StorageFull: 507,
    errors.Broken: 500,
}


def status_of(exc: errors.InspectorError) -> int:
    """The HTTP status that answers a domain error."""
    for kind in type(exc).__mro__:
        if kind in _STATUS:
            return _STATUS[kind]
    return 500


def problem_body(
    status: int, detail: str, *, code: str, title: str | None = None, instance: str | None = None, **extensions: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + code,
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if instance:
        body["instance"] = instance
    body.update(extensions)
    return body


def problem_response(
    status: int,
    detail: str,
    *,
    code: str | None = None,
    title: str | None = None,
    instance: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    body = problem_body(
        status, detail, code=code or _CODES.get(status, "error"), title=title, instance=instance, **extensions
    )
    return JSONResponse(body, status_code=status, headers=dict(headers or {}), media_type=PROBLEM_JSON)


def _plain(value: Any) -> Any:
    """Make validation error context JSON-safe (it may hold exceptions, bytes or upload objects)."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


def validation_errors(errors: Any) -> list[dict[str, Any]]:
    out = []
    for e in errors:
        loc = [p for p in e.get("loc", ()) if p not in ("body",)] or list(e.get("loc", ()))
        out.append({"loc": _plain(loc), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))})
    return out


def _describe(errors: list[dict[str, Any]]) -> str:
    parts = []
    for e in errors[:5]:
        where = ".".join(str(p) for p in e["loc"])
        parts.append(f"{where}: {e['msg']}" if where else e["msg"])
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return "; ".join(parts) + more


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into problem+json."""

    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Problem)
        return problem_response(
            exc.status,
            exc.detail,
            code=exc.code,
            title=exc.title,
            instance=request.url.path,
            headers=exc.headers,
            **exc.extensions,
        )

    async def on_domain(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, errors.InspectorError)
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
        return problem_response(
            status_of(exc), exc.message, code=exc.code, instance=request.url.path, headers=headers, **exc.details
        )

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        status = exc.status_code
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(status).description
        if status == 404 and detail == "Not Found":
            detail = f"nothing at {request.url.path}"
        elif status == 405:
            detail = f"{request.method} is not allowed on {request.url.path}"
        return problem_response(
            status,
            detail,
            code=getattr(exc, "code", None) or _CODES.get(status, "error"),
            instance=request.url.path,
            headers=exc.headers,
        )

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = validation_errors(exc.errors())
        return problem_response(
            422,
            _describe(errors) or "the request is not valid",
            code="invalid_request",
            instance=request.url.path,
            errors=errors,
        )

    async def on_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(
            500, "the station hit an internal error; it is logged", code="internal_error", instance=request.url.path
        )

    async def on_storage(request: Request, exc: Exception) -> JSONResponse:
        """A full or read-only disk, a database out of reach, on any route: 507 or 503, not a 500."""
        store = getattr(request.app.state, "store", None)
        fault = storage_fault(exc, store.disk_paths() if store is not None else ())
        if fault is None:
            return await on_error(request, exc)
        log.warning("storage fault on %s %s: %s", request.method, request.url.path, exc)
        return await on_domain(request, fault)

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(errors.InspectorError, on_domain)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(SQLAlchemyError, on_storage)
    app.add_exception_handler(OSError, on_storage)
    app.add_exception_handler(Exception, on_error)


class TooLarge(StarletteHTTPException):
    """The request body is over the upload limit."""

    code = "content_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is over the limit of {limit / 1e6:g} MB")


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    s: {
        "description": HTTPStatus(s).phrase,
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    for s in (400, 401, 403, 404, 409, 410, 413, 415, 422, 503, 507)
}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The documented problem responses of a route."""
    return {s: PROBLEM_RESPONSES[s] for s in statuses}


def document_defaults(schema: dict[str, Any]) -> None:
    """Make the schema say what every route really answers on malformed requests.

    FastAPI documents its validation error as plain JSON, but the handlers above
    answer problem+json; and a body that cannot be parsed at all (not UTF-8, broken
    multipart) is a 400 on every route that takes one.
    """
    for ops in schema.get("paths", {}).values():
        for op in ops.values():
            if not isinstance(op, dict) or "responses" not in op:
                continue
            answers = op["responses"]
            if "422" in answers and PROBLEM_JSON not in answers["422"].get("content", {}):
                answers["422"] = dict(PROBLEM_RESPONSES[422])
            if "requestBody" in op and "400" not in answers:
                answers["400"] = dict(PROBLEM_RESPONSES[400])
    components = schema.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):  # FastAPI's error models, now unused
        if name in components and f'"#/components/schemas/{name}"' not in json.dumps(schema):
            del components[name]
