"""Which of many addresses are suppressed, and in which scopes: the sending core's batch read.

Adapter layer (SQLAlchemy Core; on PostgreSQL one `JOIN unnest(array)` statement whatever the
number of addresses, on SQLite one statement per 900). In: normalised addresses and the time.
Out: {address: {scope: reason}} for the addresses with an active suppression (not expired).
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from bounceproc.storage.suppression_store import _select_in
from bounceproc.storage.tables import suppressions


def active_suppressions(conn, addresses: Iterable[str], now: datetime) -> dict[str, dict[str, str]]:
    rows = _select_in(conn, suppressions, "address", sorted(set(addresses)),
                      ("address", "scope", "reason", "expires_at"), lock=False)
    found: dict[str, dict[str, str]] = {}
    for address, scope, reason, expires_at in rows:
        if expires_at is None or expires_at > now:
            found.setdefault(address, {})[scope] = reason
    return found
