"""The shipped registry (models/): intact entries, small files, cards that match their evaluations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inspector import registry
from inspector.training.evaluate import evaluation_text

MAX_BYTES = 15_000_000


def _versions(repo_root: Path) -> list[str]:
    return registry.list_versions(repo_root / "models")


def test_every_shipped_file_is_under_15_mb(repo_root: Path) -> None:
    big = [
        f"{p.relative_to(repo_root)} ({p.stat().st_size / 1e6:.1f} MB)"
        for p in (repo_root / "models").rglob("*")
        if p.is_file() and p.stat().st_size >= MAX_BYTES
    ]
    assert big == []


def test_the_active_version_is_intact(repo_root: Path) -> None:
    root = repo_root / "models"
    active = registry.active_version(root)
    if active is None:
        pytest.skip("no model promoted in models/ yet (make model)")
    weights, version = registry.resolve_serving(root)
    assert version == active and weights == root / active / "weights.pt"
    assert registry.promotions(root)[-1]["version"] == active


def test_cards_show_exactly_the_stored_evaluations(repo_root: Path) -> None:
    root = repo_root / "models"
    versions = _versions(repo_root)
    if not versions:
        pytest.skip("no registered versions in models/")
    for v in versions:
        status = registry.inspect_version(v, root)
        assert status.ok, f"{v}: {status.problems}"
        card = (root / v / registry.CARD_FILE).read_text(encoding="utf-8")
        for key, ev in (status.meta.get("evaluations") or {}).items():
            stored = json.loads((root / v / f"eval-{key}.json").read_text(encoding="utf-8"))
            assert stored == ev, f"{v}: eval-{key}.json and meta.json disagree"
            if key == status.meta.get("primary_evaluation"):
                body = evaluation_text(v, key, ev).split("\n", 2)[2].strip()
                assert body in card, f"{v}: the card does not show the {key} evaluation as printed"
        for fig in (status.meta.get("figures") or {}).values():
            assert (root / v / fig).is_file(), f"{v}: card figure {fig} is missing"
