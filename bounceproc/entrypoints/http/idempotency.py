"""`Idempotency-Key` on writes: the first response is stored and replayed for the same request.

Adapter layer (SQLAlchemy Core). Keys are per API key; a key reused with a different request body
is a 422 problem. Stored responses older than RETENTION are ignored (and pruned by the writer).
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from sqlalchemy import delete, select
from starlette.responses import Response

from bounceproc.entrypoints.http.common import ApiContext, json_response
from bounceproc.entrypoints.http.problems import Problem
from bounceproc.storage.api_keys import ApiKey
from bounceproc.storage.api_tables import idempotency_keys
from bounceproc.storage.dialect import conflict_insert

RETENTION = timedelta(hours=24)
MAX_KEY = 255


def run_once(c: ApiContext, key: ApiKey, idem: str | None, request_id: str,
             write: Callable[[], tuple[int, object]]) -> Response:
    """Call `write()` -> (status, body) unless this Idempotency-Key already answered."""
    if not idem:
        status, body = write()
        return json_response(body, status)
    if len(idem) > MAX_KEY:
        raise Problem(422, f"Idempotency-Key is longer than {MAX_KEY} characters", slug="invalid-idempotency-key")
    digest = hashlib.sha256(request_id.encode()).hexdigest()
    now = datetime.now(timezone.utc)
    with c.engine.connect() as conn:
        row = conn.execute(select(idempotency_keys).where(
            idempotency_keys.c.api_key_id == key.key_id, idempotency_keys.c.key == idem,
            idempotency_keys.c.created_at > now - RETENTION)).mappings().first()
    if row is not None:
        if row["request_hash"] != digest:
            raise Problem(422, "this Idempotency-Key was used for a different request",
                          slug="idempotency-key-reused")
        return Response(row["body"], status_code=row["status_code"], media_type="application/json",
                        headers={"Idempotent-Replayed": "true"})
    status, body = write()
    text = json.dumps(body, separators=(",", ":"), default=str)
    with c.engine.begin() as conn:
        conn.execute(delete(idempotency_keys).where(idempotency_keys.c.created_at < now - RETENTION)
                     .where(idempotency_keys.c.api_key_id == key.key_id))
        conn.execute(conflict_insert(conn, idempotency_keys).on_conflict_do_nothing(), {
            "api_key_id": key.key_id, "key": idem, "request_hash": digest, "status_code": status,
            "body": text, "created_at": now})
    return Response(text, status_code=status, media_type="application/json")
