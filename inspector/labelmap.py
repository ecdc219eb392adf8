"""The one labelmap: class names and ids, read from ``datasets/labelmap.yaml``."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from inspector.paths import datasets_dir

ITEM = "item"
DEFECT_CLASSES = ("scratch", "dent", "crack", "stain", "tear", "missing_part", "broken_seal")


@dataclass(frozen=True, slots=True)
class Labelmap:
    """Class names in id order, with a one-line description each."""

    names: tuple[str, ...]
    descriptions: tuple[str, ...]
    version: int = 1

    def id_of(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"unknown class {name!r}; the labelmap has {', '.join(self.names)}") from None

    @property
    def defect_names(self) -> tuple[str, ...]:
        return tuple(n for n in self.names if n != ITEM)

    def __len__(self) -> int:
        return len(self.names)


def load_labelmap(path: Path | None = None) -> Labelmap:
    """Read and check a labelmap file (unique, non-empty names)."""
    path = path or datasets_dir() / "labelmap.yaml"
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(raw, dict) or not isinstance(raw.get("classes"), list) or not raw["classes"]:
        raise ValueError(f"{path}: expected a mapping with a non-empty 'classes' list")
    names: list[str] = []
    descs: list[str] = []
    for entry in raw["classes"]:
        if isinstance(entry, str):
            name, desc = entry, ""
        elif isinstance(entry, dict) and isinstance(entry.get("name"), str):
            name, desc = entry["name"], str(entry.get("description", ""))
        else:
            raise ValueError(f"{path}: each class needs a name, got {entry!r}")
        if not name or name in names:
            raise ValueError(f"{path}: class names must be unique and non-empty ({name!r})")
        names.append(name)
        descs.append(desc)
    return Labelmap(names=tuple(names), descriptions=tuple(descs), version=int(raw.get("version", 1)))


@lru_cache(maxsize=1)
def default_labelmap() -> Labelmap:
    return load_labelmap()
