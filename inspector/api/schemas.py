"""Request and response bodies of the HTTP API (the WMS contract, versioned under /v1)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from inspector.items import ITEM_FLAGS, MAX_CATEGORY_LENGTH, ItemInfo, check_category, check_flags
from inspector.types import DispositionPath, GradeLevel

REASON_CODE_PATTERN = r"^[a-z][a-z0-9_]{1,63}$"


class _In(BaseModel):
    # NaN and Infinity would be stored, then fail every answer and webhook that serialises them.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class _Out(BaseModel):
    # Extra fields the pipeline adds later flow through rather than break responses.
    model_config = ConfigDict(extra="allow")


# --------------------------------------------------------------------- item


class ItemIn(_In):
    """What the WMS knows about the returned item (every field optional)."""

    rma: str | None = Field(None, max_length=200, description="return merchandise authorisation number")
    lpn: str | None = Field(None, max_length=200, description="licence plate number of the return")
    sku: str | None = Field(None, max_length=200, description="SKU or catalogue reference")
    category: str | None = Field(
        None,
        max_length=MAX_CATEGORY_LENGTH,
        description="the retailer's own category, levels joined by '/' (electronics/phones); "
        "mapped to a rubric, a detector family and a value table by GET /v1/taxonomy",
    )
    return_reason: str | None = Field(None, max_length=500)
    price: float | None = Field(None, ge=0, description="what the customer paid")
    days_since_sale: int | None = Field(None, ge=0)
    flags: list[str] = Field(default_factory=list, description=f"some of {', '.join(sorted(ITEM_FLAGS))}")
    line: int | None = Field(
        None, ge=1, le=9999, description="which line of the RMA this item is, when its expected return has several"
    )

    @field_validator("category")
    @classmethod
    def _category(cls, v: str | None) -> str | None:
        return check_category(v) if v is not None else None

    @field_validator("flags")
    @classmethod
    def _flags(cls, v: list[str]) -> list[str]:
        return check_flags(v)

    def to_item(self) -> ItemInfo:
        return ItemInfo(**self.model_dump())


# -------------------------------------------------------------- inspections


class DetectionOut(_Out):
    index: int
    xyxy: list[float] = Field(description="x1, y1, x2, y2 in the view's pixels")
    confidence: float
    class_id: int
    class_name: str


class ReasonOut(_Out):
    code: str
    text: str
    detections: list[list[int]] = Field(description="(view n, detection index) pairs behind this reason")
    params: dict[str, Any] = Field(
        default_factory=dict, description="the names and figures in text, raw, to say the reason in another language"
    )


class GradeOut(_Out):
    level: GradeLevel
    confidence: float
    probabilities: dict[str, float]
    reasons: list[ReasonOut]
    rubric_version: str
    source: str


class AlternativeOut(_Out):
    path: DispositionPath
    expected_value: float
    allowed: bool
    note: str


class DispositionOut(_Out):
    path: DispositionPath
    expected_value: float
    expected_regret: float
    rule: str | None
    reasons: list[ReasonOut]
    alternatives: list[AlternativeOut]
    policy_version: str


class ImageRef(_Out):
    sha256: str
    media_type: str
    size_bytes: int


class AnomalyRegionOut(_Out):
    xyxy: list[float] = Field(description="x1, y1, x2, y2 in the view's pixels")
    share: float = Field(description="its area over the scored item's area")
    peak: float = Field(description="the highest anomaly score inside it, in the model's units")


class AnomalyOut(_Out):
    """What the anomaly model (learned from good items of the family only) made of the view's item."""

    score: float = Field(description="the item's anomaly score; anomalous at threshold or above")
    threshold: float = Field(description="set on validation for the false-alarm rate on good items in the model card")
    pixel_threshold: float = Field(description="a pixel of the map at or above it is anomalous (the regions' cut)")
    anomalous: bool
    family: str = Field(description="the product family whose model scored it")
    model_version: str
    crop: list[float] = Field(description="the scored item crop, x1, y1, x2, y2 in the view's pixels")
    regions: list[AnomalyRegionOut] = Field(
        description="anomalous regions no detection explains, at least anomaly.min_area of the item, worst first"
    )
    heat_url: str = Field(description="PNG: the anomaly map over the view")


class ViewOut(_Out):
    n: int
    camera_id: str
    captured_at: datetime
    width: int
    height: int
    image: ImageRef
    image_url: str
    annotated_url: str
    detections: list[DetectionOut]
    anomaly: AnomalyOut | None = Field(None, description="null: no anomaly model scored this view")


class VersionsOut(_Out):
    model: str
    policy: str
    rubric: str


class DecisionOut(_Out):
    id: str
    created_at: datetime
    action: Literal["accept", "override"]
    grade: str
    disposition: str
    reason_code: str | None
    note: str | None
    actor: str = Field(description="who decided, as the client says (default: the key's name)")
    key_id: str | None
    key_name: str | None = Field(None, description="the name of the API key that recorded it, whatever actor says")
    source: str


class FinalOut(_Out):
    """The outcome in force: the latest decision, or the recommendation while undecided."""

    grade: str
    disposition: str
    decided: bool
    decision_id: str | None
    actor: str | None
    decided_at: datetime | None


class ReturnMatchOut(_Out):
    """Which expected return the item was (``PUT /v1/returns``), or why none was used."""

    rma: str | None
    line: int | None = Field(description="the line the item was; null unless matched")
    status: Literal["matched", "ambiguous", "unknown", "lookup_failed"] = Field(
        description="matched: the item was filled from the line; ambiguous: the RMA has several lines and the item "
        "named none; unknown: no such expected return; lookup_failed: the WMS could not be asked"
    )
    lines: int = Field(description="how many lines the RMA has (0 when unknown)")
    message: str = Field(description="what happened, in a sentence for the operator")
    filled: list[str] = Field(default_factory=list, description="the item's fields taken from the expected return")


class InspectionOut(_Out):
    """One inspection: the recommendation as first served, every decision since, the outcome in force."""

    model_config = ConfigDict(extra="allow", serialize_by_alias=True)

    id: str
    created_at: datetime
    station_id: str
    source: str
    item: dict[str, Any]
    views: list[ViewOut]
    grade: GradeOut
    disposition: DispositionOut
    versions: VersionsOut
    timings_ms: dict[str, float]
    decisions: list[DecisionOut]
    final: FinalOut
    images_pruned_at: datetime | None = Field(
        None, description="when the retention policy removed the views (their URLs answer 410); null: kept"
    )
    return_: ReturnMatchOut | None = Field(
        None, alias="return", description="the expected return the item was filled from; null: no RMA or LPN given"
    )


def as_served(body: dict[str, Any]) -> dict[str, Any]:
    """The JSON exactly as the HTTP API serves it (pydantic's datetime and number forms)."""
    return InspectionOut.model_validate(body).model_dump(mode="json")


class InspectionPage(_Out):
    items: list[InspectionOut]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null on the last page")


class DecisionIn(_In):
    """Accept the recommendation, or override its grade and/or disposition with a reason code."""

    action: Literal["accept", "override"]
    grade: GradeLevel | None = Field(None, description="override: the final grade (default: the recommended one)")
    disposition: DispositionPath | None = Field(None, description="override: the final disposition")
    reason_code: str | None = Field(None, pattern=REASON_CODE_PATTERN, description="required to override")
    note: str | None = Field(None, max_length=2000)
    actor: str | None = Field(None, min_length=1, max_length=200, description="who decided (default: the key's name)")

    @model_validator(mode="after")
    def _consistent(self) -> DecisionIn:
        if self.action == "override":
            if self.grade is None and self.disposition is None:
                raise ValueError("an override sets grade, disposition or both")
            if self.reason_code is None:
                raise ValueError("an override needs a reason_code")
        elif self.grade is not None or self.disposition is not None:
            raise ValueError("accept takes the recommendation as it is; use action 'override' to change it")
        return self


# -------------------------------------------------------------- policy, models


class PolicyOut(_Out):
    version: str
    source: str = Field(description="api (put through this API), pipeline, or file")
    policy: dict[str, Any]


class ModelOut(_Out):
    version: str
    active: bool
    serving: bool
    weights: str | None = Field(description="weights file in the registry; null when not present (record only)")
    weights_present: bool = Field(description="false: only the card and metrics are kept, it cannot be served")
    meta: dict[str, Any] | None


class ModelsOut(_Out):
    active: str | None
    serving: str | None
    models: list[ModelOut]


# ---------------------------------------------------------------------- labelmap


class LabelClassOut(_Out):
    id: int = Field(description="the class id detections carry")
    name: str
    description: str
    defect: bool = Field(description="false only for the item class itself")
    colour: str = Field(description="the colour boxes of this class are drawn in, as #rrggbb")


class LabelmapOut(_Out):
    version: int
    classes: list[LabelClassOut] = Field(description="every class, in id order")


# ---------------------------------------------------------------------- ops


class HealthOut(_Out):
    status: Literal["ok"]
    version: str


class CheckOut(_Out):
    ok: bool
    detail: str


class ReadyOut(_Out):
    ready: bool
    checks: dict[str, CheckOut]


# ----------------------------------------------------------------- webhooks


EventType = Literal["inspection.completed", "inspection.decided", "webhook.disabled"]


def _all_events() -> list[EventType]:
    return ["inspection.completed", "inspection.decided", "webhook.disabled"]


class WebhookIn(_In):
    url: str = Field(max_length=2000, description="absolute http(s) URL that receives signed POSTs")
    events: list[EventType] = Field(default_factory=_all_events, min_length=1)
    secret: str | None = Field(
        None, description="whsec_<base64 of 24-64 bytes>; generated when omitted", max_length=200
    )
    description: str = Field("", max_length=500)


class WebhookOut(_Out):
    id: str
    url: str
    events: list[str]
    description: str
    created_at: datetime
    failing_since: datetime | None = Field(None, description="first failed attempt since the last success")
    disabled_at: datetime | None = Field(None, description="when the station stopped delivering to it")
    disabled_reason: str | None = Field(None, description="why: 410 Gone, or failing for webhooks.disable_after_days")
    deliveries: dict[str, int] = Field(description="deliveries by status: pending, delivered, dead, cancelled")


class WebhookCreated(WebhookOut):
    secret: str = Field(description="the signing secret; shown only here")


class DeliveryOut(_Out):
    id: int
    event_id: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_status: int | None
    last_error: str | None
    delivered_at: datetime | None


class ProblemOut(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    code: str = Field(description="stable machine-readable error code")
    instance: str | None = None
    errors: list[dict[str, Any]] | None = Field(None, description="validation errors, field by field")
