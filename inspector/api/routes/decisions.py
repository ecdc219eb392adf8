"""Final decisions: accept the recommendation or override it; every decision is kept."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from inspector.api.deps import OperatorKey, ServiceDep
from inspector.api.problems import responses
from inspector.api.routes.inspections import InspectionId
from inspector.api.schemas import DecisionIn, InspectionOut

router = APIRouter(prefix="/v1/inspections", tags=["decisions"])


@router.post(
    "/{inspection_id}/decision",
    status_code=201,
    response_model=InspectionOut,
    summary="Record the final decision",
    responses=responses(401, 403, 404, 422),
)
async def decide(
    inspection_id: InspectionId, decision: DecisionIn, key: OperatorKey, service: ServiceDep
) -> dict[str, Any]:
    """Accept the recommendation, or override grade and/or disposition with a reason code.

    Nothing is overwritten: the recommendation stays as it was served, the new
    decision is appended to ``decisions``, and ``final`` shows the newest one.
    """
    return await service.decide(inspection_id, decision, key.name, key_id=key.id, key_name=key.name, source="api")
