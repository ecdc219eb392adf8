"""Webhook endpoints (admin): register, list, remove, and see recent deliveries."""

from __future__ import annotations

from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Path, Response

from inspector.api.deps import AdminKey, StoreDep
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
        "deliveries": counts,
    }


@router.post(
    "",
    status_code=201,
    response_model=WebhookCreated,
    summary="Register an endpoint",
    responses=responses(401, 403, 422),
)
async def create_webhook(body: WebhookIn, _key: AdminKey, store: StoreDep) -> dict[str, Any]:
    """Events are POSTed as JSON and signed per Standard Webhooks (``webhook-id``,
    ``webhook-timestamp``, ``webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``)
    with this endpoint's secret, which is returned here only."""

    def add() -> dict[str, Any]:
        try:
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
    def read() -> list[dict[str, Any]]:
        with store.db.read() as s:
            endpoints = wh.list_endpoints(s)
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
