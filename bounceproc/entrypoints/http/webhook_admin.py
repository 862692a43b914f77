"""/v1/webhook-endpoints and /v1/webhook-deliveries: endpoints, secret rotation, delivery log, replay.

Adapter layer. A URL is checked by the SSRF guard (outbound/ssrf.py) on creation and change, and
again before every delivery. The secret is shown once, when created or rotated. During a rotation
the previous secret keeps signing (a second signature) for `keep_old_seconds`.
"""
from __future__ import annotations

import secrets
from datetime import datetime, timedelta, timezone
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from sqlalchemy import desc, insert, select, update

from bounceproc.outbound import webhooks
from bounceproc.entrypoints.http.common import (
    ApiContext, ctx, decode_cursor, encode_cursor, json_response, problem_responses, require, rfc3339,
)
from bounceproc.entrypoints.http.models import (
    Delivery, DeliveryPage, Endpoint, EndpointCreate, EndpointList, EndpointPatch, Replayed, ReplayRange,
    RotateSecret,
)
from bounceproc.entrypoints.http.problems import Problem
from bounceproc.storage.api_keys import ApiKey
from bounceproc.storage.api_tables import webhook_attempts, webhook_deliveries, webhook_endpoints
from bounceproc.outbound.ssrf import UnsafeTarget, check_url
from bounceproc.domain.webhook_signing import secret_from_bytes

router = APIRouter(prefix="/v1", tags=["webhooks"])
ADMIN = require("webhooks:admin")
Ctx = Annotated[ApiContext, Depends(ctx)]
Admin = Annotated[ApiKey, Depends(ADMIN)]
MAX_ID = 2**63 - 1


def _endpoint(row, secret: str | None = None) -> dict:
    out = {"id": row["endpoint_id"], "url": row["url"], "event_types": list(row["event_types"] or []),
           "description": row["description"], "enabled": bool(row["enabled"]),
           "disabled_reason": row["disabled_reason"], "failing_since": rfc3339(row["failing_since"]),
           "created_at": rfc3339(row["created_at"]), "updated_at": rfc3339(row["updated_at"])}
    if secret:
        out["secret"] = secret
    return out


def _checked_url(c: ApiContext, url: str) -> str:
    try:
        check_url(url, c.settings.webhook_allow)
    except UnsafeTarget as exc:
        raise Problem(422, str(exc), slug="unsafe-webhook-url",
                      errors=[{"field": "url", "message": str(exc)}]) from exc
    return url


def _load(conn, endpoint_id: str):
    row = conn.execute(select(webhook_endpoints).where(webhook_endpoints.c.endpoint_id == endpoint_id)).mappings().first()
    if row is None:
        raise Problem(404, f"no webhook endpoint {endpoint_id}", slug="no-such-endpoint")
    return row


@router.post("/webhook-endpoints", status_code=201,
             responses={201: {"model": Endpoint}, **problem_responses(400, 401, 403, 413, 422)})
def create_endpoint(c: Ctx, key: Admin, body: EndpointCreate):
    """Register an endpoint; the response carries its `whsec_` secret, shown only this once."""
    url = _checked_url(c, body.url)
    secret = secret_from_bytes(secrets.token_bytes(32))
    now = datetime.now(timezone.utc)
    endpoint_id = "ep_" + secrets.token_hex(10)
    with c.engine.begin() as conn:
        conn.execute(insert(webhook_endpoints), {
            "endpoint_id": endpoint_id, "url": url, "event_types": sorted(set(body.event_types)),
            "description": body.description, "secrets": [{"secret": secret, "expires_at": None}],
            "enabled": True, "disabled_reason": "", "failing_since": None, "created_at": now, "updated_at": now})
        row = _load(conn, endpoint_id)
    return json_response(_endpoint(row, secret), 201)


@router.get("/webhook-endpoints", responses={200: {"model": EndpointList}, **problem_responses(401, 403)})
def list_endpoints(c: Ctx, key: Admin):
    with c.engine.connect() as conn:
        rows = conn.execute(select(webhook_endpoints).order_by(webhook_endpoints.c.id).limit(1000)).mappings().all()
    return json_response({"data": [_endpoint(r) for r in rows]})


@router.get("/webhook-endpoints/{endpoint_id}", responses={200: {"model": Endpoint}, **problem_responses(401, 403, 404)})
def get_endpoint(c: Ctx, key: Admin, endpoint_id: str):
    with c.engine.connect() as conn:
        return json_response(_endpoint(_load(conn, endpoint_id)))


@router.patch("/webhook-endpoints/{endpoint_id}",
              responses={200: {"model": Endpoint}, **problem_responses(400, 401, 403, 404, 422)})
def patch_endpoint(c: Ctx, key: Admin, endpoint_id: str, body: EndpointPatch):
    """Change the URL, event types or description; `enabled: true` re-enables a disabled endpoint."""
    values: dict = {"updated_at": datetime.now(timezone.utc)}
    if body.url is not None:
        values["url"] = _checked_url(c, body.url)
    if body.event_types is not None:
        values["event_types"] = sorted(set(body.event_types))
    if body.description is not None:
        values["description"] = body.description
    if body.enabled is not None:
        values.update(enabled=body.enabled, disabled_reason="" if body.enabled else "disabled through the API",
                      failing_since=None)
    with c.engine.begin() as conn:
        _load(conn, endpoint_id)
        conn.execute(update(webhook_endpoints).where(webhook_endpoints.c.endpoint_id == endpoint_id).values(**values))
        row = _load(conn, endpoint_id)
    return json_response(_endpoint(row))


@router.delete("/webhook-endpoints/{endpoint_id}", status_code=204, response_model=None,
               responses={204: {"description": "deleted"}, **problem_responses(401, 403, 404)})
def delete_endpoint(c: Ctx, key: Admin, endpoint_id: str):
    """Delete an endpoint and its pending deliveries (the log of past deliveries goes with it)."""
    with c.engine.begin() as conn:
        row = _load(conn, endpoint_id)
        conn.execute(webhook_deliveries.delete().where(webhook_deliveries.c.endpoint_id == row["id"]))
        conn.execute(webhook_endpoints.delete().where(webhook_endpoints.c.id == row["id"]))
    from starlette.responses import Response
    return Response(status_code=204)


@router.post("/webhook-endpoints/{endpoint_id}/rotate-secret",
             responses={200: {"model": Endpoint}, **problem_responses(400, 401, 403, 404, 422)})
def rotate_secret(c: Ctx, key: Admin, endpoint_id: str, body: RotateSecret | None = None):
    """A new secret (returned once); the old one keeps signing for `keep_old_seconds`."""
    keep = (body or RotateSecret()).keep_old_seconds
    now = datetime.now(timezone.utc)
    new = secret_from_bytes(secrets.token_bytes(32))
    with c.engine.begin() as conn:
        row = _load(conn, endpoint_id)
        old = [s for s in webhooks.active_secrets(row["secrets"], now)]
        until = (now + timedelta(seconds=keep)).isoformat()
        kept = [{"secret": s, "expires_at": until} for s in old[:1]] if keep else []
        conn.execute(update(webhook_endpoints).where(webhook_endpoints.c.id == row["id"])
                     .values(secrets=[{"secret": new, "expires_at": None}] + kept, updated_at=now))
        row = _load(conn, endpoint_id)
    return json_response(_endpoint(row, new))


def _delivery(row, endpoint_id: str, attempts: list | None = None) -> dict:
    out = {"id": row["id"], "endpoint_id": endpoint_id, "webhook_id": row["webhook_id"], "type": row["type"],
           "state": row["state"], "attempts": row["attempts"],
           "next_attempt_at": rfc3339(row["next_attempt_at"]) if row["state"] == "pending" else None,
           "last_status": row["last_status"], "last_error": row["last_error"],
           "created_at": rfc3339(row["created_at"]), "delivered_at": rfc3339(row["delivered_at"])}
    if attempts is not None:
        out["attempt_log"] = [{"at": rfc3339(a["attempted_at"]), "status_code": a["status_code"],
                               "latency_ms": a["latency_ms"], "error": a["error"],
                               "response": a["response_snippet"]} for a in attempts]
    return out


@router.get("/webhook-endpoints/{endpoint_id}/deliveries",
            responses={200: {"model": DeliveryPage}, **problem_responses(400, 401, 403, 404, 422)})
def list_deliveries(c: Ctx, key: Admin, endpoint_id: str,
                    state: str | None = Query(None, pattern="^(pending|delivered|failed)$"),
                    limit: int = Query(100, ge=1, le=1000), cursor: str | None = Query(None, max_length=200)):
    """The delivery log of an endpoint, newest first."""
    with c.engine.connect() as conn:
        ep = _load(conn, endpoint_id)
        stmt = select(webhook_deliveries).where(webhook_deliveries.c.endpoint_id == ep["id"])
        if state:
            stmt = stmt.where(webhook_deliveries.c.state == state)
        if cursor:
            (before,) = decode_cursor(cursor, 1)
            if not isinstance(before, int) or not 0 < before <= MAX_ID:
                raise Problem(400, "the cursor is not one this API issued", slug="invalid-cursor")
            stmt = stmt.where(webhook_deliveries.c.id < before)
        rows = conn.execute(stmt.order_by(desc(webhook_deliveries.c.id)).limit(limit + 1)).mappings().all()
    more = len(rows) > limit
    rows = rows[:limit]
    return json_response({"data": [_delivery(r, endpoint_id) for r in rows],
                          "next_cursor": encode_cursor(rows[-1]["id"]) if more and rows else None})


def _load_delivery(conn, delivery_id: int):
    row = conn.execute(select(webhook_deliveries, webhook_endpoints.c.endpoint_id.label("ep_public"))
                       .join(webhook_endpoints, webhook_endpoints.c.id == webhook_deliveries.c.endpoint_id)
                       .where(webhook_deliveries.c.id == delivery_id)).mappings().first()
    if row is None:
        raise Problem(404, f"no webhook delivery {delivery_id}", slug="no-such-delivery")
    return row


@router.get("/webhook-deliveries/{delivery_id}", responses={200: {"model": Delivery}, **problem_responses(401, 403, 404, 422)})
def get_delivery(c: Ctx, key: Admin, delivery_id: Annotated[int, Path(ge=1, le=MAX_ID)]):
    """One delivery with every attempt (status, latency, response snippet)."""
    with c.engine.connect() as conn:
        row = _load_delivery(conn, delivery_id)
        attempts = conn.execute(select(webhook_attempts).where(webhook_attempts.c.delivery_id == delivery_id)
                                .order_by(webhook_attempts.c.id).limit(100)).mappings().all()
    return json_response(_delivery(row, row["ep_public"], attempts))


@router.post("/webhook-deliveries/{delivery_id}/replay",
             responses={200: {"model": Delivery}, **problem_responses(401, 403, 404, 422)})
def replay_delivery(c: Ctx, key: Admin, delivery_id: Annotated[int, Path(ge=1, le=MAX_ID)]):
    """Send this delivery again now (same webhook-id), whatever its state."""
    with c.engine.begin() as conn:
        _load_delivery(conn, delivery_id)
        webhooks.replay(conn, [delivery_id])
        row = _load_delivery(conn, delivery_id)
    c.kick_webhooks()
    return json_response(_delivery(row, row["ep_public"]))


@router.post("/webhook-endpoints/{endpoint_id}/replay",
             responses={200: {"model": Replayed}, **problem_responses(400, 401, 403, 404, 422)})
def replay_range(c: Ctx, key: Admin, endpoint_id: str, body: ReplayRange):
    """Send again every delivery of the endpoint created in [since, until) (failed ones only by default)."""
    with c.engine.begin() as conn:
        ep = _load(conn, endpoint_id)
        stmt = select(webhook_deliveries.c.id).where(webhook_deliveries.c.endpoint_id == ep["id"],
                                                      webhook_deliveries.c.created_at >= body.since)
        if body.until:
            stmt = stmt.where(webhook_deliveries.c.created_at < body.until)
        if body.only_failed:
            stmt = stmt.where(webhook_deliveries.c.state == "failed")
        ids = list(conn.execute(stmt.limit(100_000)).scalars())
        webhooks.replay(conn, ids)
    c.kick_webhooks()
    return json_response({"replayed": len(ids)})
