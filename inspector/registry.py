"""The model registry under ``models/``: versions, the active pointer, resolution.

Layout: ``models/<version>/`` holds ``weights.pt``, ``recipe.yaml``, ``meta.json`` (dataset
fingerprint, metrics, training time, hardware, git commit, weights checksum), ``card.md`` and
its figures (drawn from the meta by ``inspector models plots``, not kept in the repository).
A version whose weights are not present (the repository keeps only the served version's and
the fine-tuning checkpoint's) is still listed and shown, never served. ``models/active.json``
names the promoted version and ``models/promotions.jsonl`` records every promotion (who, when,
what it replaced). The station serves the active version; when that entry is broken it falls
back to the last intact promoted one, loudly, rather than serving nothing or a half-written model.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inspector.detect.base import DetectorError
from inspector.paths import models_dir

ACTIVE_FILE = "active.json"
ANOMALY_ACTIVE_FILE = "active-anomaly.json"  # anomaly models are promoted apart from the detector
PROMOTIONS_FILE = "promotions.jsonl"
WEIGHTS_FILE = "weights.pt"
META_FILE = "meta.json"
CARD_FILE = "card.md"
RECIPE_FILE = "recipe.yaml"
LOCK_FILE = ".lock"
NO_WEIGHTS = f"{WEIGHTS_FILE} is missing"

_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
log = logging.getLogger(__name__)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Shipped files are world-readable like any checkout, whatever mkstemp/mkdtemp default to.
_FILE_MODE = 0o666 & ~_umask()
_DIR_MODE = 0o777 & ~_umask()


class RegistryError(DetectorError):
    """A registry entry is missing, incomplete or corrupt; the message names the file and the fault."""


def root_dir(root: Path | None = None) -> Path:
    """The registry folder: ``root`` when given, else ``models/`` (or ``INSPECTOR_MODELS_DIR``)."""
    return root if root is not None else models_dir()


def check_version_name(version: str) -> str:
    """Refuse names that could escape the registry folder or hide as dot-files."""
    if not _VERSION_RE.match(version) or version in {".", ".."}:
        raise RegistryError(
            f"invalid model version name {version!r}: use letters, digits, '.', '_' or '-' (at most 100)"
        )
    return version


def version_dir(version: str, root: Path | None = None) -> Path:
    return root_dir(root) / check_version_name(version)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def write_atomic(path: Path, text: str) -> None:
    """Write a file so readers see either the old or the new content, never a partial one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        Path(tmp).chmod(_FILE_MODE)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    """Serialise writers of the shared registry files (active pointer, promotion log)."""
    import fcntl

    root.mkdir(parents=True, exist_ok=True)
    with (root / LOCK_FILE).open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# ------------------------------------------------------------------ reading entries


@dataclass(frozen=True, slots=True)
class VersionStatus:
    """What a registry entry holds and what is wrong with it (``problems`` empty = servable)."""

    version: str
    path: Path
    meta: Mapping[str, Any]
    problems: tuple[str, ...] = field(default=())
    weights_present: bool = True

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def weights(self) -> Path:
        return self.path / WEIGHTS_FILE

    @property
    def record_ok(self) -> bool:
        """Meta and card are intact, whether or not the weights are here: the version can be shown."""
        return all(p == NO_WEIGHTS for p in self.problems)

    @property
    def state(self) -> str:
        """One line for listings: ``ok``, ``weights not present`` (only the record is kept), or what is broken."""
        if self.ok:
            return "ok"
        if self.record_ok:
            return "weights not present"
        return "BROKEN: " + "; ".join(self.problems)


def _read_meta(path: Path) -> tuple[dict[str, Any], str | None]:
    if not path.is_file():
        return {}, f"{path.name} is missing"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return {}, f"{path.name} is corrupt ({exc})"
    if not isinstance(data, dict):
        return {}, f"{path.name} is corrupt (not a JSON object)"
    return data, None


def _card_problem(path: Path) -> str | None:
    if not path.is_file():
        return f"{CARD_FILE} is missing"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return f"{CARD_FILE} is corrupt ({exc})"
    if not text.lstrip().startswith("# "):
        return f"{CARD_FILE} is corrupt (no title line)"
    return None


def inspect_version(version: str, root: Path | None = None, *, verify_checksum: bool = True) -> VersionStatus:
    """Read an entry and list every fault found, without raising (``models list`` shows them all)."""
    path = version_dir(version, root)
    if not path.is_dir():
        return VersionStatus(version, path, {}, (f"no such version in {root_dir(root)}",))
    problems: list[str] = []
    meta, meta_problem = _read_meta(path / META_FILE)
    if meta_problem:
        problems.append(meta_problem)
    elif meta.get("version") != version:
        problems.append(f"{META_FILE} names version {meta.get('version')!r}, not {version!r}")
    weights = path / WEIGHTS_FILE
    if not weights.is_file():
        problems.append(NO_WEIGHTS)
    elif weights.stat().st_size == 0:
        problems.append(f"{WEIGHTS_FILE} is empty")
    elif (
        verify_checksum
        and isinstance(meta.get("weights_sha256"), str)
        and sha256_file(weights) != meta["weights_sha256"]
    ):
        problems.append(f"{WEIGHTS_FILE} does not match the checksum in {META_FILE} (corrupt or replaced)")
    card_problem = _card_problem(path / CARD_FILE)
    if card_problem:
        problems.append(card_problem)
    return VersionStatus(version, path, meta, tuple(problems), weights_present=weights.is_file())


def check_version(version: str, root: Path | None = None) -> Path:
    """The weights of an intact entry; a :class:`RegistryError` naming every fault otherwise."""
    status = inspect_version(version, root)
    if status.record_ok and not status.weights_present:
        raise RegistryError(
            f"model version {version!r} has no weights here: {NO_WEIGHTS} ({status.path}); only its card and "
            "metrics are kept, so it cannot be served, promoted or trained from until its weights are put back"
        )
    if not status.ok:
        raise RegistryError(f"model version {version!r} is broken: {'; '.join(status.problems)} ({status.path})")
    return status.weights


def list_versions(root: Path | None = None) -> list[str]:
    """Every entry folder in the registry (broken ones too), oldest first."""
    base = root_dir(root)
    if not base.is_dir():
        return []
    found: list[tuple[str, str]] = []
    for p in base.iterdir():
        if not p.is_dir() or p.name.startswith(".") or not _VERSION_RE.match(p.name):
            continue
        if not any((p / f).exists() for f in (WEIGHTS_FILE, META_FILE, CARD_FILE)):
            continue  # recipes/ and other support folders
        meta, _ = _read_meta(p / META_FILE)
        found.append((str(meta.get("created_at", "")), p.name))
    return [name for _, name in sorted(found)]


def load_meta(version: str, root: Path | None = None) -> dict[str, Any]:
    meta, problem = _read_meta(version_dir(version, root) / META_FILE)
    if problem:
        raise RegistryError(f"model version {version!r}: {problem}")
    return meta


def save_meta(version: str, meta: Mapping[str, Any], root: Path | None = None) -> None:
    write_atomic(version_dir(version, root) / META_FILE, json.dumps(meta, indent=2, sort_keys=False) + "\n")


def save_card(version: str, card: str, root: Path | None = None) -> None:
    write_atomic(version_dir(version, root) / CARD_FILE, card)


# ------------------------------------------------------------------ writing entries


def new_version_name(prefix: str, root: Path | None = None, when: dt.datetime | None = None) -> str:
    """``<prefix>-YYYYMMDD-HHMM``, with ``-2``, ``-3``... when that minute is taken."""
    stamp = (when or dt.datetime.now()).strftime("%Y%m%d-%H%M")
    base = check_version_name(f"{prefix}-{stamp}")
    name, n = base, 1
    while version_dir(name, root).exists():
        n += 1
        name = f"{base}-{n}"
    return name


def register(
    version: str,
    *,
    weights: Path,
    meta: Mapping[str, Any],
    card: str,
    recipe_text: str | None = None,
    files: Mapping[str, Path] | None = None,
    root: Path | None = None,
) -> Path:
    """Create a new entry from finished artefacts; it appears complete or not at all.

    Everything is written into a hidden staging folder and renamed into place, so a
    crash never leaves a half-registered version that the station might pick up.
    """
    base = root_dir(root)
    final = version_dir(version, base)
    if final.exists():
        raise RegistryError(f"model version {version!r} already exists in {base}")
    if not weights.is_file():
        raise RegistryError(f"cannot register {version!r}: weights not found at {weights}")
    base.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".staging-{version}-", dir=base))
    try:
        staging.chmod(_DIR_MODE)
        shutil.copyfile(weights, staging / WEIGHTS_FILE)
        full_meta = {
            **meta,
            "version": version,
            "weights_sha256": sha256_file(staging / WEIGHTS_FILE),
            "weights_bytes": (staging / WEIGHTS_FILE).stat().st_size,
        }
        full_meta.setdefault("created_at", now_iso())
        if recipe_text is not None:
            (staging / RECIPE_FILE).write_text(recipe_text, encoding="utf-8")
        for name, src in (files or {}).items():
            if Path(name).name != name or name in {WEIGHTS_FILE, META_FILE, CARD_FILE}:
                raise RegistryError(f"cannot register extra file {name!r}")
            if src.is_file():
                shutil.copyfile(src, staging / name)
        (staging / META_FILE).write_text(json.dumps(full_meta, indent=2) + "\n", encoding="utf-8")
        (staging / CARD_FILE).write_text(card, encoding="utf-8")
        staging.rename(final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final


# ------------------------------------------------------------------ the active pointer


def _who() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def pointer_for(meta: Mapping[str, Any]) -> str:
    """The active pointer a version belongs under: anomaly models have their own, beside the detector's."""
    return ANOMALY_ACTIVE_FILE if meta.get("task") == "anomaly" else ACTIVE_FILE


def active_record(root: Path | None = None, pointer: str = ACTIVE_FILE) -> dict[str, Any] | None:
    """The content of ``active.json`` (version, promoted_by, promoted_at, previous), or None."""
    path = root_dir(root) / pointer
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RegistryError(f"{path}: unreadable active-model pointer ({exc})") from exc
    if not isinstance(data, dict):
        raise RegistryError(f"{path}: the active-model pointer is not a JSON object")
    version = data.get("version")
    if not isinstance(version, str) or not version:
        raise RegistryError(f"{path}: no 'version' in the active-model pointer")
    return data


def active_version(root: Path | None = None, pointer: str = ACTIVE_FILE) -> str | None:
    """The promoted version named by ``active.json`` (or ``pointer``), or None when nothing is promoted."""
    record = active_record(root, pointer)
    return None if record is None else str(record["version"])


def promotions(root: Path | None = None) -> list[dict[str, Any]]:
    """Every recorded promotion, oldest first (unreadable lines are skipped, not fatal)."""
    path = root_dir(root) / PROMOTIONS_FILE
    if not path.is_file():
        return []
    out: list[dict[str, Any]] = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict) and isinstance(rec.get("version"), str):
            out.append(rec)
    return out


def promote(
    version: str,
    *,
    by: str | None = None,
    note: str | None = None,
    root: Path | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Make ``version`` the one the station serves: only an intact entry, atomically, on the record.

    ``extra`` goes into the record too (the promotion guard's verdict, who forced it and why).
    An anomaly model (meta ``task: anomaly``) moves its own pointer; the detector's stays.
    """
    base = root_dir(root)
    check_version(version, base)
    pointer = pointer_for(load_meta(version, base))
    with _locked(base):
        try:
            previous = active_version(base, pointer)
        except RegistryError:
            previous = None
        record: dict[str, Any] = {
            "version": version,
            "promoted_by": by or _who(),
            "promoted_at": now_iso(),
            "previous": previous,
        }
        if note:
            record["note"] = note
        for key, value in (extra or {}).items():
            record.setdefault(key, value)
        if pointer != ACTIVE_FILE:
            record.setdefault("task", "anomaly")
        write_atomic(base / pointer, json.dumps(record, indent=2) + "\n")
        with (base / PROMOTIONS_FILE).open("a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())
    return record


# ------------------------------------------------------------------ resolution


def resolve_weights(spec: str | None, root: Path | None = None) -> tuple[Path, str | None]:
    """Turn a model spec (None, a version name, or a .pt path) into a weights file and its version.

    None means the active version. A registered version must be intact (weights present
    and matching their checksum, meta and card readable), or this raises a clear error.
    """
    base = root_dir(root)
    if spec is None:
        version = active_version(base)
        if version is None:
            raise RegistryError(f"no active model in {base}: train one with 'make model' or pass --model PATH")
        spec = version
    as_path = Path(spec)
    if as_path.suffix == ".pt" or as_path.is_file():
        if not as_path.is_file():
            raise DetectorError(f"model file not found: {as_path}")
        return as_path, None
    if not version_dir(spec, base).is_dir():
        raise RegistryError(f"no model version {spec!r} in {base}")
    return check_version(spec, base), spec


def resolve_serving(root: Path | None = None) -> tuple[Path, str]:
    """What the station should serve: the active version, or the last intact promoted one.

    A broken active entry is logged as a warning and skipped; earlier promotions are
    tried newest first. Raises :class:`RegistryError` when no promoted version is intact.
    """
    base = root_dir(root)
    first_error: str | None = None
    active: str | None = None
    try:
        active = active_version(base)
    except RegistryError as exc:
        first_error = str(exc)
    if active is not None:
        try:
            return check_version(active, base), active
        except RegistryError as exc:
            first_error = str(exc)
    history = [r["version"] for r in reversed(promotions(base)) if r.get("task") != "anomaly"]
    if active is None and first_error is None:
        raise RegistryError(f"no active model in {base}: train one with 'make model' or promote a version")
    seen = {active}
    for version in history:
        if version in seen:
            continue
        seen.add(version)
        status = inspect_version(version, base)
        if status.ok:
            log.warning("serving %s, the last intact promoted version: %s", version, first_error)
            return status.weights, version
    raise RegistryError(f"{first_error}; no earlier promoted version is intact")


def serving_hints(version: str | None, root: Path | None = None) -> dict[str, Any]:
    """The input size and operating confidence a registered version was trained and evaluated at, and the
    backend measured to give its verdicts fastest (``serving_backend``).

    A model trained at 416 px sees objects at another scale when run at 640; the station
    should use these unless its configuration says otherwise. Empty for unregistered weights.
    """
    if version is None:
        return {}
    meta, problem = _read_meta(version_dir(version, root) / META_FILE)
    if problem:
        return {}
    hints: dict[str, Any] = {}
    if isinstance(meta.get("imgsz"), int):
        hints["imgsz"] = meta["imgsz"]
    if isinstance(meta.get("operating_confidence"), (int, float)):
        hints["confidence"] = float(meta["operating_confidence"])
    chosen = meta.get("serving_backend")  # inspector models backends: the fastest with PyTorch's verdicts
    if isinstance(chosen, Mapping) and isinstance(chosen.get("backend"), str):
        hints["backend"] = chosen["backend"]
    return hints
