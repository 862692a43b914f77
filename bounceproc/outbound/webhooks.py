"""Deliver outbox rows to webhook endpoints: fan-out, signed POSTs, retries, the delivery log.

Adapter layer (SQLAlchemy Core, asyncio). The rules live in domain/webhook_retry.py (schedule) and
domain/webhook_signing.py (Standard Webhooks v1); this module moves rows and bytes.

1. fan_out: each undispatched outbox row becomes one `webhook_deliveries` row per enabled
   endpoint that wants its type (unique per endpoint and outbox row, so a replay of the fan-out
   is harmless), and the outbox row is marked dispatched, in one transaction.
2. claim_due: pending deliveries whose time has come are leased (locked_until = now + lease) so
   that concurrent senders do not double-send; on PostgreSQL with FOR UPDATE SKIP LOCKED. A sender
   that dies mid-delivery leaves the lease to expire and the delivery is sent again, with the same
   webhook-id (at-least-once).
3. send: one keep-alive HTTP/1.1 client (webhook_http.py), bounded concurrency, timeout 15 s, redirects not
   followed (a 3xx is a failure). The target is re-checked by the SSRF guard before each round
   and the connection goes to the address it approved (no DNS rebinding in between).
4. record: every attempt is logged; 2xx = delivered; 410 disables the endpoint; other failures are
   retried on the schedule (honouring Retry-After on 429/502/503/504) until it is exhausted
   (state `failed`); an endpoint failing every attempt for 5 days is disabled and logged.
"""
from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import bindparam, insert, select, update

from bounceproc import bootstrap
from bounceproc.storage.dialect import conflict_insert
from bounceproc.storage.api_tables import webhook_attempts, webhook_deliveries, webhook_endpoints
from bounceproc.outbound.ssrf import UnsafeTarget, check_url
from bounceproc.outbound.webhook_http import SendError, WebhookClient
from bounceproc.storage.tables import outbox
from bounceproc.config import Settings
from bounceproc.domain import webhook_retry
from bounceproc.domain.webhook_signing import webhook_headers

log = logging.getLogger("bounceproc.webhooks")

TIMEOUT_SECONDS = 15.0
LEASE_SECONDS = 60
CONCURRENCY = 128
BATCH = 4 * CONCURRENCY    # claimed per round; sent in at most 4 waves (see lease_for)
SNIPPET = 500
USER_AGENT = "bounceproc-webhooks/1"
KICK_EVERY = 0.5


def _utc(dt: datetime | None) -> datetime | None:
    if dt is None:
        return None
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt


def active_secrets(entries, now: datetime) -> list[str]:
    """Secrets that still sign: the current one and any rotated-out one not yet expired."""
    out = []
    for e in entries or []:
        exp = e.get("expires_at")
        if exp is None or _utc(datetime.fromisoformat(exp)) > now:
            out.append(e["secret"])
    return out


def fan_out(conn, limit: int = 2000, now: datetime | None = None) -> int:
    """Turn undispatched outbox rows into per-endpoint deliveries. Returns deliveries created."""
    stmt = select(outbox.c.id, outbox.c.webhook_id, outbox.c.type).where(outbox.c.dispatched.is_(False)) \
        .order_by(outbox.c.id).limit(limit)
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    rows = conn.execute(stmt).all()
    if not rows:
        return 0
    endpoints = conn.execute(select(webhook_endpoints.c.id, webhook_endpoints.c.event_types)
                             .where(webhook_endpoints.c.enabled.is_(True))).all()
    now = now or datetime.now(timezone.utc)
    new = [{"endpoint_id": ep.id, "outbox_id": r.id, "webhook_id": r.webhook_id, "type": r.type,
            "state": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now, "last_error": ""}
           for r in rows for ep in endpoints if not ep.event_types or r.type in ep.event_types]
    created = 0
    stmt = conflict_insert(conn, webhook_deliveries).on_conflict_do_nothing(
        index_elements=["endpoint_id", "outbox_id"]).returning(webhook_deliveries.c.id)
    for i in range(0, len(new), 500):
        created += len(conn.execute(stmt, new[i:i + 500]).all())
    ids = [r.id for r in rows]
    for i in range(0, len(ids), 900):
        conn.execute(update(outbox).where(outbox.c.id.in_(ids[i:i + 900])).values(dispatched=True))
    return created


@dataclass
class Job:
    delivery_id: int
    endpoint_pk: int
    url: str
    secrets: list[str]
    webhook_id: str
    payload: str
    attempts: int


@dataclass
class Outcome:
    job: Job
    status: int | None
    latency_ms: int
    error: str
    snippet: str
    retry_after: float | None
    at: datetime


def claim_due(conn, now: datetime, limit: int = BATCH, lease: int = LEASE_SECONDS) -> list[Job]:
    d, e = webhook_deliveries.c, webhook_endpoints.c
    stmt = (select(d.id, d.endpoint_id, d.webhook_id, d.attempts, d.outbox_id)
            .where(d.state == "pending", d.next_attempt_at <= now)
            .where((d.locked_until.is_(None)) | (d.locked_until < now))
            .order_by(d.next_attempt_at).limit(limit))
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True, of=webhook_deliveries)
    rows = conn.execute(stmt).all()
    if not rows:
        return []
    conn.execute(update(webhook_deliveries).where(d.id.in_([r.id for r in rows]))
                 .values(locked_until=now + timedelta(seconds=lease)))
    eps = {r.id: r for r in conn.execute(select(e.id, e.url, e.secrets, e.enabled)
                                         .where(e.id.in_({r.endpoint_id for r in rows})))}
    bodies = {i: p for i, p in conn.execute(select(outbox.c.id, outbox.c.payload)
                                            .where(outbox.c.id.in_({r.outbox_id for r in rows})))}
    jobs = []
    for r in rows:
        ep = eps.get(r.endpoint_id)
        if ep is None or not ep.enabled or r.outbox_id not in bodies:
            continue
        jobs.append(Job(r.id, r.endpoint_id, ep.url, active_secrets(ep.secrets, now), r.webhook_id,
                        bodies[r.outbox_id], r.attempts))
    return jobs


async def _send(client: WebhookClient, job: Job, allow: tuple[str, ...], sem: asyncio.Semaphore,
                safe: dict[str, tuple[str, str]]) -> Outcome:
    async with sem:
        started = time.monotonic()
        at = datetime.now(timezone.utc)
        host_key = job.url.split("/", 3)[2] if "://" in job.url else job.url
        if host_key not in safe:
            try:
                ips = await asyncio.to_thread(check_url, job.url, allow)
                safe[host_key] = ("", str(ips[0]))
            except UnsafeTarget as exc:
                safe[host_key] = (str(exc), "")
        refused, address = safe[host_key]
        if refused:
            return Outcome(job, None, 0, "refused by the SSRF guard: " + refused, "", None, at)
        body = job.payload.encode("utf-8")
        headers = webhook_headers(job.secrets, job.webhook_id, int(time.time()), body)
        try:
            answer = await client.post(job.url, body, headers, connect_to=address)
        except (asyncio.TimeoutError, TimeoutError):
            return Outcome(job, None, int((time.monotonic() - started) * 1000),
                           f"timed out after {client.timeout:g} s", "", None, at)
        except SendError as exc:
            return Outcome(job, None, int((time.monotonic() - started) * 1000), str(exc)[:SNIPPET], "", None, at)
        return Outcome(job, answer.status, int((time.monotonic() - started) * 1000), "",
                       answer.snippet.decode("utf-8", errors="replace")[:SNIPPET],
                       webhook_retry.parse_retry_after(answer.headers.get("retry-after")), at)


def new_client(timeout: float = TIMEOUT_SECONDS) -> WebhookClient:
    return WebhookClient(timeout, USER_AGENT)


async def send_all(client: WebhookClient, jobs: list[Job], allow: tuple[str, ...],
                   concurrency: int = CONCURRENCY) -> list[Outcome]:
    sem = asyncio.Semaphore(concurrency)
    safe: dict[str, tuple[str, str]] = {}
    return list(await asyncio.gather(*(_send(client, j, allow, sem, safe) for j in jobs)))


def record(conn, outcomes: list[Outcome], now: datetime, rand=random.random) -> dict[str, int]:
    """Log every attempt and move each delivery on: delivered, retried later, or failed."""
    stats = {"delivered": 0, "retrying": 0, "failed": 0, "disabled": 0}
    if not outcomes:
        return stats
    conn.execute(insert(webhook_attempts), [
        {"delivery_id": o.job.delivery_id, "attempted_at": o.at, "status_code": o.status,
         "latency_ms": o.latency_ms, "error": o.error, "response_snippet": o.snippet} for o in outcomes])
    updates, ok_eps, bad_eps, gone_eps = [], set(), set(), set()
    for o in outcomes:
        attempts = o.job.attempts + 1
        row = {"b_id": o.job.delivery_id, "attempts": attempts, "last_status": o.status,
               "last_error": o.error or (f"HTTP {o.status}" if o.status and not 200 <= o.status < 300 else ""),
               "locked_until": None, "next_attempt_at": now, "delivered_at": None}
        if o.status is not None and 200 <= o.status < 300:
            row["state"], row["delivered_at"] = "delivered", o.at
            ok_eps.add(o.job.endpoint_pk)
            stats["delivered"] += 1
        elif o.status == 410:
            row["state"] = "failed"
            gone_eps.add(o.job.endpoint_pk)
            stats["failed"] += 1
        else:
            retry_after = o.retry_after if o.status in webhook_retry.SLOW_DOWN_STATUSES else None
            delay = webhook_retry.next_delay(attempts, rand(), retry_after)
            bad_eps.add(o.job.endpoint_pk)
            if delay is None:
                row["state"] = "failed"
                stats["failed"] += 1
            else:
                row["state"], row["next_attempt_at"] = "pending", now + timedelta(seconds=delay)
                stats["retrying"] += 1
        updates.append(row)
    d = webhook_deliveries.c
    conn.execute(update(webhook_deliveries).where(d.id == bindparam("b_id")).values(
        state=bindparam("state"), attempts=bindparam("attempts"), last_status=bindparam("last_status"),
        last_error=bindparam("last_error"), locked_until=bindparam("locked_until"),
        next_attempt_at=bindparam("next_attempt_at"), delivered_at=bindparam("delivered_at")), updates)
    e = webhook_endpoints.c
    if ok_eps:
        conn.execute(update(webhook_endpoints).where(e.id.in_(ok_eps), e.failing_since.is_not(None))
                     .values(failing_since=None))
    failing = bad_eps - ok_eps
    if failing:
        conn.execute(update(webhook_endpoints).where(e.id.in_(failing), e.failing_since.is_(None))
                     .values(failing_since=now))
        cutoff = now - timedelta(seconds=webhook_retry.DISABLE_AFTER_SECONDS)
        stale = conn.execute(select(e.id, e.endpoint_id, e.url).where(
            e.id.in_(failing), e.enabled.is_(True), e.failing_since <= cutoff)).all()
        for ep in stale:
            log.warning("webhook endpoint %s (%s) disabled: every attempt failed for 5 days", ep.endpoint_id, ep.url)
        stats["disabled"] += _disable(conn, [ep.id for ep in stale], "every attempt failed for 5 days", now)
    for pk in gone_eps:
        log.warning("webhook endpoint #%s answered 410 Gone: disabled", pk)
    stats["disabled"] += _disable(conn, list(gone_eps), "the endpoint answered 410 Gone", now)
    return stats


def _disable(conn, pks: list[int], why: str, now: datetime) -> int:
    if not pks:
        return 0
    e = webhook_endpoints.c
    conn.execute(update(webhook_endpoints).where(e.id.in_(pks)).values(enabled=False, disabled_reason=why,
                                                                        updated_at=now))
    # Pending deliveries of a disabled endpoint stay in the log as failed; replay re-sends them.
    conn.execute(update(webhook_deliveries).where(webhook_deliveries.c.endpoint_id.in_(pks),
                                                  webhook_deliveries.c.state == "pending")
                 .values(state="failed", last_error="endpoint disabled: " + why, locked_until=None))
    return len(pks)


def replay(conn, delivery_ids: list[int]) -> None:
    """Make deliveries due now again (same webhook-id, fresh timestamp and signature)."""
    now = datetime.now(timezone.utc)
    for i in range(0, len(delivery_ids), 900):
        conn.execute(update(webhook_deliveries).where(webhook_deliveries.c.id.in_(delivery_ids[i:i + 900]))
                     .values(state="pending", next_attempt_at=now, locked_until=None))


def lease_for(settings: Settings, batch: int = BATCH) -> int:
    """Seconds a claimed delivery stays with its sender: long enough for every wave of a batch to
    time out, so a live sender is never overtaken; a dead sender's rows are re-sent after it."""
    waves = -(-batch // CONCURRENCY)
    return max(settings.webhook_lease_seconds, int(waves * settings.webhook_timeout_seconds) + 5)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


async def deliver_pending(settings: Settings, *, max_seconds: float = 50.0, max_batches: int = 10_000,
                          batch: int = BATCH, client: WebhookClient | None = None,
                          clock: Callable[[], datetime] = utc_now,
                          rand: Callable[[], float] = random.random) -> dict[str, int]:
    """Fan out, then send every due delivery, batch after batch, until none is due or time is up.
    `clock` (what is due, when the next attempt is) and `rand` (the retry jitter) are for tests."""
    eng = bootstrap.engine(settings)
    totals = {"fanned_out": 0, "delivered": 0, "retrying": 0, "failed": 0, "disabled": 0}
    own = client is None        # made on first use: most kicks find nothing due
    lease = lease_for(settings, batch)
    deadline = time.monotonic() + max_seconds
    try:
        for _ in range(max_batches):
            with eng.begin() as conn:
                totals["fanned_out"] += fan_out(conn, now=clock())
            with eng.begin() as conn:
                jobs = claim_due(conn, clock(), batch, lease)
            if not jobs:
                break
            if client is None:
                client = new_client(settings.webhook_timeout_seconds)   # context costs ~10 ms
            outcomes = await send_all(client, jobs, settings.webhook_allow)
            with eng.begin() as conn:
                for k, v in record(conn, outcomes, clock(), rand).items():
                    totals[k] += v
            if time.monotonic() > deadline:
                break
    finally:
        if own and client is not None:
            await client.aclose()
    return totals


def deliver_now(settings: Settings, **kw) -> dict[str, int]:
    """Synchronous wrapper of deliver_pending (Celery tasks, CLI)."""
    return asyncio.run(deliver_pending(settings, **kw))


# -- waking the sender after a commit ----------------------------------------------------------

class DeliveryLoop:
    """In-process sender for the embedded default (`bounceproc serve`): a thread that delivers
    whenever it is kicked, and at least every `interval` seconds for retries that fall due."""

    def __init__(self, settings: Settings, interval: float = 2.0) -> None:
        self.settings, self.interval = settings, interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bounceproc-webhooks", daemon=True)

    def start(self) -> "DeliveryLoop":
        self._thread.start()
        return self

    def kick(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 20.0) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        asyncio.run(self._loop())

    async def _loop(self) -> None:
        client = new_client(self.settings.webhook_timeout_seconds)
        try:
            while not self._stop.is_set():
                await asyncio.to_thread(self._wake.wait, self.interval)
                self._wake.clear()
                if self._stop.is_set():
                    break
                try:
                    await deliver_pending(self.settings, max_seconds=30.0, client=client)
                except Exception:  # keep the loop alive; the rows stay due and are retried
                    log.exception("webhook delivery round failed")
        finally:
            await client.aclose()


def kicker(settings: Settings, loop: DeliveryLoop | None = None,
           monotonic: Callable[[], float] = time.monotonic):
    """A callable that wakes the sender after a commit: the in-process loop when there is one,
    else a `bounceproc.deliver_webhooks` task on the broker (best effort: the periodic task
    delivers anyway). `monotonic` is the coalescing clock (for tests)."""
    if loop is not None:
        return loop.kick
    if settings.embedded:
        return lambda: None

    last = [0.0]

    def send_task() -> None:
        # Coalesce: one task per KICK_EVERY seconds is enough, it drains everything that is due.
        if monotonic() - last[0] < KICK_EVERY:
            return
        last[0] = monotonic()
        try:
            bootstrap.celery_app(settings).send_task("bounceproc.deliver_webhooks", queue=settings.queue,
                                                     retry=False)
        except Exception as exc:  # broker down: the periodic task picks the outbox up
            log.warning("could not enqueue webhook delivery (%s); the periodic task will", exc)
    return send_task
