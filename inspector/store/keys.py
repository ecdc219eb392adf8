"""API keys: random, shown once, stored as sha256.

Keys carry 256 bits of randomness, so a fast hash is the right choice (a slow
password hash protects guessable secrets; these are not guessable).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from inspector.store.models import ApiKey
from inspector.types import utcnow

KEY_PREFIX = "insp_"
_TOUCH_EVERY = timedelta(minutes=1)


class Role(enum.StrEnum):
    """What a key may do: wms submits and reads; operator also decides; admin does everything."""

    WMS = "wms"
    OPERATOR = "operator"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """A key as the API sees it once authenticated (never the key itself)."""

    id: str
    name: str
    role: Role
    prefix: str
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None

    @classmethod
    def of(cls, row: ApiKey) -> KeyInfo:
        return cls(
            id=row.id,
            name=row.name,
            role=Role(row.role),
            prefix=row.prefix,
            created_at=row.created_at,
            last_used_at=row.last_used_at,
            revoked_at=row.revoked_at,
        )


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def create_key(session: Session, role: Role | str, name: str = "") -> tuple[KeyInfo, str]:
    """Add a key; returns its record and the key itself, which is not stored anywhere."""
    role = Role(role)
    key = new_key()
    row = ApiKey(
        id="key_" + secrets.token_hex(6),
        name=name or f"{role.value} key",
        role=role.value,
        key_hash=hash_key(key),
        prefix=key[: len(KEY_PREFIX) + 4],
        created_at=utcnow(),
        last_used_at=None,
        revoked_at=None,
    )
    session.add(row)
    session.flush()
    return KeyInfo.of(row), key


def lookup(session: Session, key: str) -> KeyInfo | None:
    """The live key record for ``key``, or None (unknown or revoked)."""
    if not key or len(key) > 200:
        return None
    digest = hash_key(key)
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == digest))
    if row is None or not hmac.compare_digest(row.key_hash, digest) or row.revoked_at is not None:
        return None
    return KeyInfo.of(row)


def touch(session: Session, info: KeyInfo) -> None:
    """Record use, at most once a minute per key (keeps writes off the hot path)."""
    now = utcnow()
    if info.last_used_at is not None and now - info.last_used_at < _TOUCH_EVERY:
        return
    session.execute(update(ApiKey).where(ApiKey.id == info.id).values(last_used_at=now))


def list_keys(session: Session) -> list[KeyInfo]:
    return [KeyInfo.of(r) for r in session.scalars(select(ApiKey).order_by(ApiKey.created_at, ApiKey.id))]


def revoke(session: Session, key_id: str) -> KeyInfo:
    row = session.get(ApiKey, key_id)
    if row is None:
        raise KeyError(f"no key with id {key_id!r}")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    session.flush()
    return KeyInfo.of(row)


def count_live(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(ApiKey).where(ApiKey.revoked_at.is_(None))) or 0)
