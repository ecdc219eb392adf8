"""The disposition policy in force: read it, or replace it (admin).

A policy put here is validated against the policy model, swapped into the
running pipeline, and stored, so it is still in force after a restart.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from typing import Any

import anyio
from fastapi import APIRouter, Body, Request
from pydantic import BaseModel, ValidationError

from inspector.api.deps import AdminKey, AnyKey, SettingsDep, SlotDep, StoreDep
from inspector.api.problems import Problem, responses, validation_errors
from inspector.api.schemas import PolicyOut
from inspector.api.service import PipelineSlot
from inspector.config import Settings
from inspector.store import Store
from inspector.store import inspections as repo

router = APIRouter(prefix="/v1/policy", tags=["policy"])


def policy_module() -> Any | None:
    """``inspector.disposition.policy`` when it is installed (it defines ``Policy`` and ``load_policy``)."""
    try:
        return importlib.import_module("inspector.disposition.policy")
    except ImportError:
        return None


def policy_version(policy: BaseModel) -> str:
    version = getattr(policy, "version", None)
    if isinstance(version, str) and version:
        return version
    canon = json.dumps(policy.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canon.encode()).hexdigest()[:12]


def apply_policy(slot: PipelineSlot, policy: BaseModel) -> None:
    """Swap the policy of the running pipeline (``with_policy`` returns a new one; ``set_policy`` mutates)."""
    pipeline = slot.pipeline
    if pipeline is None:
        return
    with_policy = getattr(pipeline, "with_policy", None)
    if callable(with_policy):
        slot.set(with_policy(policy))
        return
    set_policy = getattr(pipeline, "set_policy", None)
    if callable(set_policy):
        set_policy(policy)
        return
    raise Problem(501, "the running pipeline cannot change its policy without a restart", code="policy_not_swappable")


def current_policy(settings: Settings, store: Store, slot: PipelineSlot) -> dict[str, Any]:
    """The policy in force: the pipeline's own, else the newest one put through the API, else the file."""
    with store.db.read() as s:
        row = repo.latest_policy(s)
    pipeline_policy = getattr(slot.pipeline, "policy", None) if slot.pipeline is not None else None
    if isinstance(pipeline_policy, BaseModel):
        version = slot.pipeline.policy_version if slot.pipeline else policy_version(pipeline_policy)
        return {
            "version": version,
            "source": "api" if row is not None and row.version == version else "pipeline",
            "policy": pipeline_policy.model_dump(mode="json"),
        }
    if row is not None:
        return {"version": row.version, "source": "api", "policy": json.loads(row.body)}
    mod = policy_module()
    if mod is None:
        raise Problem(503, "no disposition policy model is installed", code="policy_unavailable")
    try:
        policy = mod.load_policy(settings.disposition.policy_file)
    except (OSError, ValueError) as exc:
        raise Problem(503, f"the policy file cannot be read: {exc}", code="policy_unavailable") from exc
    return {"version": policy_version(policy), "source": "file", "policy": policy.model_dump(mode="json")}


def restore_policy(store: Store, slot: PipelineSlot) -> str | None:
    """At start-up: put the newest stored policy back into the pipeline. Returns its version."""
    mod = policy_module()
    if mod is None or slot.pipeline is None:
        return None
    with store.db.read() as s:
        row = repo.latest_policy(s)
    if row is None:
        return None
    policy = mod.Policy.model_validate(json.loads(row.body))
    apply_policy(slot, policy)
    return row.version


@router.get("", response_model=PolicyOut, summary="The policy in force", responses=responses(401, 403, 503))
async def get_policy(_key: AnyKey, settings: SettingsDep, store: StoreDep, slot: SlotDep) -> dict[str, Any]:
    return await anyio.to_thread.run_sync(current_policy, settings, store, slot)


@router.put("", response_model=PolicyOut, summary="Replace the policy (admin)", responses=responses(401, 403, 422, 503))
async def put_policy(
    request: Request,
    key: AdminKey,
    store: StoreDep,
    slot: SlotDep,
    body: dict[str, Any] = Body(description="a whole policy document, as GET /v1/policy returns under 'policy'"),  # noqa: B008
) -> dict[str, Any]:
    """Validate the policy, swap it into the running pipeline, and store it (it survives restarts)."""
    mod = policy_module()
    if mod is None:
        raise Problem(503, "no disposition policy model is installed", code="policy_unavailable")
    try:
        policy = mod.Policy.model_validate(body)
    except ValidationError as exc:
        errors = validation_errors(exc.errors())
        detail = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'policy'}: {e['msg']}" for e in errors[:5])
        raise Problem(422, detail, code="invalid_policy", errors=errors) from exc
    except ValueError as exc:
        raise Problem(422, str(exc), code="invalid_policy") from exc
    apply_policy(slot, policy)
    version = slot.pipeline.policy_version if slot.pipeline is not None else policy_version(policy)
    dumped = policy.model_dump(mode="json")

    def save() -> None:
        with store.db.write() as s:
            repo.save_policy(s, version, dumped, key.id)

    await anyio.to_thread.run_sync(save)
    return {"version": version, "source": "api", "policy": dumped}
