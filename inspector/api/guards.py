"""The edge of the API: what is settled before a route reads a byte of the body, and the headers of every answer.

A client without a live key is answered 401 before its body is read, so an anonymous
15 MB upload costs the station nothing. A body is then read up to the limit of its kind
(JSON: ``server.max_json_kb``; uploads: ``server.max_upload_mb``; a bulk push of expected returns:
``server.max_bulk_mb``), and a JSON body is
parsed here once with non-finite numbers and deep nesting refused (422), so neither
reaches a route, the store or a webhook. Role checks stay with the routes.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

import anyio
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from inspector.api.problems import Problem, TooLarge, problem_response
from inspector.config import Settings
from inspector.store import Store
from inspector.store.keys import KeyInfo, hash_key, lookup

log = logging.getLogger("inspector.api")

# The interactive documentation; served without a key unless ``server.public_docs`` is off.
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
# Deeper JSON than this is refused: no request of the API nests more than a few levels.
MAX_JSON_DEPTH = 32
KEY_CACHE_S = 2.0

# The operator page loads everything from this origin (the favicon is a data: URL, views are drawn from blobs).
PAGE_CSP = (
    "default-src 'self'; img-src 'self' data: blob:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
# FastAPI's Swagger UI and ReDoc pages load their scripts and styles from a CDN and start with an inline script.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    "font-src 'self' https://fonts.gstatic.com; img-src 'self' data: blob: https://fastapi.tiangolo.com "
    "https://cdn.redoc.ly; worker-src 'self' blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


def unauthenticated(*, missing: bool) -> Problem:
    """The 401 for a missing, or an unknown or revoked, key (the same wherever the key is checked)."""
    headers = {"WWW-Authenticate": 'ApiKey header="X-API-Key"'}
    if missing:
        return Problem(
            401, "this endpoint needs an API key in the X-API-Key header", code="missing_api_key", headers=headers
        )
    return Problem(401, "the API key is unknown or revoked", code="invalid_api_key", headers=headers)


class KeyCache:
    """Live keys by digest for a few seconds: the edge check costs no database read per request.

    Only live keys are kept, so a key created a moment ago is seen at once; a revoked one
    passes the edge for at most ``ttl_s`` and is still refused by the route's own check.
    """

    def __init__(self, store: Store, ttl_s: float = KEY_CACHE_S, size: int = 1024) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self.size = size
        self._live: dict[str, tuple[float, KeyInfo]] = {}
        self._lock = threading.Lock()

    def live(self, given: str) -> KeyInfo | None:
        """The live key ``given`` names, or None."""
        digest = hash_key(given)
        now = time.monotonic()
        with self._lock:
            hit = self._live.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        with self.store.db.read() as s:
            info = lookup(s, given)
        with self._lock:
            if info is None:
                self._live.pop(digest, None)
                return None
            if len(self._live) >= self.size:
                self._live.clear()
            self._live[digest] = (now + self.ttl_s, info)
        return info


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def given_key(scope: Scope) -> str | None:
    """The key a request carries: X-API-Key, or a bearer token (Prometheus)."""
    key = _header(scope, b"x-api-key")
    if key:
        return key
    auth = _header(scope, b"authorization") or ""
    scheme, _, token = auth.partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


def carries_body(scope: Scope) -> bool:
    """Whether the request announces a body (a length above zero, or a chunked one)."""
    length = _header(scope, b"content-length")
    if length is not None:
        return length.strip() not in ("", "0")
    return _header(scope, b"transfer-encoding") is not None


def _content_type(scope: Scope) -> str:
    return (_header(scope, b"content-type") or "").split(";", 1)[0].strip().lower()


def _parsed_as_json(kind: str) -> bool:
    """The bodies FastAPI reads as JSON: no content type, application/json or application/*+json."""
    return not kind or kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json"))


async def answer(scope: Scope, send: Send, problem: Problem) -> None:
    """Send ``problem`` without reading the request body, and close the connection (its body is unread)."""
    response = problem_response(
        problem.status,
        problem.detail,
        code=problem.code,
        title=problem.title,
        instance=scope.get("path"),
        headers={**problem.headers, "connection": "close"},
        **problem.extensions,
    )

    async def no_body() -> Message:
        return {"type": "http.disconnect"}

    await response(scope, no_body, send)


# ----------------------------------------------------------------------- JSON


class _NonFinite(Exception):
    """A JSON number that is not a finite float (NaN, Infinity, 1e999)."""


def _refuse_constant(name: str) -> Any:
    raise _NonFinite(name)


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise _NonFinite(text)
    return value


def depth(value: Any) -> int:
    """How deeply ``value`` nests arrays and objects (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is not None:
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in children)
    return deepest


def strict_json(raw: bytes | str, *, where: str = "the body") -> Any:
    """``raw`` parsed as JSON; 422 for a non-finite number or deep nesting, ValueError when it is not JSON."""
    deep = Problem(422, f"{where} nests deeper than {MAX_JSON_DEPTH} levels", code="too_deeply_nested")
    try:
        value = json.loads(raw, parse_constant=_refuse_constant, parse_float=_finite)
    except _NonFinite as exc:
        raise Problem(422, f"{where} holds {exc}: JSON numbers must be finite", code="non_finite_number") from None
    except RecursionError:
        raise deep from None
    if depth(value) > MAX_JSON_DEPTH:
        raise deep
    return value


def _json_problem(body: bytes) -> Problem | None:
    """Why ``body`` is refused here; None when it is fine, or not JSON at all (the route answers that as always)."""
    try:
        strict_json(body)
    except Problem as problem:
        return problem
    except ValueError:
        pass
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that hands over the body read already, then the client's own messages (disconnect)."""
    sent = False

    async def again() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again


# ----------------------------------------------------------------- middleware


class KeyFirstMiddleware:
    """Answer 401 before the body is read when a request with a body (or the docs, when not public) has no live key."""

    def __init__(self, app: ASGIApp, settings: Settings, keys: KeyCache) -> None:
        self.app = app
        self.settings = settings
        self.keys = keys

    def _needs_key(self, scope: Scope) -> bool:
        if not self.settings.server.require_auth:
            return False
        if scope.get("path") in DOCS_PATHS:
            return not self.settings.server.public_docs
        return carries_body(scope)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._needs_key(scope):
            await self.app(scope, receive, send)
            return
        given = given_key(scope)
        try:
            live = given is not None and await anyio.to_thread.run_sync(self.keys.live, given) is not None
        except Exception as exc:  # the store is down: the route's own key check answers that
            log.debug("the edge key check could not read the store: %s", exc)
            live = True
        if live:
            await self.app(scope, receive, send)
            return
        await answer(scope, send, unauthenticated(missing=not given))


class BodyLimitMiddleware:
    """Refuse bodies over the limit of their kind, by Content-Length up front or by counting as they stream in.

    A body FastAPI would parse as JSON is read here (it is small) and checked by :func:`strict_json`
    first; uploads (multipart, or any other type, which the routes refuse) stream through to the route.
    ``bulk``: POST paths with a limit of their own (a bulk push is larger than any JSON request); their
    body streams through counted, and the route parses it with :func:`strict_json` itself.
    """

    def __init__(self, app: ASGIApp, upload_bytes: int, json_bytes: int, bulk: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.upload_bytes = upload_bytes
        self.json_bytes = json_bytes
        self.bulk = dict(bulk or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not carries_body(scope):
            await self.app(scope, receive, send)
            return
        kind = _content_type(scope)
        bulk = self.bulk.get(scope.get("path", "")) if scope.get("method") == "POST" else None
        as_json = _parsed_as_json(kind) and bulk is None
        limit = bulk if bulk is not None else self.json_bytes if as_json else self.upload_bytes
        try:
            declared = int(_header(scope, b"content-length") or 0)
        except ValueError:
            declared = 0
        if declared > limit:
            await answer(scope, send, too_large(limit))
            return
        if not as_json:
            await self.app(scope, _counted(receive, limit), send)
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            body += message.get("body", b"")
            more = bool(message.get("more_body", False))
            if len(body) > limit:
                await answer(scope, send, too_large(limit))
                return
        problem = _json_problem(bytes(body))
        if problem is not None:
            await answer(scope, send, problem)
            return
        await self.app(scope, _replay(bytes(body), receive), send)


def too_large(limit: int) -> Problem:
    """The 413 for a body over ``limit`` bytes."""
    size = f"{limit / 1e6:g} MB" if limit >= 1_000_000 else f"{limit / 1e3:g} KB"
    return Problem(413, f"the request body is over the limit of {size}", code="content_too_large")


def _counted(receive: Receive, limit: int) -> Receive:
    """A receive that stops a streamed body as soon as it passes ``limit``."""
    seen = 0

    async def counted() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise TooLarge(limit)
        return message

    return counted


class SecurityHeadersMiddleware:
    """``nosniff``, ``DENY`` framing, no referrer and a Content-Security-Policy on every answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = DOCS_CSP if scope.get("path") in DOCS_PATHS else PAGE_CSP

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in {**SECURITY_HEADERS, "content-security-policy": csp}.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, with_headers)
