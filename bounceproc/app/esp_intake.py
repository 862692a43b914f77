"""Verified ESP webhook POSTs -> the durable intake and the events they carry, committed together.

Application layer. The HTTP adapter (entrypoints/http/esp.py) has checked the provider's
signature and translated the payload with the pure domain.parse.esp; here each raw body is kept
in the `intake` table (kind "esp", origin "esp:<provider>", already done) and its events go
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
from datetime import datetime, timezone

from sqlalchemy import insert

from bounceproc import bootstrap
from bounceproc.app import service
from bounceproc.storage.tables import intake

MAX_GROUP = 500          # POSTs per transaction


def record_esp_posts(settings, posts: list[tuple[str, bytes, list]]) -> int:
    """Store verified POSTs [(provider, body, events)] and record their events in ONE transaction;
    returns how many events were new."""
    now = datetime.now(timezone.utc)
    with bootstrap.engine(settings).begin() as conn:
        ids = conn.execute(insert(intake).returning(intake.c.id, sort_by_parameter_order=True), [
            {"kind": "esp", "origin": f"esp:{provider}", "header": "", "first_line": 0, "payload": body,
             "meta": {"provider": provider}, "state": "done", "records": len(evs), "attempts": 1,
             "created_at": now, "processed_at": now, "batch_key": None}
            for provider, body, evs in posts]).scalars().all()
        tagged = [dataclasses.replace(e, intake_id=i) for i, (_, _, evs) in zip(ids, posts) for e in evs]
        return service.record_events(conn, tagged, settings).new_events


class GroupCommit:
    """Commits the POSTs of concurrent requests together; lives on one event loop (no locks)."""

    def __init__(self, settings, run_in_thread) -> None:
        self.settings = settings
        self.run_in_thread = run_in_thread       # starlette's run_in_threadpool
        self._pending: list[tuple[str, bytes, list, asyncio.Future]] = []
        self._draining = False

    async def submit(self, provider: str, body: bytes, events: list) -> None:
        """Returns once the POST and its events are committed; raises if the commit failed."""
        fut = asyncio.get_running_loop().create_future()
        self._pending.append((provider, body, events, fut))
        if not self._draining:
            self._draining = True
            asyncio.get_running_loop().create_task(self._drain())
        await fut

    async def _drain(self) -> None:
        try:
            while self._pending:
                group, self._pending = self._pending[:MAX_GROUP], self._pending[MAX_GROUP:]
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
            self._draining = False
