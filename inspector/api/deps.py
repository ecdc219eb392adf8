"""Request dependencies: settings, the store, the service, and the caller's key with role checks."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from inspector.api.budget import PixelBudget
from inspector.api.drift import DriftMonitor
from inspector.api.guards import unauthenticated
from inspector.api.hotswap import ModelWatcher
from inspector.api.metrics import Metrics
from inspector.api.problems import Problem
from inspector.api.service import InspectionService, PipelineSlot
from inspector.config import Settings
from inspector.store import Store
from inspector.store.keys import KeyInfo, Role, lookup, touch
from inspector.types import utcnow

log = logging.getLogger("inspector.api")

api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="an API key from 'inspector keys create --role ROLE'"
)
bearer = HTTPBearer(auto_error=False, description="the same API key as a bearer token (for Prometheus)")


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def get_service(request: Request) -> InspectionService:
    service: InspectionService = request.app.state.inspections
    return service


def get_slot(request: Request) -> PipelineSlot:
    slot: PipelineSlot = request.app.state.pipeline_slot
    return slot


def get_metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


def get_pixel_budget(request: Request) -> PixelBudget:
    budget: PixelBudget = request.app.state.pixel_budget
    return budget


SettingsDep = Annotated[Settings, Depends(get_settings)]
PixelBudgetDep = Annotated[PixelBudget, Depends(get_pixel_budget)]
StoreDep = Annotated[Store, Depends(get_store)]
ServiceDep = Annotated[InspectionService, Depends(get_service)]
SlotDep = Annotated[PipelineSlot, Depends(get_slot)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]

ANONYMOUS = KeyInfo(id="anonymous", name="anonymous", role=Role.ADMIN, prefix="", created_at=utcnow())


def key_for(settings: Settings, store: Store, given: str | None) -> KeyInfo:
    """The live key ``given`` names; 401 when it is missing, unknown or revoked. Every key check comes here."""
    if not settings.server.require_auth:
        return ANONYMOUS
    if not given:
        raise unauthenticated(missing=True)
    with store.db.read() as s:
        info = lookup(s, given)
    if info is None:
        raise unauthenticated(missing=False)
    if info.last_used_at is None or (utcnow() - info.last_used_at).total_seconds() > 60:
        try:
            with store.db.write() as s:
                touch(s, info)
        except Exception as exc:  # bookkeeping only: never fail a request over it
            log.debug("could not record the use of key %s: %s", info.id, exc)
    return info


def current_key(
    settings: SettingsDep,
    store: StoreDep,
    api_key: Annotated[str | None, Security(api_key_header)] = None,
    token: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)] = None,
) -> KeyInfo:
    """The caller's live key, from X-API-Key or a bearer token. Sync on purpose: FastAPI runs it on a worker thread."""
    return key_for(settings, store, api_key or (token.credentials if token is not None else None))


def has_role(key: KeyInfo, *roles: Role) -> KeyInfo:
    """``key`` when its role is one of ``roles``; 403 otherwise."""
    if key.role not in roles:
        needed = ", ".join(sorted(r.value for r in roles))
        raise Problem(403, f"a {key.role.value} key may not do this; it needs one of: {needed}", code="forbidden")
    return key


def require(*roles: Role) -> Callable[[KeyInfo], KeyInfo]:
    def check(key: Annotated[KeyInfo, Depends(current_key)]) -> KeyInfo:
        return has_role(key, *roles)

    return check


AnyKey = Annotated[KeyInfo, Depends(require(Role.WMS, Role.OPERATOR, Role.ADMIN))]
OperatorKey = Annotated[KeyInfo, Depends(require(Role.OPERATOR, Role.ADMIN))]
AdminKey = Annotated[KeyInfo, Depends(require(Role.ADMIN))]


def get_watcher(request: Request) -> ModelWatcher:
    watcher: ModelWatcher = request.app.state.model_watcher
    return watcher


def get_drift(request: Request) -> DriftMonitor:
    monitor: DriftMonitor = request.app.state.drift
    return monitor


WatcherDep = Annotated[ModelWatcher, Depends(get_watcher)]
DriftDep = Annotated[DriftMonitor, Depends(get_drift)]
