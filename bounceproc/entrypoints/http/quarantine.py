"""/v1/quarantine: what could not become an event, and why; replay and purge (admin keys).

Adapter layer over bounceproc.app.quarantine, the same use cases as `bounceproc quarantine`.
"""
from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from bounceproc.app import quarantine as use_cases
from bounceproc.entrypoints.http.common import (
    ApiContext, ctx, decode_cursor, encode_cursor, json_response, problem_responses, require, rfc3339, utc,
)
from bounceproc.entrypoints.http.models import Strict
from bounceproc.entrypoints.http.problems import Problem
from bounceproc.storage.api_keys import ApiKey

router = APIRouter(prefix="/v1", tags=["quarantine"])
Ctx = Annotated[ApiContext, Depends(ctx)]
Admin = Annotated[ApiKey, Depends(require("admin"))]
MAX_ID = 2**63 - 1


class QuarantineEntry(BaseModel):
    id: int
    created_at: str
    origin: str
    intake_id: int | None
    line_no: int | None
    reason: str
    kind: str | None = None
    raw: str | None = None


class QuarantinePage(BaseModel):
    items: list[QuarantineEntry]
    next_cursor: str | None


class QuarantineReplay(Strict):
    since: datetime | None = None
    ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(default_factory=list, max_length=1000)


class QuarantineReplayed(BaseModel):
    replayed: int
    resolved: int
    still_quarantined: int
    events_stored: int
    skipped: list[str]


class Purged(BaseModel):
    purged: int


def _entry(row: dict) -> dict:
    out = {k: row.get(k) for k in use_cases.COLUMNS}
    out["created_at"] = rfc3339(row["created_at"])
    for k in ("kind", "raw"):
        if k in row:
            out[k] = row[k]
    return out


def _after(cursor: str | None) -> int:
    if not cursor:
        return 0
    value = decode_cursor(cursor, 1)[0]
    if not isinstance(value, int) or not 0 <= value <= MAX_ID:
        raise Problem(400, "the cursor is not one this API issued", slug="invalid-cursor",
                      errors=[{"field": "cursor", "message": "invalid cursor"}])
    return value


@router.get("/quarantine", responses={200: {"model": QuarantinePage}, **problem_responses(400, 401, 403)})
def list_quarantine(c: Ctx, key: Admin, since: datetime | None = None,
                    reason: Annotated[str, Query(max_length=200)] = "",
                    limit: Annotated[int, Query(ge=1, le=1000)] = 100, cursor: str | None = None):
    """Quarantined accounting records and messages, oldest first; `reason` matches a part of it."""
    after = _after(cursor)
    with c.engine.connect() as conn:
        rows = use_cases.list_entries(conn, utc(since), reason, limit, after)
    nxt = encode_cursor(rows[-1]["id"]) if len(rows) == limit else None
    return json_response({"items": [_entry(r) for r in rows], "next_cursor": nxt})


@router.get("/quarantine/{entry_id}", responses={200: {"model": QuarantineEntry}, **problem_responses(401, 403, 404)})
def show_quarantine(c: Ctx, key: Admin, entry_id: Annotated[int, Path(ge=1, le=MAX_ID)]):
    """One entry with the raw record, or the whole message while it is kept."""
    with c.engine.connect() as conn:
        row = use_cases.show_entry(conn, entry_id)
    if row is None:
        raise Problem(404, f"no quarantine entry {entry_id}", slug="no-such-quarantine-entry")
    return json_response(_entry(row))


@router.post("/quarantine/replay", responses={200: {"model": QuarantineReplayed}, **problem_responses(400, 401, 403, 422)})
async def replay_quarantine(c: Ctx, key: Admin, body: QuarantineReplay):
    """Run the selected entries (`ids`, or everything since `since`, or all) through the current
    code and rules again; entries that now give events leave the quarantine. Idempotent."""
    res = await run_in_threadpool(use_cases.replay, c.settings, utc(body.since), list(body.ids) or None)
    if res.events_stored:
        c.kick_webhooks()
    return json_response(res.as_dict())


@router.delete("/quarantine", responses={200: {"model": Purged}, **problem_responses(400, 401, 403)})
def purge_quarantine(c: Ctx, key: Admin, before: datetime):
    """Delete the entries quarantined before `before`."""
    with c.engine.begin() as conn:
        return json_response({"purged": use_cases.purge(conn, before=utc(before))})
