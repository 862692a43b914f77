"""Celery tasks: a few lines of glue each, calling bounceproc.app.

bounceproc.ingest        process durable-intake rows by id (one transaction per row)
bounceproc.sweep_intake  re-enqueue intake rows still pending after `sweep_after_seconds`
bounceproc.prune         expire suppressions; drop processed raw input and old events past their retention
"""
from __future__ import annotations

import time

from bounceproc import bootstrap

from bounceproc.app.intake import pending_intake_ids
from bounceproc.config import load_settings
from workers.celery_app import app


@app.task(name="bounceproc.ingest", acks_late=True)
def ingest(intake_ids: list[int]) -> int:
    """Process intake rows: messages many per transaction, accounting batches one each."""
    from bounceproc.app.intake import process_messages
    settings = load_settings()
    done = process_messages(settings, intake_ids)
    if done:
        _kick_webhooks(settings)
    return done


_KICK_EVERY_SECONDS = 1.0
_last_kick = 0.0


def _kick_webhooks(settings) -> None:
    """Ask for webhook delivery after commits, at most once a second per worker process: a kick per
    batch would cost a delivery pass per batch. The periodic retry task is the safety net."""
    global _last_kick
    now = time.monotonic()
    if now - _last_kick >= _KICK_EVERY_SECONDS:
        _last_kick = now
        app.send_task("bounceproc.deliver_webhooks", queue=settings.queue)


@app.task(name="bounceproc.sweep_intake")
def sweep_intake() -> int:
    settings = load_settings()
    ids = pending_intake_ids(settings, settings.sweep_after_seconds)
    for i in range(0, len(ids), 20):
        ingest.apply_async(args=[ids[i:i + 20]], queue=settings.queue)
    from bounceproc.app import alerts, maintenance
    maintenance.compact_counts(settings)    # one count row per minute and key, not per batch
    alerts.evaluate_now(settings)       # announced once per change (alert_state)
    return len(ids)


@app.task(name="bounceproc.prune")
def prune() -> int:
    from bounceproc.app import maintenance
    settings = load_settings()
    with bootstrap.engine(settings).begin() as conn:
        n = maintenance.prune(conn, settings)
    return n + maintenance.prune_events(settings, budget_seconds=600)
