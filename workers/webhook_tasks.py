"""Celery tasks of the webhook sender and CSV imports: a few lines of glue each.

bounceproc.deliver_webhooks  fan the outbox out and send every due delivery (kicked after commits)
bounceproc.retry_webhooks    the same, on a timer, so retries fall due without a kick
bounceproc.run_import        process one CSV import job (POST /v1/imports)
"""
from __future__ import annotations

from bounceproc.config import load_settings
from workers.celery_app import app

RETRY_EVERY_SECONDS = 5.0   # the beat schedule in workers/celery_app.py runs retry_webhooks this often


@app.task(name="bounceproc.deliver_webhooks", acks_late=True)
def deliver_webhooks() -> dict:
    from bounceproc.outbound import webhooks
    return webhooks.deliver_now(load_settings(), max_seconds=50.0)


@app.task(name="bounceproc.retry_webhooks")
def retry_webhooks() -> dict:
    from bounceproc.outbound import webhooks
    return webhooks.deliver_now(load_settings(), max_seconds=RETRY_EVERY_SECONDS * 0.8)


@app.task(name="bounceproc.run_import", acks_late=True)
def run_import(job_id: str) -> None:
    from bounceproc.entrypoints.http.imports import run_import as run
    run(load_settings(), job_id)
