"""API keys: create, look up by bearer token, revoke. Only a SHA-256 of each key is stored.

Adapter layer (SQLAlchemy Core).
A key reads `bp_<key_id>_<secret>`: `key_id` is public (logs, history actor `api:<key_id>`), the
secret has 256 bits, so a plain SHA-256 is enough (no slow hash is needed for random keys).
Scopes: `suppressions:read`, `suppressions:write`, `webhooks:admin`, or `admin` (all of them);
`suppressions:write` implies `suppressions:read`.
Lookups are cached in-process for a few seconds so a hot check endpoint costs no extra query;
a revoked key therefore stops working within CACHE_SECONDS.
"""
from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Engine

from bounceproc.storage.api_tables import api_keys

SCOPES = ("suppressions:read", "suppressions:write", "webhooks:admin", "dashboard:read", "admin")
IMPLIED = {
    "admin": frozenset(SCOPES),
    "suppressions:write": frozenset({"suppressions:write", "suppressions:read"}),
}
CACHE_SECONDS = 5.0
CACHE_MAX = 10_000


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        return scope in self.scopes

    @property
    def actor(self) -> str:
        return f"api:{self.key_id}"


def expand_scopes(scopes: list[str] | tuple[str, ...]) -> frozenset[str]:
    out: set[str] = set()
    for s in scopes:
        out |= IMPLIED.get(s, {s})
    return frozenset(out)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_key(conn, scopes: list[str], name: str = "") -> str:
    """Insert a new key and return its full text (shown once, never stored)."""
    bad = [s for s in scopes if s not in SCOPES]
    if bad or not scopes:
        raise ValueError(f"unknown scope(s) {bad or scopes}; choose from {', '.join(SCOPES)}")
    key_id = secrets.token_hex(6)
    token = f"bp_{key_id}_{secrets.token_urlsafe(32)}"
    conn.execute(insert(api_keys), {"key_id": key_id, "key_hash": _digest(token),
                                    "scopes": " ".join(sorted(set(scopes))), "name": name,
                                    "created_at": datetime.now(timezone.utc)})
    return token


def revoke_key(conn, key_id: str) -> bool:
    res = conn.execute(update(api_keys).where(api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None))
                       .values(revoked_at=datetime.now(timezone.utc)))
    return res.rowcount > 0


class KeyStore:
    """Resolve bearer tokens to keys, with a short in-process cache (hits and misses)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._cache: dict[str, tuple[float, ApiKey | None]] = {}
        self._lock = threading.Lock()

    def lookup(self, token: str) -> ApiKey | None:
        if not token.startswith("bp_") or len(token) > 200:
            return None
        digest = _digest(token)
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit and hit[0] > now:
            return hit[1]
        with self._engine.connect() as conn:
            row = conn.execute(select(api_keys.c.key_id, api_keys.c.scopes)
                               .where(api_keys.c.key_hash == digest, api_keys.c.revoked_at.is_(None))).first()
        key = ApiKey(row.key_id, expand_scopes(row.scopes.split())) if row else None
        with self._lock:
            if len(self._cache) >= CACHE_MAX:
                self._cache.clear()
            self._cache[digest] = (now + CACHE_SECONDS, key)
        return key
