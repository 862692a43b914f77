"""Celery tasks of the SMTP sink: a few lines of glue each.

bounceproc.ingest_messages  process message intake rows by id, many per transaction
                            (bounceproc.app.intake.process_messages)
The sink enqueues it by default (setting `sink_task`); workers/celery_app.py includes this module.
"""
from __future__ import annotations

from bounceproc.config import load_settings
from bounceproc.app.intake import process_messages
from workers.celery_app import app


@app.task(name="bounceproc.ingest_messages", acks_late=True)
def ingest_messages(intake_ids: list[int]) -> int:
    return process_messages(load_settings(), intake_ids)
