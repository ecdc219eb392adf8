"""The model registry as the station sees it: versions, the active one, the one serving."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
from fastapi import APIRouter

from inspector.api.deps import AnyKey, SettingsDep, SlotDep
from inspector.api.problems import responses
from inspector.api.schemas import ModelsOut
from inspector.detect.base import DetectorError
from inspector.registry import META_FILE, WEIGHTS_FILE, active_version, root_dir

router = APIRouter(prefix="/v1/models", tags=["models"])


def list_registry(root: Path, serving: str | None) -> dict[str, Any]:
    try:
        active = active_version(root)
    except DetectorError:
        active = None
    models = []
    if root.is_dir():
        for d in sorted(p for p in root.iterdir() if p.is_dir()):
            weights = d / WEIGHTS_FILE
            meta_file = d / META_FILE
            present = weights.is_file()
            if not present and not meta_file.is_file():
                continue  # not a version (recipes/); a version whose weights left the tree keeps its meta
            meta: dict[str, Any] | None = None
            if meta_file.is_file():
                try:
                    loaded = json.loads(meta_file.read_text(encoding="utf-8"))
                    meta = loaded if isinstance(loaded, dict) else None
                except (OSError, json.JSONDecodeError):
                    meta = None
            models.append(
                {
                    "version": d.name,
                    "active": d.name == active,
                    "serving": d.name == serving,
                    "weights": str(weights.relative_to(root)) if present else None,
                    "weights_present": present,
                    "meta": meta,
                }
            )
    return {"active": active, "serving": serving, "models": models}


@router.get("", response_model=ModelsOut, summary="Registered models", responses=responses(401, 403))
async def get_models(_key: AnyKey, slot: SlotDep, settings: SettingsDep) -> dict[str, Any]:
    """Every version under ``models/``, which one is promoted (active) and which one answers (serving)."""
    serving = slot.pipeline.model_version if slot.pipeline is not None else None
    return await anyio.to_thread.run_sync(list_registry, root_dir(settings.registry.root), serving)
