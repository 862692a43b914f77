"""Request and response shapes of the /v1 API (pydantic), for validation and the OpenAPI document.

Adapter layer. Requests reject unknown fields. Responses are built as plain dicts by the routes
(fast path); these models document them.
"""
from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

REASONS = ("hard_bounce", "soft_bounce_threshold", "complaint", "unsubscribe", "manual", "import")
Reason = Literal["hard_bounce", "soft_bounce_threshold", "complaint", "unsubscribe", "manual", "import"]
EventType = Literal["recipient.hard_bounced", "recipient.soft_bounced", "recipient.complained",
                    "recipient.unsubscribed", "recipient.suppressed", "recipient.reactivated",
                    "domain.blocked"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value):
        # PostgreSQL text cannot hold NUL; refuse it here rather than fail in the database.
        items = value if isinstance(value, list) else [value]
        if any(isinstance(v, str) and "\x00" in v for v in items):
            raise ValueError("NUL characters are not allowed")
        return value


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    errors: list[dict] | None = None


class Scope(BaseModel):
    type: Literal["global", "list", "domain"]
    id: str | None = None


class Suppression(BaseModel):
    address: str
    scope: Scope
    reason: str
    origin: str
    source: dict
    evidence: dict
    note: str
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None


class SuppressionDetail(Suppression):
    history: list[dict]


class SuppressionPage(BaseModel):
    data: list[Suppression]
    next_cursor: str | None


class SuppressionPut(Strict):
    scope: str = Field("global", max_length=300, description="global, list:<id> or domain:<sending domain>")
    reason: Reason = "manual"
    expires_at: datetime | None = None
    note: str = Field("", max_length=2000)


class CheckRequest(Strict):
    addresses: list[str] = Field(..., min_length=1, max_length=1000)
    scope: str = Field("global", max_length=300,
                       description="the list or sending domain about to be mailed; global entries always match")


class CheckResult(BaseModel):
    address: str
    suppressed: bool
    reason: str | None = None
    scope: Scope | None = None


class CheckResponse(BaseModel):
    results: list[CheckResult]


class BatchItem(Strict):
    action: Literal["add", "remove"]
    address: str = Field(..., max_length=400)
    scope: str = Field("global", max_length=300)
    reason: Reason = "manual"
    note: str = Field("", max_length=2000)
    expires_at: datetime | None = None
    force: bool = False


class BatchRequest(Strict):
    items: list[BatchItem] = Field(..., min_length=1, max_length=1000)


class BatchResult(BaseModel):
    address: str
    scope: str
    result: Literal["suppressed", "removed", "unchanged", "failed"]
    message: str = ""


class BatchResponse(BaseModel):
    results: list[BatchResult]


class Deleted(BaseModel):
    address: str
    scope: Scope
    deleted: bool


class ImportJob(BaseModel):
    id: str
    state: Literal["queued", "running", "done", "failed"]
    action: Literal["add", "remove"]
    default_scope: str
    total: int
    changed: int
    unchanged: int
    failed: int
    errors: list[dict]
    created_at: datetime
    finished_at: datetime | None


class EventsPage(BaseModel):
    data: list[dict]
    suppression_changes: list[dict]
    next_cursor: str | None


class BlocksResponse(BaseModel):
    data: list[dict]


class EndpointCreate(Strict):
    url: str = Field(..., max_length=2048)
    event_types: list[EventType] = Field(default_factory=list, description="[] = every type")
    description: str = Field("", max_length=500)


class EndpointPatch(Strict):
    url: str | None = Field(None, max_length=2048)
    event_types: list[EventType] | None = None
    description: str | None = Field(None, max_length=500)
    enabled: bool | None = None


class RotateSecret(Strict):
    keep_old_seconds: int = Field(86400, ge=0, le=7 * 86400,
                                  description="how long the previous secret keeps signing too")


class Endpoint(BaseModel):
    id: str
    url: str
    event_types: list[str]
    description: str
    enabled: bool
    disabled_reason: str
    failing_since: datetime | None
    created_at: datetime
    updated_at: datetime
    secret: str | None = Field(None, description="shown once, on creation and rotation")


class EndpointList(BaseModel):
    data: list[Endpoint]


class Delivery(BaseModel):
    id: int
    endpoint_id: str
    webhook_id: str
    type: str
    state: Literal["pending", "delivered", "failed"]
    attempts: int
    next_attempt_at: datetime | None
    last_status: int | None
    last_error: str
    created_at: datetime
    delivered_at: datetime | None
    attempt_log: list[dict] | None = None


class DeliveryPage(BaseModel):
    data: list[Delivery]
    next_cursor: str | None


class ReplayRange(Strict):
    since: datetime
    until: datetime | None = None
    only_failed: bool = True


class Replayed(BaseModel):
    replayed: int
