"""Find and load the anomaly model to serve: the active anomaly version, a named one, or a folder or file."""

from __future__ import annotations

import json
from pathlib import Path

from inspector import registry
from inspector.anomaly.base import AnomalyError
from inspector.anomaly.model import AnomalyModel


def _from_folder(folder: Path, version: str) -> AnomalyModel:
    meta_path = folder / registry.META_FILE
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AnomalyError(f"{meta_path}: missing (an anomaly version needs its meta.json)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AnomalyError(f"{meta_path}: unreadable ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("task") != "anomaly":
        raise AnomalyError(f"{meta_path}: not an anomaly model (task {meta.get('task')!r})")
    families = meta.get("families")
    if not isinstance(families, dict):
        raise AnomalyError(f"{meta_path}: no per-family thresholds")
    model = AnomalyModel.load(folder / registry.WEIGHTS_FILE, version=version)
    # the thresholds the station applies are the reviewed ones in the meta, not those baked into the file
    return model.with_thresholds({f: v for f, v in families.items() if isinstance(v, dict)})


def load_scorer(spec: str | None = None, root: Path | None = None) -> AnomalyModel:
    """The anomaly scorer for ``spec``: None = the promoted anomaly version; a version name; a folder; a file.

    Raises :class:`AnomalyError` naming the file and the fault when there is none or it is broken.
    """
    base = registry.root_dir(root)
    if spec is None:
        try:
            spec = registry.active_version(base, registry.ANOMALY_ACTIVE_FILE)
        except registry.RegistryError as exc:
            raise AnomalyError(str(exc)) from exc
        if spec is None:
            raise AnomalyError(
                f"no active anomaly model in {base}: train one with 'inspector train --task anomaly' and promote it"
            )
    path = Path(spec)
    if path.is_file():
        return AnomalyModel.load(path)
    if path.is_dir():
        return _from_folder(path, path.name)
    try:
        folder = registry.version_dir(spec, base)
    except registry.RegistryError as exc:
        raise AnomalyError(str(exc)) from exc
    if not folder.is_dir():
        raise AnomalyError(f"anomaly model {spec!r} not found (no {folder})")
    return _from_folder(folder, spec)
