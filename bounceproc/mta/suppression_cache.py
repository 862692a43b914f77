"""Suppression checks for the sending core: batched lookups, cached briefly.

Adapter layer (asyncio; the lookup runs in a thread). In: the recipients about to be sent and,
on a miss, the recipients waiting next in the queues (`upcoming`). Out: {address: {scope: reason}}
for the asked addresses ({} = not suppressed). Which scope stops which message is decided by
bounceproc.domain.mta.suppression_skip.

- One lookup serves many sends: on a miss, up to `prefetch` more addresses that are not fresh in
  the cache are taken from `upcoming` and fetched in the same query, so a queue of 10,000
  recipients costs about 10,000 / prefetch queries, not one per transaction.
- Entries live `ttl` seconds on the MTA's clock. A recipient whose next attempt comes after a
  retry interval longer than the ttl is looked up again, so a suppression made while a message
  waits in the queue is honoured at its next attempt. One lookup runs at a time; callers that
  missed wait for it and then read the cache.
- Memory is bounded: past `max_entries` the oldest entries are dropped.
"""
from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterable
from datetime import datetime, timezone

from bounceproc.domain.address import try_normalise

Fetch = Callable[[list[str]], dict[str, dict[str, str]]]


class SuppressionCache:
    def __init__(self, fetch: Fetch, now: Callable[[], float], *, ttl: float = 30.0,
                 prefetch: int = 2000, max_entries: int = 500_000) -> None:
        self.fetch, self.now, self.ttl = fetch, now, ttl
        self.prefetch, self.max_entries = prefetch, max_entries
        self._entries: dict[str, tuple[float, dict[str, str]]] = {}   # insertion order = age
        self._lock = asyncio.Lock()
        self.lookups = 0              # queries made (for counters and tests)
        self.addresses_fetched = 0

    def _fresh(self, address: str, now: float) -> dict[str, str] | None:
        hit = self._entries.get(address)
        return hit[1] if hit is not None and hit[0] > now else None

    async def scopes(self, recipients: Iterable[str], upcoming: Iterable[str] = ()) -> dict[str, dict[str, str]]:
        """{recipient: {scope: reason}} for each recipient as given (normalised for the lookup)."""
        keys = {r: try_normalise(r) for r in recipients}
        now = self.now()
        missing = {k for k in keys.values() if k and self._fresh(k, now) is None}
        if missing:
            async with self._lock:
                now = self.now()
                missing = {k for k in missing if self._fresh(k, now) is None}
                if missing:
                    await self._load(missing, upcoming, now)
        now = self.now()
        out = {}
        for r, k in keys.items():
            entry = self._entries.get(k) if k else None
            out[r] = entry[1] if entry is not None else {}
        return out

    async def _load(self, missing: set[str], upcoming: Iterable[str], now: float) -> None:
        wanted = set(missing)
        for r in itertools.islice((try_normalise(u) for u in upcoming), self.prefetch * 20):
            if len(wanted) >= len(missing) + self.prefetch:
                break
            if r and r not in wanted and self._fresh(r, now) is None:
                wanted.add(r)
        found = await asyncio.to_thread(self.fetch, sorted(wanted))
        self.lookups += 1
        self.addresses_fetched += len(wanted)
        expires = self.now() + self.ttl
        for a in wanted:
            self._entries.pop(a, None)
            self._entries[a] = (expires, found.get(a, {}))
        overflow = len(self._entries) - self.max_entries
        if overflow > 0:
            for a in list(itertools.islice(iter(self._entries), overflow)):
                del self._entries[a]


def sql_fetch(engine) -> Fetch:
    """The lookup over bounceproc's database (storage.suppression_lookup), for SuppressionCache."""
    from bounceproc.storage.suppression_lookup import active_suppressions

    def fetch(addresses: list[str]) -> dict[str, dict[str, str]]:
        with engine.connect() as conn:
            return active_suppressions(conn, addresses, datetime.now(timezone.utc))
    return fetch
