"""The package's file access: read the policy (YAML) and the SKU catalogue (CSV or JSON), write an imported one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from inspector.disposition.catalogue import Catalogue, catalogue_document, parse_catalogue_csv, parse_catalogue_json
from inspector.disposition.policy import Policy
from inspector.registry import write_atomic

PACKAGE_DIR = Path(__file__).resolve().parent
POLICY_FILE = PACKAGE_DIR / "policy.yaml"
CATALOGUE_FILE = PACKAGE_DIR / "data" / "catalogue.csv"
IMPORTED_CATALOGUE = "catalogue.json"  # under storage.data_dir: written by `inspector catalogue import`


def _text(path: Path, what: str) -> str:
    if not path.exists():
        raise FileNotFoundError(f"{what} not found: {path}")
    if not path.is_file():
        raise ValueError(f"{what} is not a file: {path}")
    try:
        return path.read_text(encoding="utf-8-sig")  # a spreadsheet's byte-order mark is not part of the header
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


def load_catalogue(path: Path | None = None, columns: dict[str, str] | None = None) -> Catalogue:
    """A SKU catalogue from ``.csv`` or ``.json`` (None: the sample catalogue shipped with the station).

    ``columns``: our field -> the file's header name, for a retailer's own export.
    """
    path = path or CATALOGUE_FILE
    text = _text(path, "catalogue")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return parse_catalogue_csv(text, str(path), columns)
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON: {exc}") from None
        return parse_catalogue_json(data, str(path), columns)
    raise ValueError(f"{path}: a catalogue must be .csv or .json, got {suffix or 'no extension'}")


def serving_catalogue_file(catalogue_file: Path | None, data_dir: Path) -> Path | None:
    """The catalogue the station serves: the imported one in the data folder, else the configured file.

    None: neither, and the shipped sample is served.
    """
    imported = data_dir / IMPORTED_CATALOGUE
    return imported if imported.is_file() else catalogue_file


def write_catalogue(catalogue: Catalogue, data_dir: Path, origin: str) -> Path:
    """Write the normalised catalogue where the station loads it, atomically (readers see old or new)."""
    path = data_dir / IMPORTED_CATALOGUE
    write_atomic(path, json.dumps(catalogue_document(catalogue, origin), ensure_ascii=False, indent=1) + "\n")
    return path
