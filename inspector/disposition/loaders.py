"""Read the policy (YAML) and the SKU catalogue (CSV or JSON): the package's only file access."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from inspector.disposition.catalogue import Catalogue, parse_catalogue_csv, parse_catalogue_json
from inspector.disposition.policy import Policy

PACKAGE_DIR = Path(__file__).resolve().parent
POLICY_FILE = PACKAGE_DIR / "policy.yaml"
CATALOGUE_FILE = PACKAGE_DIR / "data" / "catalogue.csv"


def _text(path: Path, what: str) -> str:
    if not path.exists():
        raise FileNotFoundError(f"{what} not found: {path}")
    if not path.is_file():
        raise ValueError(f"{what} is not a file: {path}")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{what} {path} is not UTF-8 text") from None


def parse_policy(raw: Any, source: str = "policy") -> Policy:
    """Validate a parsed policy mapping; errors name the field."""
    if not isinstance(raw, dict):
        raise ValueError(f"{source}: expected a mapping at the top level")
    try:
        return Policy.model_validate(raw)
    except ValidationError as exc:
        details = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"{source}: {details}") from None


def load_policy(path: Path | None = None) -> Policy:
    """The policy file (None: the policy shipped with the station)."""
    path = path or POLICY_FILE
    try:
        raw = yaml.safe_load(_text(path, "policy file"))
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from None
    return parse_policy(raw, str(path))


def load_catalogue(path: Path | None = None) -> Catalogue:
    """A SKU catalogue from ``.csv`` or ``.json`` (None: the sample catalogue shipped with the station)."""
    path = path or CATALOGUE_FILE
    text = _text(path, "catalogue")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return parse_catalogue_csv(text, str(path))
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON: {exc}") from None
        return parse_catalogue_json(data, str(path))
    raise ValueError(f"{path}: a catalogue must be .csv or .json, got {suffix or 'no extension'}")
