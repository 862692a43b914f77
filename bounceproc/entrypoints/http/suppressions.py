"""/v1/suppressions: get, list, put, delete, bulk check, batch, streamed CSV export; events; blocks.

Adapter layer. Reads are SQLAlchemy Core selects; every change goes through bounceproc.app.service
(suppress / lift), which writes the history and the webhook outbox in the same transaction.
Expired entries (expires_at in the past) count as not suppressed even before the sweep deletes them.
"""
from __future__ import annotations

import csv
import io
from datetime import date, datetime, timezone
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool
from sqlalchemy import and_, desc, func, or_, select

from bounceproc.app import service
from bounceproc.entrypoints.http.common import (
    ApiContext, ctx, cursor_time, decode_cursor, encode_cursor, json_response, parse_address,
    parse_scope, problem_responses, require, rfc3339, scope_object, utc,
)
from bounceproc.entrypoints.http.idempotency import run_once
from bounceproc.entrypoints.http.models import (
    BatchRequest, BatchResponse, BlocksResponse, CheckRequest, CheckResponse, Deleted, EventsPage,
    Reason, Suppression, SuppressionDetail, SuppressionPage, SuppressionPut,
)
from bounceproc.entrypoints.http.problems import Problem
from bounceproc.storage.api_keys import ApiKey
from bounceproc.storage.tables import block_counters, events, suppression_history, suppressions

router = APIRouter(prefix="/v1", tags=["suppressions"])
READ, WRITE = require("suppressions:read"), require("suppressions:write")
Ctx = Annotated[ApiContext, Depends(ctx)]
EXPORT_CHUNK = 2000
EXPORT_COLUMNS = ("address", "scope", "reason", "origin", "category", "status", "rule", "source",
                  "created_at", "updated_at", "expires_at", "note")


def resource(row) -> dict:
    return {
        "address": row["address"], "scope": scope_object(row["scope"]), "reason": row["reason"],
        "origin": row["origin"],
        "source": {"kind": row["source"], "event_id": row["event_key"] or None},
        "evidence": {"status": row["status"], "category": row["category"], "reason": row["bounce_reason"],
                     "rule": row["rule"], "diagnostic": row["diagnostic"]},
        "note": row["note"], "created_at": rfc3339(row["created_at"]),
        "updated_at": rfc3339(row["updated_at"]), "expires_at": rfc3339(row["expires_at"]),
    }


def _active(now: datetime):
    return or_(suppressions.c.expires_at.is_(None), suppressions.c.expires_at > now)


def _history_item(row) -> dict:
    return {"action": row["action"], "scope": scope_object(row["scope"]), "reason": row["reason"],
            "actor": row["actor"], "why": row["why"], "event_id": row["event_key"] or None,
            "evidence": row["evidence"], "at": rfc3339(row["at"])}


@router.get("/suppressions/export.csv", response_class=StreamingResponse,
            responses={200: {"content": {"text/csv": {}}, "description": "CSV, one suppression a row"},
                       **problem_responses(401, 403, 422)})
def export_csv(c: Ctx, key: Annotated[ApiKey, Depends(READ)],
               reason: Reason | None = None, scope: str | None = None, source: str | None = None,
               category: str | None = None, created_after: datetime | None = None,
               created_before: datetime | None = None, q: str | None = Query(None, max_length=320)):
    """Stream every suppression matching the filters as CSV (same filters as the list)."""
    where = _filters(reason, scope, source, category, created_after, created_before, q)

    def rows():
        buf = io.StringIO()
        out = csv.writer(buf)
        out.writerow(EXPORT_COLUMNS)
        after: tuple | None = None
        for _ in range(10**7):
            stmt = select(suppressions).where(*where).order_by(suppressions.c.created_at, suppressions.c.id)
            if after:
                stmt = stmt.where(_after(*after))
            with c.engine.connect() as conn:
                page = conn.execute(stmt.limit(EXPORT_CHUNK)).mappings().all()
            for r in page:
                out.writerow([r["address"], r["scope"], r["reason"], r["origin"], r["category"], r["status"],
                              r["rule"], r["source"], rfc3339(r["created_at"]), rfc3339(r["updated_at"]),
                              rfc3339(r["expires_at"]) or "", r["note"]])
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
            if len(page) < EXPORT_CHUNK:
                return
            after = (utc(page[-1]["created_at"]), page[-1]["id"])

    return StreamingResponse(rows(), media_type="text/csv",
                             headers={"Content-Disposition": 'attachment; filename="suppressions.csv"'})


def _after(created_at: datetime, row_id: int):
    return or_(suppressions.c.created_at > created_at,
               and_(suppressions.c.created_at == created_at, suppressions.c.id > row_id))


def _filters(reason, scope, source, category, created_after, created_before, q) -> list:
    where = []
    if reason:
        where.append(suppressions.c.reason == reason)
    if scope:
        where.append(suppressions.c.scope == parse_scope(scope))
    if source:
        where.append(suppressions.c.source == source)
    if category:
        where.append(suppressions.c.category == category)
    if created_after:
        where.append(suppressions.c.created_at >= utc(created_after))
    if created_before:
        where.append(suppressions.c.created_at < utc(created_before))
    if q:
        prefix = q.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where.append(suppressions.c.address.like(prefix + "%", escape="\\"))
    return where


@router.get("/suppressions", responses={200: {"model": SuppressionPage}, **problem_responses(400, 401, 403, 422)})
def list_suppressions(c: Ctx, key: Annotated[ApiKey, Depends(READ)],
                      reason: Reason | None = None, scope: str | None = Query(None, max_length=300),
                      source: str | None = Query(None, max_length=16),
                      category: str | None = Query(None, max_length=32),
                      created_after: datetime | None = None, created_before: datetime | None = None,
                      q: str | None = Query(None, max_length=320, description="address prefix"),
                      limit: int = Query(100, ge=1, le=1000), cursor: str | None = Query(None, max_length=500)):
    """Suppressions in creation order, filtered, with an opaque cursor."""
    where = _filters(reason, scope, source, category, created_after, created_before, q)
    stmt = select(suppressions).where(*where)
    if cursor:
        at, row_id = decode_cursor(cursor, 2)
        if not isinstance(row_id, int) or not 0 <= row_id < 2**63:
            raise Problem(400, "the cursor is not one this API issued", slug="invalid-cursor")
        stmt = stmt.where(_after(cursor_time(at), row_id))
    stmt = stmt.order_by(suppressions.c.created_at, suppressions.c.id).limit(limit + 1)
    with c.engine.connect() as conn:
        rows = conn.execute(stmt).mappings().all()
    more = len(rows) > limit
    rows = rows[:limit]
    nxt = encode_cursor(utc(rows[-1]["created_at"]).isoformat(), rows[-1]["id"]) if more and rows else None
    return json_response({"data": [resource(r) for r in rows], "next_cursor": nxt})


@router.get("/suppressions/{address}",
            responses={200: {"model": SuppressionDetail}, **problem_responses(401, 403, 404, 422)})
async def get_suppression(c: Ctx, key: Annotated[ApiKey, Depends(READ)], address: str,
                          scope: str = Query("global", max_length=300), history: bool = True):
    """One suppression with its evidence and history; 404 when the address is not suppressed."""
    addr, sc = parse_address(address), parse_scope(scope)
    return json_response(await lookup(c, addr, sc, history))


async def lookup(c: ApiContext, addr: str, sc: str, history: bool) -> dict:
    """The resource of one active suppression (with its history), or a 404 Problem.
    Shared by the route above and the fast path (api/fast_path.py)."""
    now = datetime.now(timezone.utc)
    if c.reader is not None:
        row, hist = await c.reader.get_one(addr, sc, now, history)
    else:
        row, hist = await run_in_threadpool(_get_one, c, addr, sc, now, history)
    if row is None:
        raise Problem(404, f"{addr} is not suppressed in scope {sc}", slug="not-suppressed")
    body = resource(row)
    if history:
        body["history"] = [_history_item(h) for h in hist]
    return body


def _get_one(c: ApiContext, addr: str, sc: str, now: datetime, history: bool):
    with c.engine.connect() as conn:
        row = conn.execute(select(suppressions).where(
            suppressions.c.address == addr, suppressions.c.scope == sc, _active(now))).mappings().first()
        hist = []
        if row is not None and history:
            hist = conn.execute(select(suppression_history).where(
                suppression_history.c.address == addr, suppression_history.c.scope == sc)
                .order_by(desc(suppression_history.c.at), desc(suppression_history.c.id)).limit(100)).mappings().all()
    return row, hist


@router.put("/suppressions/{address}", status_code=200,
            responses={200: {"model": Suppression}, 201: {"model": Suppression},
                       **problem_responses(400, 401, 403, 413, 422)})
def put_suppression(c: Ctx, key: Annotated[ApiKey, Depends(WRITE)], address: str, body: SuppressionPut):
    """Suppress an address (idempotent upsert): 201 when created, 200 when it already was."""
    addr, sc = parse_address(address), parse_scope(body.scope, "scope")
    expires = utc(body.expires_at)
    with c.engine.begin() as conn:
        created = service.suppress(conn, addr, sc, body.reason, "api", key.actor, body.note, expires)
        row = conn.execute(select(suppressions).where(suppressions.c.address == addr,
                                                      suppressions.c.scope == sc)).mappings().first()
    c.kick_webhooks()
    return json_response(resource(row), 201 if created else 200)


@router.delete("/suppressions/{address}",
               responses={200: {"model": Deleted}, **problem_responses(401, 403, 404, 409, 422)})
def delete_suppression(c: Ctx, key: Annotated[ApiKey, Depends(WRITE)], address: str,
                       reason: str = Query(..., min_length=1, max_length=2000,
                                           description="why it is lifted; kept in the history"),
                       scope: str = Query("global", max_length=300), force: bool = False):
    """Lift a suppression (reactivation). Lifting a complaint needs force=true."""
    addr, sc = parse_address(address), parse_scope(scope)
    with c.engine.begin() as conn:
        _lift_checked(conn, addr, sc, reason, force, key.actor)
    c.kick_webhooks()
    return json_response({"address": addr, "scope": scope_object(sc), "deleted": True})


def _lift_checked(conn, addr: str, sc: str, why: str, force: bool, actor: str) -> None:
    row = conn.execute(select(suppressions.c.reason).where(
        suppressions.c.address == addr, suppressions.c.scope == sc)).first()
    if row is None:
        raise Problem(404, f"{addr} is not suppressed in scope {sc}", slug="not-suppressed")
    if row.reason == "complaint" and not force:
        raise Problem(409, "this suppression comes from a spam complaint; pass force=true to lift it",
                      slug="complaint-needs-force")
    service.lift(conn, addr, sc, why, actor)


@router.post("/suppressions/check", responses={200: {"model": CheckResponse}, **problem_responses(400, 401, 403, 413, 422)})
async def check(c: Ctx, key: Annotated[ApiKey, Depends(READ)], body: CheckRequest):
    """Which of up to 1000 addresses must not be mailed in `scope` (global entries always count)."""
    sc = parse_scope(body.scope)
    addrs = [parse_address(a, f"addresses.{i}") for i, a in enumerate(body.addresses)]
    scopes = ["global"] if sc == "global" else ["global", sc]
    now = datetime.now(timezone.utc)
    unique = sorted(set(addrs))
    if c.reader is not None:
        rows = [(r["address"], r["scope"], r["reason"]) for r in await c.reader.check(unique, scopes, now)]
    else:
        rows = await run_in_threadpool(_check_rows, c, unique, scopes, now)
    found: dict[str, tuple[str, str]] = {}
    for a, s, r in rows:
        if a not in found or s == "global":
            found[a] = (s, r)
    results = []
    for a in addrs:
        hit = found.get(a)
        results.append({"address": a, "suppressed": True, "reason": hit[1], "scope": scope_object(hit[0])}
                       if hit else {"address": a, "suppressed": False})
    return json_response({"results": results})


def _check_rows(c: ApiContext, addrs: list[str], scopes: list[str], now: datetime) -> list[tuple]:
    stmt = select(suppressions.c.address, suppressions.c.scope, suppressions.c.reason).where(
        suppressions.c.address.in_(addrs), suppressions.c.scope.in_(scopes), _active(now))
    with c.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(stmt)]


@router.post("/suppressions/batch", responses={200: {"model": BatchResponse}, **problem_responses(400, 401, 403, 413, 422)})
def batch(c: Ctx, key: Annotated[ApiKey, Depends(WRITE)], body: BatchRequest,
          idempotency_key: Annotated[str | None, Header(max_length=255)] = None):
    """Add or remove up to 1000 entries; one result per item (suppressed, removed, unchanged, failed)."""
    def write():
        results = []
        with c.engine.begin() as conn:
            for item in body.items:
                results.append(apply_item(conn, key.actor, item.action, item.address, item.scope, item.reason,
                                          item.note, item.expires_at, item.force))
        c.kick_webhooks()
        return 200, {"results": results}
    return run_once(c, key, idempotency_key, "batch:" + body.model_dump_json(), write)


def apply_item(conn, actor: str, action: str, address: str, scope: str, reason: str, note: str,
               expires_at: datetime | None, force: bool = False, origin: str = "api") -> dict:
    """Apply one add/remove; problems become a `failed` result instead of an error. `origin` is
    recorded on a suppression it creates: `api`, or `operator` for `bounceproc suppressions import`."""
    try:
        addr, sc = parse_address(address), parse_scope(scope)
    except Problem as exc:
        return {"address": address, "scope": scope, "result": "failed", "message": exc.detail}
    if action == "add":
        existing = conn.execute(select(suppressions.c.expires_at, suppressions.c.reason).where(
            suppressions.c.address == addr, suppressions.c.scope == sc)).first()
        if existing is not None and utc(existing.expires_at) == utc(expires_at) and not note:
            return {"address": addr, "scope": sc, "result": "unchanged", "message": ""}
        service.suppress(conn, addr, sc, reason, origin, actor, note, utc(expires_at))
        return {"address": addr, "scope": sc, "result": "suppressed", "message": ""}
    try:
        _lift_checked(conn, addr, sc, note or "removed through the API", force, actor)
    except Problem as exc:
        result = "unchanged" if exc.status == 404 else "failed"
        return {"address": addr, "scope": sc, "result": result, "message": exc.detail}
    return {"address": addr, "scope": sc, "result": "removed", "message": ""}


@router.get("/recipients/{address}/events", tags=["recipients"],
            responses={200: {"model": EventsPage}, **problem_responses(400, 401, 403, 422)})
def recipient_events(c: Ctx, key: Annotated[ApiKey, Depends(READ)], address: str,
                     limit: int = Query(100, ge=1, le=1000), cursor: str | None = Query(None, max_length=500)):
    """Events of one recipient, newest first (bounces, deferrals, complaints, unsubscribes; not
    deliveries, which the per-recipient index leaves out), and the suppression changes of the
    address (first page only)."""
    addr = parse_address(address)
    stmt = select(events).where(events.c.recipient == addr, events.c.type != "delivered")
    if cursor:
        at, row_id = decode_cursor(cursor, 2)
        if not isinstance(row_id, int) or not 0 <= row_id < 2**63:
            raise Problem(400, "the cursor is not one this API issued", slug="invalid-cursor")
        at = cursor_time(at)
        stmt = stmt.where(or_(events.c.occurred_at < at, and_(events.c.occurred_at == at, events.c.id < row_id)))
    stmt = stmt.order_by(desc(events.c.occurred_at), desc(events.c.id)).limit(limit + 1)
    with c.engine.connect() as conn:
        rows = conn.execute(stmt).mappings().all()
        changes = [] if cursor else [_history_item(h) for h in conn.execute(
            select(suppression_history).where(suppression_history.c.address == addr)
            .order_by(desc(suppression_history.c.at), desc(suppression_history.c.id)).limit(200)).mappings()]
    more = len(rows) > limit
    rows = rows[:limit]
    data = [{"id": r["event_key"], "type": r["type"], "occurred_at": rfc3339(r["occurred_at"]),
             "source": r["source"], "status": r["status"], "reply_code": r["reply_code"],
             "diagnostic": r["diagnostic"], "remote_mta": r["remote_mta"], "reason": r["reason"],
             "category": r["category"], "hard": r["hard"], "rule": r["rule"],
             "feedback_type": r["feedback_type"], "list_id": r["list_id"], "message_id": r["message_id"],
             "vmta": r["vmta"], "source_ip": r["source_ip"]} for r in rows]
    nxt = encode_cursor(utc(rows[-1]["occurred_at"]).isoformat(), rows[-1]["id"]) if more and rows else None
    return json_response({"data": data, "suppression_changes": changes, "next_cursor": nxt})


@router.get("/blocks", tags=["blocks"], responses={200: {"model": BlocksResponse}, **problem_responses(401, 403, 422)})
def blocks(c: Ctx, key: Annotated[ApiKey, Depends(READ)], since: date | None = None, until: date | None = None,
           recipient_domain: str | None = Query(None, max_length=255), vmta: str | None = Query(None, max_length=128),
           limit: int = Query(100, ge=1, le=1000)):
    """Counters of blocks that never suppress recipients (reputation, policy, rate limits), per
    receiving domain, virtual MTA / sending IP, reason and category, busiest first."""
    bc = block_counters.c
    stmt = select(bc.recipient_domain, bc.vmta, bc.source_ip, bc.reason, bc.category,
                  func.sum(bc.count).label("count"), func.max(bc.last_at).label("last_at"),
                  func.min(bc.day).label("first_day"), func.max(bc.day).label("last_day"))
    if since:
        stmt = stmt.where(bc.day >= since.isoformat())
    if until:
        stmt = stmt.where(bc.day <= until.isoformat())
    if recipient_domain:
        stmt = stmt.where(bc.recipient_domain == recipient_domain.lower())
    if vmta:
        stmt = stmt.where(bc.vmta == vmta)
    stmt = (stmt.group_by(bc.recipient_domain, bc.vmta, bc.source_ip, bc.reason, bc.category)
            .order_by(desc("count"), bc.recipient_domain).limit(limit))
    with c.engine.connect() as conn:
        data = [{"recipient_domain": r.recipient_domain, "vmta": r.vmta, "source_ip": r.source_ip,
                 "reason": r.reason, "category": r.category, "count": int(r.count),
                 "first_day": r.first_day, "last_day": r.last_day, "last_at": rfc3339(r.last_at)}
                for r in conn.execute(stmt)]
    return json_response({"data": data})
