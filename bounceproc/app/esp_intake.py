"""Verified ESP webhook POSTs -> the durable intake and the events they carry, committed together.

Application layer. The HTTP adapter (entrypoints/http/esp.py) has checked the provider's
signature and translated the payload with the pure domain.parse.esp; here each raw body is kept
in the `intake` table (kind "esp", origin "esp:<provider>", already done; one multi-row insert
through bootstrap.insert_intakes) and its events go
through the same record_events as the sink's and the pipe's, in the same transaction, so the
provider gets its 2xx only once both are committed (it retries otherwise, and the event keys make
the retry harmless).

SES posts one event per request, and a commit costs milliseconds, so POSTs that arrive while a
transaction runs are committed together in the next one (`GroupCommit`, group commit as in the
SMTP sink): one transaction for many requests, each still answered only after its commit.
"""
from __future__ import annotations

import asyncio
import dataclasses

from bounceproc import bootstrap
from bounceproc.app import service

MAX_GROUP = 500          # POSTs per transaction
WRITERS_PG = 2           # groups committing at once on PostgreSQL
COALESCE_TURNS = 8       # event-loop turns a group waits for requests already being parsed


def record_esp_posts(settings, posts: list[tuple[str, bytes, list]]) -> int:
    """Store verified POSTs [(provider, body, events)] and record their events in ONE transaction;
    returns how many events were new."""
    with bootstrap.engine(settings).begin() as conn:
        ids = bootstrap.insert_intakes(conn, [
            bootstrap.intake_row("esp", body, origin=f"esp:{provider}", meta={"provider": provider},
                                 records=len(evs), done=True)
            for provider, body, evs in posts])
        tagged = [dataclasses.replace(e, intake_id=i) for i, (_, _, evs) in zip(ids, posts) for e in evs]
        return service.record_events(conn, tagged, settings).new_events


class GroupCommit:
    """Commits the POSTs of concurrent requests together; lives on one event loop (no locks).

    A drain task collects what is pending (after letting the requests the loop is already
    parsing join: a few loop turns, no timer) and commits it on a worker thread. On PostgreSQL
    WRITERS_PG groups commit at once, as in the SMTP sink: while one waits for its commit, the
    next group is written instead of waiting behind it (record_events takes its row locks in key
    order, so concurrent groups wait for each other but never deadlock). SQLite has one writer."""

    def __init__(self, settings, run_in_thread) -> None:
        self.settings = settings
        self.run_in_thread = run_in_thread       # starlette's run_in_threadpool
        self.writers = WRITERS_PG if settings.is_postgres else 1
        self._pending: list[tuple[str, bytes, list, asyncio.Future]] = []
        self._busy = 0                           # drain tasks running
        self._collecting = False                 # one of them is gathering the next group

    async def submit(self, provider: str, body: bytes, events: list) -> None:
        """Returns once the POST and its events are committed; raises if the commit failed."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._pending.append((provider, body, events, fut))
        if not self._collecting and self._busy < self.writers:
            self._busy += 1
            loop.create_task(self._drain())
        await fut

    async def _collect(self) -> list:
        self._collecting = True
        try:
            for _ in range(COALESCE_TURNS):
                n = len(self._pending)
                await asyncio.sleep(0)
                if len(self._pending) == n or len(self._pending) >= MAX_GROUP:
                    break
            group, self._pending = self._pending[:MAX_GROUP], self._pending[MAX_GROUP:]
            return group
        finally:
            self._collecting = False

    async def _drain(self) -> None:
        try:
            while self._pending and not self._collecting:
                group = await self._collect()
                try:
                    await self.run_in_thread(record_esp_posts, self.settings, [g[:3] for g in group])
                except Exception as exc:  # every request of the group gets the error (503)
                    for *_, fut in group:
                        if not fut.done():
                            fut.set_exception(exc)
                    continue
                for *_, fut in group:
                    if not fut.done():
                        fut.set_result(None)
        finally:
            self._busy -= 1
