"""Webhook endpoints (admin): register, list, remove, re-enable, and see recent deliveries."""

from __future__ import annotations

from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Path, Response

from inspector.api.deps import AdminKey, SettingsDep, StoreDep
from inspector.api.problems import Problem, responses
from inspector.api.schemas import DeliveryOut, WebhookCreated, WebhookIn, WebhookOut
from inspector.store import Store
from inspector.store import webhooks as wh

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])
EndpointId = Annotated[str, Path(pattern=r"^wh_[0-9a-f]{16}$", description="the endpoint id")]


def _out(store: Store, e: wh.Endpoint) -> dict[str, Any]:
    with store.db.read() as s:
        counts = wh.delivery_counts(s, e.id)
    return {
        "id": e.id,
        "url": e.url,
        "events": list(e.events),
        "description": e.description,
        "created_at": e.created_at,
        "failing_since": e.failing_since,
        "disabled_at": e.disabled_at,
        "disabled_reason": e.disabled_reason,
        "deliveries": counts,
    }


@router.post(
    "",
    status_code=201,
    response_model=WebhookCreated,
    summary="Register an endpoint",
    responses=responses(401, 403, 422),
)
async def create_webhook(body: WebhookIn, _key: AdminKey, store: StoreDep, settings: SettingsDep) -> dict[str, Any]:
    """Events are POSTed as JSON and signed per Standard Webhooks (``webhook-id``,
    ``webhook-timestamp``, ``webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``)
    with this endpoint's secret, which is returned here only. A URL on a loopback, link-local, private,
    multicast or unspecified address (or a name resolving to one) is refused unless
    ``webhooks.allow_private_urls`` is set."""

    def add() -> dict[str, Any]:
        try:
            if not settings.webhooks.allow_private_urls:  # resolved before the write: DNS may be slow
                wh.check_destination(body.url)
            with store.db.write() as s:
                endpoint, secret = wh.add_endpoint(
                    s, body.url, body.events, secret=body.secret, description=body.description
                )
        except ValueError as exc:
            raise Problem(422, str(exc), code="invalid_webhook") from exc
        return {**_out(store, endpoint), "secret": secret}

    return await anyio.to_thread.run_sync(add)


@router.get("", response_model=list[WebhookOut], summary="List endpoints", responses=responses(401, 403))
async def list_webhooks(_key: AdminKey, store: StoreDep) -> list[dict[str, Any]]:
    """Live endpoints and those the station disabled (``disabled_at``, ``disabled_reason``), not removed ones."""

    def read() -> list[dict[str, Any]]:
        with store.db.read() as s:
            endpoints = wh.list_endpoints(s, include_disabled=True)
        return [_out(store, e) for e in endpoints]

    return await anyio.to_thread.run_sync(read)


@router.delete("/{endpoint_id}", status_code=204, summary="Remove an endpoint", responses=responses(401, 403, 404, 422))
async def delete_webhook(endpoint_id: EndpointId, _key: AdminKey, store: StoreDep) -> Response:
    """Stops deliveries to it (pending ones are cancelled); its delivery history is kept."""

    def disable() -> bool:
        with store.db.write() as s:
            return wh.disable_endpoint(s, endpoint_id)

    if not await anyio.to_thread.run_sync(disable):
        raise Problem(404, f"no webhook endpoint with id {endpoint_id}", code="not_found")
    return Response(status_code=204)


@router.post(
    "/{endpoint_id}/enable",
    response_model=WebhookOut,
    summary="Re-enable an endpoint the station disabled",
    responses=responses(401, 403, 404, 422),
)
async def enable_webhook(endpoint_id: EndpointId, _key: AdminKey, store: StoreDep) -> dict[str, Any]:
    """Clears ``disabled_at``, ``disabled_reason`` and ``failing_since``; the deliveries kept while it was
    disabled are sent at once. A removed endpoint is registered again instead."""

    def enable() -> dict[str, Any] | None:
        with store.db.write() as s:
            endpoint = wh.enable_endpoint(s, endpoint_id)
        return None if endpoint is None else _out(store, endpoint)

    out = await anyio.to_thread.run_sync(enable)
    if out is None:
        raise Problem(404, f"no webhook endpoint with id {endpoint_id}", code="not_found")
    return out


@router.get(
    "/{endpoint_id}/deliveries",
    response_model=list[DeliveryOut],
    summary="Recent deliveries to an endpoint",
    responses=responses(401, 403, 422),
)
async def list_deliveries(endpoint_id: EndpointId, _key: AdminKey, store: StoreDep) -> list[dict[str, Any]]:
    def read() -> list[dict[str, Any]]:
        with store.db.read() as s:
            rows = wh.deliveries(s, endpoint_id)
            return [
                {
                    "id": r.id,
                    "event_id": r.event_id,
                    "status": r.status,
                    "attempts": r.attempts,
                    "next_attempt_at": r.next_attempt_at,
                    "last_status": r.last_status,
                    "last_error": r.last_error,
                    "delivered_at": r.delivered_at,
                }
                for r in rows
            ]

    return await anyio.to_thread.run_sync(read)
