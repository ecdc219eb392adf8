"""Request and response bodies of the learning endpoints: operator flags, drift, model reload."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

NEW_CLASS = re.compile(r"[a-z][a-z0-9_]{0,63}")  # a class name an operator may coin for confirmed unexplained damage


class FlagIn(BaseModel):
    """An operator's word on the detections of one view: a defect the model missed, or one that is not there;
    or an unexplained region of the anomaly model confirmed as damage of a class the operator names."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    kind: Literal["missed_defect", "false_defect", "anomaly"]
    view: int = Field(0, ge=0, le=31, description="the view (n) the flag is about")
    detection: int | None = Field(None, ge=0, description="false_defect: the index of the detection that is wrong")
    box: list[float] | None = Field(
        None, min_length=4, max_length=4, description="missed_defect: x1, y1, x2, y2 in the view's pixels (optional)"
    )
    class_name: str | None = Field(
        None,
        max_length=64,
        description="missed_defect: the defect class (optional); anomaly: the class the region is (a new one may be "
        "named: lower case, digits and _)",
    )
    region: int | None = Field(None, ge=0, description="anomaly: the index of the view's unexplained region")
    note: str | None = Field(None, max_length=2000)

    @model_validator(mode="after")
    def _consistent(self) -> FlagIn:
        if self.kind == "anomaly":
            if self.region is None or self.class_name is None:
                raise ValueError("an anomaly flag names one of the view's unexplained regions (region) and its class")
            if not NEW_CLASS.fullmatch(self.class_name):
                raise ValueError(f"class_name {self.class_name!r}: lower case letters, digits and _, from a letter")
            if self.box is not None or self.detection is not None:
                raise ValueError("an anomaly flag takes its box from the region: give no box or detection")
            return self
        if self.region is not None:
            raise ValueError("region is for anomaly flags")
        if self.kind == "false_defect":
            if self.detection is None:
                raise ValueError("a false_defect flag points at one of the view's detections (detection)")
            if self.box is not None:
                raise ValueError("a false_defect flag takes no box: it points at a detection")
        elif self.detection is not None:
            raise ValueError("a missed_defect flag is about something not detected: give a box, not a detection")
        if self.box is not None and not (self.box[0] < self.box[2] and self.box[1] < self.box[3]):
            raise ValueError("box must be x1 < x2 and y1 < y2")
        return self


class FlagOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    inspection_id: str
    created_at: datetime
    kind: str
    view: int
    detection: int | None
    class_name: str | None
    box: list[float] | None
    note: str | None
    actor: str
    key_name: str | None = Field(None, description="the name of the API key that flagged it, whatever actor says")
    source: str


class FlagsOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    items: list[FlagOut]


class DriftWarningOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    metric: str
    key: str
    value: float
    baseline: float
    threshold: float
    text: str


class DriftOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    day: str | None = Field(description="the day watched (UTC), the newest with inspections")
    summary: dict[str, Any] | None
    baseline_days: list[str]
    warnings: list[DriftWarningOut]
    computed_at: datetime | None = None


class AnomalyReloadOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    swapped: bool
    serving: str | None
    reason: str | None = None


class ReloadOut(AnomalyReloadOut):
    """The detector's answer, with the anomaly model's beside it."""

    anomaly: AnomalyReloadOut | None = Field(None, description="the same for the anomaly model's own pointer")
