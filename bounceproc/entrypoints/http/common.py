"""What every API route shares: the app context, authentication, addresses, scopes, cursors, times.

Adapter layer. Addresses are validated and normalised by the one normaliser
(domain/address.py), like everywhere else.
Scopes are written `global`, `list:<id>` or `domain:<sending domain>` in queries and bodies and
shown as `{"type": ..., "id": ...}` in resources.
"""
from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.engine import Engine
from starlette.responses import Response

from bounceproc.entrypoints.http.problems import Problem
from bounceproc.storage.api_keys import ApiKey, KeyStore
from bounceproc.config import Settings
from bounceproc.domain.address import MAX_DOMAIN, MAX_LOCAL, MAX_TOTAL, AddressError, normalise_address

MAX_SCOPE_ID = 255
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_HOST_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_PLAIN = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@{_HOST_LABEL}(?:\.{_HOST_LABEL})+")
_HOST_NAME = re.compile(rf"{_HOST_LABEL}(?:\.{_HOST_LABEL})+")
_SCOPE_ID = re.compile(rf"^[^\s\x00-\x1f\x7f]{{1,{MAX_SCOPE_ID}}}$")


@dataclass
class ApiContext:
    settings: Settings
    engine: Engine
    keys: KeyStore
    kick_webhooks: Any          # callable() -> None, wakes the webhook sender after a commit
    reader: Any = None          # PgReader for the hot reads on PostgreSQL, None elsewhere
    imports: Any = None         # imports.ImportRunner of `bounceproc serve` (embedded), else None


async def ctx(request: Request) -> ApiContext:
    # async: FastAPI would otherwise run a plain function on the threadpool (a hop per request)
    return request.app.state.ctx


bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer bp_…`")


def require(scope: str):
    """Dependency: the caller's API key, which must carry `scope`."""
    async def dependency(request: Request,
                         cred: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> ApiKey:
        # Runs on the event loop: a cached key costs no I/O; a miss is one indexed query.
        if cred is None or cred.scheme.lower() != "bearer":
            raise Problem(401, "an API key is required: Authorization: Bearer <key>", slug="unauthorized",
                          headers={"WWW-Authenticate": "Bearer"})
        key = request.app.state.ctx.keys.lookup(cred.credentials)
        if key is None:
            raise Problem(401, "the API key is unknown or revoked", slug="unauthorized",
                          headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        if not key.allows(scope):
            raise Problem(403, f"the API key lacks the scope {scope}", slug="forbidden")
        return key
    return dependency


def parse_address(raw: str, field: str = "address") -> str:
    """The normalised address (domain/address.py), or a 422 problem naming the field.

    The API accepts exactly what the one normaliser accepts, which is what the parsers store
    (issue 13, item 7): every stored key can be read, written and lifted here.
    """
    if raw and _PLAIN.fullmatch(raw):
        # The bulk check's common case: a plain ASCII dot-atom, which normalise_address would
        # only lower-case, within its limits (domain/address.py's, not a copy of them).
        local, _, domain = raw.rpartition("@")
        if len(local) <= MAX_LOCAL and len(domain) <= MAX_DOMAIN and len(raw) <= MAX_TOTAL:
            return raw.lower()
    try:
        return normalise_address(raw or "")
    except AddressError as exc:
        problem = "is not an email address (local@domain)"
        raise Problem(422, f"{field} {problem}", slug="invalid-address",
                      errors=[{"field": field, "message": problem}]) from exc


def parse_scope(raw: str | None, field: str = "scope") -> str:
    """`global`, `list:<id>` or `domain:<sending domain>`; a 422 problem otherwise."""
    raw = (raw or "global").strip()
    if raw == "global":
        return raw
    kind, sep, ident = raw.partition(":")
    if sep and kind == "list" and _SCOPE_ID.match(ident):
        return raw
    if sep and kind == "domain" and ident:
        # a sending domain is a host name (stricter than a recipient's domain)
        try:
            domain = parse_address("x@" + ident, field).split("@", 1)[1]
        except Problem:
            domain = ""
        if _HOST_NAME.fullmatch(domain):
            return "domain:" + domain
    raise Problem(422, f"{field} must be global, list:<id> or domain:<sending domain>",
                  slug="invalid-scope", errors=[{"field": field, "message": "invalid scope"}])


def scope_object(scope: str) -> dict[str, str]:
    if scope == "global":
        return {"type": "global"}
    kind, _, ident = scope.partition(":")
    return {"type": kind, "id": ident}


def utc(dt: datetime | None) -> datetime | None:
    if dt is None:
        return None
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


def rfc3339(dt: datetime | None) -> str | None:
    dt = utc(dt)
    if dt is None:
        return None
    text = dt.strftime("%Y-%m-%dT%H:%M:%S")
    return text + (f".{dt.microsecond:06d}Z" if dt.microsecond else "Z")


def encode_cursor(*parts: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts, default=str).encode()).rstrip(b"=").decode()


def decode_cursor(cursor: str, n: int) -> list:
    """The parts of a cursor made by encode_cursor; a 400 problem if it is not one."""
    try:
        parts = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(parts, list) or len(parts) != n:
            raise ValueError
        return parts
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise Problem(400, "the cursor is not one this API issued", slug="invalid-cursor",
                      errors=[{"field": "cursor", "message": "invalid cursor"}]) from exc


def cursor_time(text: Any) -> datetime:
    try:
        return utc(datetime.fromisoformat(str(text)))
    except ValueError as exc:
        raise Problem(400, "the cursor is not one this API issued", slug="invalid-cursor") from exc


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body, separators=(",", ":"), default=str), status_code=status,
                    headers=headers, media_type="application/json")


def problem_responses(*codes: int) -> dict[int | str, dict]:
    """OpenAPI `responses` entries for problem documents."""
    schema = {"content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
    return {c: {"description": "problem (RFC 9457)", **schema} for c in codes}
