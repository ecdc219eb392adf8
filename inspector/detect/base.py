"""The one detector interface that every backend implements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from inspector.types import Detections, Frame


class DetectorError(RuntimeError):
    """A model could not be loaded or run; the message says which file and why."""


def one_line(exc: BaseException) -> str:
    """The first line of an exception message, without ultralytics' decorations: runtimes raise pages of text."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text.replace("ERROR ❌️", "").replace("❌", "").strip()


@runtime_checkable
class Detector(Protocol):
    """Finds defects (and the item itself) in frames.

    ``detect`` returns one :class:`Detections` per frame, in frame order, in the
    frame's pixel coordinates. ``model_version`` names the weights that produced
    them, so every stored inspection can say which model judged it.
    """

    @property
    def model_version(self) -> str: ...

    @property
    def class_names(self) -> tuple[str, ...]: ...

    def detect(self, frames: Sequence[Frame]) -> list[Detections]: ...
