"""The one-way flow: frames -> detections -> grade -> disposition -> Inspection.

The API and the bench station both call :class:`InspectionPipeline.inspect`;
nothing here stores or serves anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from inspector.items import ItemInfo
from inspector.types import Frame, Inspection


@runtime_checkable
class InspectionPipeline(Protocol):
    """What the API and the station need from the pipeline."""

    @property
    def model_version(self) -> str: ...

    @property
    def policy_version(self) -> str: ...

    @property
    def rubric_version(self) -> str: ...

    def inspect(
        self, frames: Sequence[Frame], item: ItemInfo, *, inspection_id: str, station_id: str = "bench-1"
    ) -> Inspection:
        """Run every stage on the views of one item. Blocking: call it off the event loop."""
        ...
