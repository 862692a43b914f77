"""Suppression checks before delivery, on real PostgreSQL and SQLite: batched, briefly cached,
and a suppression made while a recipient waits is honoured at its next attempt."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import create_engine

from bounceproc.mta.suppression_cache import SuppressionCache, sql_fetch
from bounceproc.storage.suppression_store import insert_suppressions

NOW = datetime.now(timezone.utc)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request):
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "fresh_pg_url")
    eng = create_engine(url)
    yield eng
    eng.dispose()


def suppress(engine, address, scope="global", reason="hard_bounce", expires_at=None):
    row = {"address": address, "scope": scope, "reason": reason, "origin": "system", "category": "",
           "bounce_reason": "", "rule": "", "source": "test", "event_key": "", "status": "", "diagnostic": "",
           "note": "", "created_at": NOW, "updated_at": NOW, "expires_at": expires_at}
    with engine.begin() as conn:
        insert_suppressions(conn, [row])


class Clock:
    t = 1000.0

    def now(self):
        return self.t


def test_a_queue_of_10000_recipients_costs_a_handful_of_lookups(engine):
    for i in range(0, 10000, 97):
        suppress(engine, f"user{i}@example.com")
    suppress(engine, "user1@example.com", scope="list:news", reason="unsubscribe")
    suppress(engine, "user2@example.com", expires_at=NOW - timedelta(days=1))      # expired: not suppressed
    rcpts = [f"User{i}@Example.com" for i in range(10000)]
    clock = Clock()
    cache = SuppressionCache(sql_fetch(engine), clock.now, prefetch=2000)

    async def walk():
        seen = {}
        for i, r in enumerate(rcpts):            # one transaction per recipient, as the queue sends them
            seen.update(await cache.scopes([r], upcoming=rcpts[i + 1:i + 5000]))
        return seen
    seen = asyncio.run(walk())
    assert cache.lookups <= 6
    suppressed = {r for r, s in seen.items() if s}
    assert suppressed == {f"User{i}@Example.com" for i in range(0, 10000, 97)} | {"User1@Example.com"}
    assert seen["User0@Example.com"] == {"global": "hard_bounce"}
    assert seen["User1@Example.com"] == {"list:news": "unsubscribe"}
    assert seen["User2@Example.com"] == {}


def test_a_suppression_made_while_the_recipient_waits_is_honoured_at_the_next_attempt(engine):
    clock = Clock()
    cache = SuppressionCache(sql_fetch(engine), clock.now, ttl=30.0)
    first = asyncio.run(cache.scopes(["bob@example.org"]))
    assert first == {"bob@example.org": {}}
    suppress(engine, "bob@example.org", scope="list:weekly", reason="unsubscribe")
    clock.t += 5                       # within the ttl: the cached answer stands, no query
    assert asyncio.run(cache.scopes(["bob@example.org"])) == {"bob@example.org": {}} and cache.lookups == 1
    clock.t += 600                     # the next attempt, one retry interval later
    assert asyncio.run(cache.scopes(["bob@example.org"])) == {"bob@example.org": {"list:weekly": "unsubscribe"}}
    assert cache.lookups == 2


def test_concurrent_misses_share_one_lookup_and_memory_is_bounded(engine):
    suppress(engine, "c3@example.net")
    clock = Clock()
    cache = SuppressionCache(sql_fetch(engine), clock.now, max_entries=50)
    rcpts = [f"c{i}@example.net" for i in range(40)]

    async def many():
        return await asyncio.gather(*(cache.scopes([r], upcoming=rcpts) for r in rcpts))
    results = asyncio.run(many())
    assert cache.lookups == 1 and results[3] == {"c3@example.net": {"global": "hard_bounce"}}
    asyncio.run(cache.scopes([f"d{i}@example.net" for i in range(40)]))
    assert len(cache._entries) <= 50
    assert asyncio.run(cache.scopes(["not an address"])) == {"not an address": {}}


def test_misses_made_during_a_lookup_are_fetched_together_by_the_next(engine):
    """Transactions that miss while a query runs (nothing upcoming to prefetch them) wait, and
    one query then fetches all their recipients, not one query each."""
    import threading
    suppress(engine, "late3@example.net")
    clock, calls = Clock(), []
    started, release = threading.Event(), threading.Event()
    fetch = sql_fetch(engine)

    def slow_first(addresses):
        calls.append(addresses)
        if len(calls) == 1:
            started.set()
            release.wait(30)
        return fetch(addresses)
    cache = SuppressionCache(slow_first, clock.now)

    async def run():
        first = asyncio.create_task(cache.scopes(["early@example.net"]))
        await asyncio.to_thread(started.wait, 30)
        late = [asyncio.create_task(cache.scopes([f"late{i}@example.net"])) for i in range(5)]
        for _ in range(1000):                      # let each late caller register its miss
            if len(cache._pending) >= 5:
                break
            await asyncio.sleep(0)
        release.set()
        return await first, await asyncio.gather(*late)
    _, late = asyncio.run(run())
    assert cache.lookups == 2 and sorted(calls[1]) == [f"late{i}@example.net" for i in range(5)]
    assert late[3] == {"late3@example.net": {"global": "hard_bounce"}} and late[0] == {"late0@example.net": {}}
