"""Suppression checks for the sending core: batched lookups, cached briefly.

Adapter layer (asyncio; the lookup runs in a thread). In: the recipients about to be sent and,
on a miss, the recipients waiting next in the queues (`upcoming`). Out: {address: {scope: reason}}
for the asked addresses ({} = not suppressed). Which scope stops which message is decided by
bounceproc.domain.mta.suppression_skip.

- One lookup serves many sends: on a miss, up to `prefetch` more addresses that are not fresh in
  the cache are taken from `upcoming` and fetched in the same query, so a queue of 10,000
  recipients costs about 10,000 / prefetch queries, not one per transaction.
- Entries live `ttl` seconds on the MTA's clock (`suppression-cache-ttl`, default 30s; 0 = ask
  the database before every transaction). A recipient whose next attempt comes after a
  retry interval longer than the ttl is looked up again, so a suppression made while a message
  waits in the queue is honoured at its next attempt. One lookup runs at a time; callers that
  missed meanwhile wait for it, and the next lookup fetches all their misses at once (with many
  connections sending, one query serves every transaction that started during the previous one).
- Memory is bounded: past `max_entries` the oldest entries are dropped.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timezone

from bounceproc.domain.address import try_normalise

log = logging.getLogger("bounceproc.mta")
Fetch = Callable[[list[str]], dict[str, dict[str, str]]]


class SuppressionCache:
    def __init__(self, fetch: Fetch, now: Callable[[], float], *, ttl: float | Callable[[], float] = 30.0,
                 prefetch: int = 2000, max_entries: int = 500_000) -> None:
        self.fetch, self.now = fetch, now
        self.ttl = ttl if callable(ttl) else (lambda: ttl)
        self.prefetch, self.max_entries = prefetch, max_entries
        self._entries: dict[str, tuple[float, dict[str, str]]] = {}   # insertion order = age
        self._lock = asyncio.Lock()
        self._pending: set[str] = set()   # misses of callers waiting for the lookup in flight
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
            self._pending.update(missing)
            async with self._lock:
                now = self.now()
                if any(self._fresh(k, now) is None for k in missing):
                    wanted = {k for k in self._pending | missing if self._fresh(k, now) is None}
                    self._pending.clear()
                    await self._load(wanted, upcoming, now)
        out = {}
        for r, k in keys.items():
            entry = self._entries.get(k) if k else None
            out[r] = entry[1] if entry is not None else {}
        return out

    def forget(self, recipient: str) -> None:
        """Drop one address: after a bounce a suppression is likely on its way (DSN, acct pipe)."""
        key = try_normalise(recipient)
        if key:
            self._entries.pop(key, None)

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
        expires = self.now() + self.ttl()
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


class SuppressionFilter:
    """The pre-delivery RecipientFilter (bounceproc.mta.hooks): suppressed recipients are refused.

    `mta()` gives the running engine: its queues supply the upcoming recipients to prefetch, its
    spool the message head when only a list-scoped suppression could apply (the list id of a
    message is read once and remembered while the message is queued). When the database cannot
    be read the recipients are sent unchecked (logged once a minute, counted in `unchecked`):
    mail keeps flowing, and the acct records still reach bounceproc.
    """

    def __init__(self, cache: SuppressionCache, mta: Callable[[], object], activity=None) -> None:
        self.cache, self.mta, self.activity = cache, mta, activity
        self._list_ids: dict[str, str] = {}
        self._last_error_log = 0.0
        self.unchecked = 0            # recipients sent without a check (database errors)

    def _upcoming(self, queue):
        mta = self.mta()
        own = mta.queues.get(queue)
        if own is not None:
            yield from (j.rcpt for j in own.ready)
        for key, q in list(mta.queues.items()):
            if key != queue:
                yield from (j.rcpt for j in q.ready)

    def _list_id(self, msg) -> str:
        from bounceproc.domain.mta.outgoing import message_headers, message_list_id
        hit = self._list_ids.get(msg.id)
        if hit is None:
            head = self.mta().spool.read(msg)
            hit = message_list_id(message_headers(head))
            if len(self._list_ids) > 100_000:
                self._list_ids.clear()
            self._list_ids[msg.id] = hit
        return hit

    def on_reply(self, queue, reply, state, now):
        """ReplyObserver: a recipient that just bounced is looked up afresh next time."""
        if reply.rcpt and reply.code >= 500:
            self.cache.forget(reply.rcpt)
        return None

    async def filter(self, queue, jobs: list) -> dict:
        from bounceproc.domain.mta.suppression_skip import SKIP_STATUS, skip_diag, suppressing
        from bounceproc.mta.hooks import Refusal
        try:
            found = await self.cache.scopes([j.rcpt for j in jobs], self._upcoming(queue))
        except Exception as exc:  # noqa: BLE001 - the database is away: deliver rather than stall
            now = time.monotonic()
            if now - self._last_error_log > 60:
                self._last_error_log = now
                log.error("suppression check failed, sending unchecked: %s", exc)
            self.unchecked += len(jobs)
            return {}
        refused = {}
        for job in jobs:
            scopes = found.get(job.rcpt)
            if not scopes:
                continue
            list_id = "" if "global" in scopes else self._list_id(job.msg)
            hit = suppressing(scopes, list_id)
            if hit is not None:
                refused[job] = Refusal(SKIP_STATUS, skip_diag(*hit), notify_sender=False)
                if self.activity is not None:
                    self.activity.add("skipped", str(queue), job.rcpt, f"suppressed ({hit[0]}: {hit[1]})",
                                      self.mta().clock.now())
        return refused
