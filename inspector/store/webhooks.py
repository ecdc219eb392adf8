"""Webhook endpoints, the transactional outbox and Standard Webhooks signing.

An event row and one delivery row per subscribed endpoint are added in the same
transaction as the change they announce, so an event is never lost and never
announces something that did not commit. Delivery is at least once: receivers
deduplicate on ``webhook-id``.

A receiver that keeps failing is disabled by the station (``disabled_reason``
says why; 410 Gone disables at once): its pending deliveries are kept, so
re-enabling it delivers the backlog. An endpoint removed by an admin is
disabled without a reason and its pending deliveries are cancelled.

Receivers on this host's networks (loopback, link-local, private, multicast,
unspecified) are refused unless ``webhooks.allow_private_urls`` is set: the
last error of a delivery would otherwise probe the station's own network.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import ipaddress
import json
import secrets
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from inspector.store.models import DeliveryRow, OutboxRow, WebhookEndpointRow
from inspector.types import utcnow

EVENT_TYPES: tuple[str, ...] = ("inspection.completed", "inspection.decided", "webhook.disabled")
SECRET_PREFIX = "whsec_"  # noqa: S105 - the Standard Webhooks prefix, not a secret


# ------------------------------------------------------------------ signing


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def secret_bytes(secret: str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret (Standard Webhooks)."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"a webhook secret starts with {SECRET_PREFIX!r}")
    try:
        raw = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("a webhook secret is 'whsec_' followed by base64") from exc
    if not 24 <= len(raw) <= 64:
        raise ValueError("a webhook secret holds 24 to 64 random bytes")
    return raw


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``."""
    mac = hmac.new(secret_bytes(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")


def shown_url(url: str) -> str:
    """A receiver's URL fit for logs and events: no query (it may carry a token), no user info."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def signed_headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }


def verify(
    secret: str, headers: dict[str, str], body: bytes, *, tolerance_s: int = 300, now: int | None = None
) -> bool:
    """Check a delivery as a receiver would (used by tests and by receivers written in Python)."""
    import time

    try:
        msg_id = headers["webhook-id"]
        ts = int(headers["webhook-timestamp"])
        sigs = headers["webhook-signature"].split()
    except (KeyError, ValueError):
        return False
    if abs((now if now is not None else int(time.time())) - ts) > tolerance_s:
        return False
    expected = sign(secret, msg_id, ts, body)
    return any(hmac.compare_digest(expected, s) for s in sigs)


# ---------------------------------------------------------------- endpoints


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: str
    url: str
    events: tuple[str, ...]
    description: str
    created_at: datetime
    disabled_at: datetime | None
    failing_since: datetime | None = None
    disabled_reason: str | None = None

    @classmethod
    def of(cls, row: WebhookEndpointRow) -> Endpoint:
        return cls(
            id=row.id,
            url=row.url,
            events=tuple(json.loads(row.events)),
            description=row.description,
            created_at=row.created_at,
            disabled_at=row.disabled_at,
            failing_since=row.failing_since,
            disabled_reason=row.disabled_reason,
        )


def check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("a webhook URL is an absolute http or https URL")
    if parts.username or parts.password:
        raise ValueError("a webhook URL must not carry credentials; use the signing secret")
    return url


# ------------------------------------------------------------- destinations

Resolve = Callable[[str, int], list[str]]
"""A host name and port -> the addresses it resolves to (``socket.getaddrinfo`` by default)."""


def resolve_host(host: str, port: int) -> list[str]:
    with contextlib.suppress(ValueError):
        return [str(ipaddress.ip_address(host))]  # an address literal needs no lookup
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def refused_address(address: str) -> str | None:
    """Why a receiver may not be at ``address`` without ``allow_private_urls``; None when it may."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is loopback too
    kinds = (
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("unspecified", ip.is_unspecified),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
        ("not globally routable", not ip.is_global),
    )
    return next((kind for kind, hit in kinds if hit), None)


def url_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)


def check_destination(url: str, *, resolve: Resolve = resolve_host) -> None:
    """Refuse a receiver whose host is, or resolves to, an address of this host's networks (ValueError)."""
    host, port = url_port(check_url(url))
    try:
        addresses = resolve(host, port)
    except OSError as exc:
        raise ValueError(f"the webhook host {host} does not resolve: {exc}") from exc
    if not addresses:
        raise ValueError(f"the webhook host {host} does not resolve")
    for address in addresses:
        kind = refused_address(address)
        if kind is not None:
            raise ValueError(
                f"a webhook URL on a {kind} address ({host} is {address}) is refused; "
                "set webhooks.allow_private_urls to allow receivers on the station's own networks"
            )


def add_endpoint(
    session: Session, url: str, events: Sequence[str], *, secret: str | None = None, description: str = ""
) -> tuple[Endpoint, str]:
    """Register a receiver; returns it and its signing secret (generated when not given)."""
    check_url(url)
    unknown = set(events) - set(EVENT_TYPES)
    if unknown or not events:
        raise ValueError(f"events must be some of {', '.join(EVENT_TYPES)}")
    secret = secret or new_secret()
    secret_bytes(secret)
    row = WebhookEndpointRow(
        id="wh_" + secrets.token_hex(8),
        url=url,
        secret=secret,
        events=json.dumps(sorted(set(events))),
        description=description,
        created_at=utcnow(),
        disabled_at=None,
    )
    session.add(row)
    session.flush()
    return Endpoint.of(row), secret


def _removed(row: WebhookEndpointRow) -> bool:
    """Removed by an admin: disabled without a reason (the station always gives one)."""
    return row.disabled_at is not None and row.disabled_reason is None


def list_endpoints(session: Session, *, include_disabled: bool = False) -> list[Endpoint]:
    """Live endpoints; with ``include_disabled`` also those the station disabled (never removed ones)."""
    q = select(WebhookEndpointRow).order_by(WebhookEndpointRow.created_at, WebhookEndpointRow.id)
    if include_disabled:
        q = q.where(or_(WebhookEndpointRow.disabled_at.is_(None), WebhookEndpointRow.disabled_reason.is_not(None)))
    else:
        q = q.where(WebhookEndpointRow.disabled_at.is_(None))
    return [Endpoint.of(r) for r in session.scalars(q)]


def get_endpoint(session: Session, endpoint_id: str) -> Endpoint | None:
    row = session.get(WebhookEndpointRow, endpoint_id)
    return None if row is None or _removed(row) else Endpoint.of(row)


def disable_endpoint(session: Session, endpoint_id: str) -> bool:
    """Remove an endpoint: no more deliveries, pending ones cancelled, history kept. False when already removed."""
    row = session.get(WebhookEndpointRow, endpoint_id)
    if row is None or _removed(row):
        return False
    row.disabled_at = row.disabled_at or utcnow()
    row.disabled_reason = None
    session.execute(
        update(DeliveryRow)
        .where(DeliveryRow.endpoint_id == endpoint_id, DeliveryRow.status == "pending")
        .values(status="cancelled", leased_until=None)
    )
    return True


def enable_endpoint(session: Session, endpoint_id: str, *, now: datetime | None = None) -> Endpoint | None:
    """Deliver again to an endpoint the station disabled: its kept deliveries are due at once.

    None when there is no such endpoint or an admin removed it (register it again).
    """
    row = session.get(WebhookEndpointRow, endpoint_id)
    if row is None or _removed(row):
        return None
    now = now or utcnow()
    was_disabled = row.disabled_at is not None
    row.disabled_at = row.disabled_reason = row.failing_since = None
    session.flush()  # the endpoint row first, then its deliveries: the order every writer locks them in
    if was_disabled:
        session.execute(
            update(DeliveryRow)
            .where(DeliveryRow.endpoint_id == endpoint_id, DeliveryRow.status == "pending")
            .values(next_attempt_at=now, leased_until=None, leased_by=None)
        )
    return Endpoint.of(row)


def _track_endpoint(
    session: Session,
    endpoint_id: str,
    *,
    ok: bool,
    gone: bool,
    error: str | None,
    now: datetime,
    disable_after: timedelta,
) -> None:
    """Mark the endpoint failing since its first failure after a success; disable it once that lasts too long."""
    ep = session.get(WebhookEndpointRow, endpoint_id, with_for_update=True)
    if ep is None or ep.disabled_at is not None:
        return
    if ok:
        ep.failing_since = None
        return
    ep.failing_since = ep.failing_since or now
    if gone:
        reason = "the receiver answered 410 Gone (unsubscribe)"
    elif now - ep.failing_since >= disable_after:
        days = disable_after.total_seconds() / 86400
        reason = f"every attempt failed for {days:g} days (webhooks.disable_after_days); last error: {error}"
    else:
        return
    ep.disabled_at = now
    ep.disabled_reason = reason[:2000]
    session.flush()  # the event below goes to the other live endpoints only
    add_event(
        session,
        "webhook.disabled",
        {
            "endpoint_id": ep.id,
            "url": shown_url(ep.url),
            "description": ep.description,
            "reason": ep.disabled_reason,
            "failing_since": ep.failing_since.isoformat().replace("+00:00", "Z"),
            "disabled_at": now.isoformat().replace("+00:00", "Z"),
        },
        now=now,
    )


def delivery_counts(session: Session, endpoint_id: str) -> dict[str, int]:
    rows = session.execute(
        select(DeliveryRow.status, func.count())
        .where(DeliveryRow.endpoint_id == endpoint_id)
        .group_by(DeliveryRow.status)
    )
    return {str(status): int(n) for status, n in rows}


def deliveries(session: Session, endpoint_id: str, limit: int = 50) -> list[DeliveryRow]:
    q = select(DeliveryRow).where(DeliveryRow.endpoint_id == endpoint_id).order_by(DeliveryRow.id.desc()).limit(limit)
    return list(session.scalars(q))


# ------------------------------------------------------------------- outbox


def add_event(session: Session, event_type: str, data: dict[str, Any], *, now: datetime | None = None) -> str | None:
    """Queue ``event_type`` for every live endpoint subscribed to it, inside the caller's transaction.

    Returns the event id, or None when nobody is subscribed (nothing is written).
    """
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    endpoints = [e for e in list_endpoints(session) if event_type in e.events]
    if not endpoints:
        return None
    now = now or utcnow()
    msg_id = "msg_" + secrets.token_hex(16)
    body = json.dumps(
        {"type": event_type, "timestamp": now.isoformat().replace("+00:00", "Z"), "data": data},
        separators=(",", ":"),
        sort_keys=True,
    )
    session.add(OutboxRow(id=msg_id, type=event_type, body=body, created_at=now))
    session.flush()
    for e in endpoints:
        session.add(
            DeliveryRow(
                event_id=msg_id,
                endpoint_id=e.id,
                status="pending",
                attempts=0,
                next_attempt_at=now,
                leased_until=None,
                last_status=None,
                last_error=None,
                delivered_at=None,
            )
        )
    return msg_id


@dataclass(frozen=True, slots=True)
class Job:
    """One leased delivery: what to send where."""

    delivery_id: int
    event_id: str
    body: bytes
    url: str
    secret: str
    attempts: int
    endpoint_id: str = ""


def any_due(session: Session, *, now: datetime | None = None) -> bool:
    """Whether some delivery could be leased now (a cheap read before taking the write lock)."""
    now = now or utcnow()
    q = (
        select(DeliveryRow.id)
        .join(WebhookEndpointRow, WebhookEndpointRow.id == DeliveryRow.endpoint_id)
        .where(
            WebhookEndpointRow.disabled_at.is_(None),
            DeliveryRow.status == "pending",
            DeliveryRow.next_attempt_at <= now,
            or_(DeliveryRow.leased_until.is_(None), DeliveryRow.leased_until < now),
        )
        .limit(1)
    )
    return session.scalar(q) is not None


def lease_due(
    session: Session,
    *,
    limit: int,
    lease: timedelta,
    worker: str | None = None,
    now: datetime | None = None,
    busy: Sequence[str] = (),
    one_per_endpoint: bool = False,
) -> list[Job]:
    """Lease due deliveries so that no other worker takes them until the lease ends.

    On PostgreSQL the due rows are locked with ``FOR UPDATE SKIP LOCKED``, so
    workers of many processes each take different rows without waiting on one
    another. On SQLite (one writer at a time) each lease is a conditional UPDATE
    checked by its row count. ``worker`` is recorded as the lease holder.

    A worker passes the endpoints it has an attempt in flight to as ``busy``
    and asks ``one_per_endpoint``: a receiver that hangs then holds one of its
    slots, never all of them.
    """
    now = now or utcnow()
    pending = DeliveryRow.status == "pending"
    free = or_(DeliveryRow.leased_until.is_(None), DeliveryRow.leased_until < now)
    q = (
        select(DeliveryRow, OutboxRow, WebhookEndpointRow)
        .join(OutboxRow, OutboxRow.id == DeliveryRow.event_id)
        .join(WebhookEndpointRow, WebhookEndpointRow.id == DeliveryRow.endpoint_id)
        .where(pending, free, DeliveryRow.next_attempt_at <= now, WebhookEndpointRow.disabled_at.is_(None))
        .where(DeliveryRow.endpoint_id.not_in(list(busy)))
        .order_by(DeliveryRow.next_attempt_at, DeliveryRow.id)
        .limit(limit)
    )
    skip_locked = session.get_bind().dialect.name == "postgresql"
    if skip_locked:
        q = q.with_for_update(skip_locked=True, of=DeliveryRow)
    jobs: list[Job] = []
    taken: set[str] = set()
    for d, ev, ep in session.execute(q).all():
        if one_per_endpoint and ep.id in taken:
            continue
        res = session.execute(
            update(DeliveryRow)
            .where(DeliveryRow.id == d.id, pending, free)
            .values(leased_until=now + lease, leased_by=worker)
            .execution_options(synchronize_session=False)
        )
        if getattr(res, "rowcount", 0) == 1:
            jobs.append(Job(d.id, ev.id, ev.body.encode("utf-8"), ep.url, ep.secret, d.attempts, ep.id))
            taken.add(ep.id)
    return jobs


def record_attempt(
    session: Session,
    delivery_id: int,
    *,
    ok: bool,
    status: int | None,
    error: str | None,
    next_delay: timedelta | None,
    max_attempts: int,
    worker: str | None = None,
    now: datetime | None = None,
    gone: bool = False,
    disable_after: timedelta | None = None,
) -> str:
    """Store the outcome of one attempt; returns the delivery's new status.

    A worker whose lease ran out and was taken by another records a success
    (it did happen) but leaves the retry schedule and the lease to the holder.
    With ``disable_after`` the endpoint's ``failing_since`` follows the attempt
    and the endpoint is disabled when it has failed that long (or at once when
    ``gone``: the receiver answered 410).
    """
    now = now or utcnow()
    if disable_after is not None:  # the endpoint row is locked before the delivery's, as removing an endpoint does
        endpoint_id = session.scalar(select(DeliveryRow.endpoint_id).where(DeliveryRow.id == delivery_id))
        if endpoint_id is not None:
            _track_endpoint(session, endpoint_id, ok=ok, gone=gone, error=error, now=now, disable_after=disable_after)
    row = session.get(DeliveryRow, delivery_id, with_for_update=True)
    if row is None:
        return "missing"
    taken_over = (
        worker is not None
        and row.leased_by is not None
        and row.leased_by != worker
        and row.leased_until is not None
        and row.leased_until > now
    )
    row.attempts += 1
    row.last_status = status
    row.last_error = error[:2000] if error else None
    if not taken_over:
        row.leased_until = None
        row.leased_by = None
    if row.status != "pending":  # cancelled (or delivered by another worker) while in flight
        return row.status
    if ok:
        row.status = "delivered"
        row.delivered_at = now
    elif taken_over:
        return row.status
    elif row.attempts >= max_attempts or next_delay is None:
        row.status = "dead"
    else:
        row.next_attempt_at = now + next_delay
    return row.status


def release_leases(session: Session, delivery_ids: Sequence[int], worker: str | None = None) -> None:
    """Give leased deliveries back (a worker stopping mid-flight); they are due again at once."""
    if delivery_ids:
        q = update(DeliveryRow).where(DeliveryRow.id.in_(list(delivery_ids)), DeliveryRow.status == "pending")
        if worker is not None:
            q = q.where(or_(DeliveryRow.leased_by.is_(None), DeliveryRow.leased_by == worker))
        session.execute(q.values(leased_until=None, leased_by=None))
