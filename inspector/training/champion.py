"""``inspector models compare`` and the promotion guard: measure, store with the challenger, refuse regressions."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from inspector import registry, runtime
from inspector.training.compare import bootstrap_compare, regressions


class PromotionRefused(registry.RegistryError):
    """The challenger is worse than the active version beyond the tolerance, and the promotion was not forced."""


def compare_versions(
    champion: str,
    challenger: str,
    data_yaml: Path,
    *,
    split: str = "test",
    root: Path | None = None,
    resamples: int = 1000,
    seed: int = 0,
    imgsz: int | None = None,
    threads: int | None = None,
) -> dict[str, Any]:
    """Score both versions image by image on one split, bootstrap the deltas, record it in the challenger's meta."""
    from inspector.data.formats import fingerprint, read_data_yaml
    from inspector.training.ultralytics import match_stats

    base = registry.root_dir(root)
    weights_a = registry.check_version(champion, base)
    weights_b = registry.check_version(challenger, base)
    spec = read_data_yaml(data_yaml)
    if not spec.image_paths(split):
        raise ValueError(f"{data_yaml}: the {split!r} split has no images")
    meta_b = registry.load_meta(challenger, base)
    size = imgsz or int(meta_b.get("imgsz", 640))
    n = runtime.configure(threads)
    work = Path(tempfile.mkdtemp(prefix="inspector-compare-"))
    try:
        rows_a, names_a = match_stats(
            weights_a, spec.description(), split=split, imgsz=size, threads=n, out_dir=work / "a"
        )
        rows_b, names_b = match_stats(
            weights_b, spec.description(), split=split, imgsz=size, threads=n, out_dir=work / "b"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if names_a != names_b:
        raise ValueError(f"{champion} and {challenger} have different class lists; their AP cannot be compared")
    result = bootstrap_compare(rows_a, rows_b, names_a, resamples=resamples, seed=seed)
    result.update(
        champion=champion,
        challenger=challenger,
        split=split,
        imgsz=size,
        dataset=fingerprint(spec, splits=(split,)),
        compared_at=registry.now_iso(),
    )
    meta_b = registry.load_meta(challenger, base)  # re-read: it may have changed meanwhile
    meta_b.setdefault("comparisons", {})[champion] = result
    registry.save_meta(challenger, meta_b, base)
    return result


def promotion_check(version: str, *, root: Path | None = None, tolerance: float = 0.02) -> dict[str, Any]:
    """Whether ``version`` may replace the active one: the stored comparison against it and what regressed.

    ``ok`` is False with ``reason`` when a class is worse beyond ``tolerance`` or when there is no
    comparison against the version now active. Promoting over nothing, or the active version again, is fine.
    """
    base = registry.root_dir(root)
    registry.check_version(version, base)  # a missing or broken entry is named as such
    try:
        active = registry.active_version(base)
    except registry.RegistryError:
        active = None
    if active is None or active == version:
        return {"ok": True, "champion": active, "regressions": [], "reason": None}
    comparison = (registry.load_meta(version, base).get("comparisons") or {}).get(active)
    if comparison is None:
        return {
            "ok": False,
            "champion": active,
            "regressions": [],
            "reason": f"{version} has not been compared with the active version {active}: "
            f"run 'inspector models compare {active} {version} --data DATA.yaml' (or promote with --data)",
        }
    worse = regressions(comparison, tolerance)
    reason = None
    if worse:
        reason = f"{version} is worse than {active} by more than {tolerance} AP50 on: " + "; ".join(worse)
    return {
        "ok": not worse,
        "champion": active,
        "regressions": worse,
        "reason": reason,
        "map50_delta": comparison["map50"]["delta"],
        "dataset": comparison.get("dataset", {}).get("name"),
        "compared_at": comparison.get("compared_at"),
    }


def guarded_promote(
    version: str,
    *,
    by: str | None = None,
    note: str | None = None,
    force: bool = False,
    reason: str | None = None,
    root: Path | None = None,
    tolerance: float = 0.02,
) -> dict[str, Any]:
    """Promote unless the check fails; a forced promotion records who forced it and why in the promotion log."""
    check = promotion_check(version, root=root, tolerance=tolerance)
    if not check["ok"] and not force:
        raise PromotionRefused(f"promotion refused: {check['reason']} (use --force --by NAME --reason WHY to override)")
    if not check["ok"] and (not by or not reason):
        raise PromotionRefused("a forced promotion needs --by (who) and --reason (why): both go into the log")
    guard = {"tolerance": tolerance, "champion": check["champion"], "passed": check["ok"]}
    if check.get("map50_delta") is not None:
        guard["map50_delta"] = check["map50_delta"]
    if not check["ok"]:
        guard.update(forced=True, forced_by=by, forced_reason=reason, regressions=check["regressions"])
    return registry.promote(version, by=by, note=note, root=root, extra={"guard": guard})
