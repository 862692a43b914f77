"""The Celery application, nothing else.

Broker from BOUNCEPROC_BROKER_URL (required: no default); tasks consume the queue named by
BOUNCEPROC_QUEUE. The configuration lives in workers/celery_config.py and is read when Celery
first needs it, not when this module is imported. Tasks carry intake ids only: raw records and
messages stay in the durable intake (PostgreSQL), so the broker holds nothing that cannot be
recreated by the periodic sweep. Run a worker with `celery -A workers worker -B` (beat runs the
sweeps) or a separate `celery -A workers beat`.
"""
from __future__ import annotations

import gc

from celery import Celery
from celery.signals import worker_init, worker_process_init

app = Celery("bounceproc", include=["workers.tasks", "workers.sink_tasks", "workers.webhook_tasks"])
app.config_from_object("workers.celery_config")   # imported lazily, on the first use of app.conf


@worker_init.connect
def _quiet_library_logs(**_) -> None:
    from bounceproc.entrypoints.logs import quiet_library_logs
    quiet_library_logs()


@worker_init.connect
@worker_process_init.connect
def _freeze_startup_objects(**_) -> None:
    """Move everything imported at start-up out of the collector's reach (gc.freeze): its full
    passes otherwise rescan hundreds of thousands of module objects that never become garbage.
    Runs in the parent before it forks its pool (also sparing copy-on-write) and in each child."""
    gc.collect()
    gc.freeze()
