"""The one anomaly-scorer interface: what the pipeline asks of a model trained on good items only."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt


class AnomalyError(RuntimeError):
    """An anomaly model could not be loaded or run; the message says which file and why."""


@dataclass(frozen=True)
class AnomalyResult:
    """One item crop scored against what good items of its family look like.

    ``heat`` is the anomaly map at the crop's size (float32, higher = stranger), in the same units
    as ``score`` and ``threshold`` so that a pixel above ``threshold`` is an anomalous pixel.
    ``score`` is the image-level score (the map's maximum after smoothing, as PatchCore and PaDiM do);
    the item is anomalous when ``score >= threshold``, the threshold having been set on validation
    for a stated false-alarm rate on good items (in the model card).
    """

    score: float
    threshold: float
    heat: npt.NDArray[np.float32]
    family: str
    model_version: str
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def anomalous(self) -> bool:
        return self.score >= self.threshold


@runtime_checkable
class AnomalyScorer(Protocol):
    """Scores an item's crop (RGB uint8, HxWx3, native resolution) for the given product family.

    ``version`` names the model, so every stored inspection and ``/v1/ready`` can say which one judged.

    ``families`` lists the families it has a model for; ``score`` raises :class:`AnomalyError` for
    another family, and the pipeline then goes on without it.
    """

    @property
    def version(self) -> str: ...

    @property
    def families(self) -> tuple[str, ...]: ...

    def score(self, crop: npt.NDArray[np.uint8], family: str) -> AnomalyResult: ...
