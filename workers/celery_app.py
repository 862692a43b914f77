"""The Celery application and its settings, nothing else.

Broker from BOUNCEPROC_BROKER_URL (Redis by default: redis://127.0.0.1:6379/0); tasks consume
the queue named by BOUNCEPROC_QUEUE. Tasks carry intake ids only: raw records and messages stay
in the durable intake (PostgreSQL), so the broker holds nothing that cannot be recreated by the
periodic sweep. Run a worker with `celery -A workers worker -B` (beat runs the sweeps) or a
separate `celery -A workers beat`.
"""
from __future__ import annotations

import gc
import os

from celery import Celery, Task
from celery.signals import after_setup_logger, worker_init, worker_process_init

from bounceproc import deployment
from bounceproc.config import load_settings

_settings = load_settings()


class DeploymentTask(Task):
    """Every task first checks that its message comes from this deployment (deployment.py)."""

    def __call__(self, *args, **kwargs):
        deployment.refuse_foreign(self, _settings)
        return super().__call__(*args, **kwargs)


app = Celery("bounceproc", broker=_settings.broker_url or "redis://127.0.0.1:6379/0",
             include=["workers.tasks", "workers.sink_tasks", "workers.webhook_tasks"],
             task_cls=DeploymentTask)
deployment.publish_as(_settings)
app.conf.update(
    task_default_queue=_settings.queue,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=4,
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    beat_schedule={
        "sweep-intake": {"task": "bounceproc.sweep_intake", "schedule": 30.0,
                         "options": {"queue": _settings.queue}},
        "prune": {"task": "bounceproc.prune", "schedule": 3600.0,
                  "options": {"queue": _settings.queue}},
        "retry-webhooks": {"task": "bounceproc.retry_webhooks", "schedule": 5.0,
                           "options": {"queue": _settings.queue}},
    },
    beat_schedule_filename=os.path.join(_settings.data_dir, "celerybeat-schedule"),
)


@worker_init.connect
@worker_process_init.connect
def _freeze_startup_objects(**_) -> None:
    """Move everything imported at start-up out of the collector's reach (gc.freeze): its full
    passes otherwise rescan hundreds of thousands of module objects that never become garbage.
    Runs in the parent before it forks its pool (also sparing copy-on-write) and in each child."""
    gc.collect()
    gc.freeze()


@after_setup_logger.connect
def _operator_logging(logger=None, **_) -> None:
    """No library noise at info level (task received/succeeded lines, beat ticks every 5 s); JSON
    lines when BOUNCEPROC_LOG_FORMAT=json. bounceproc's own lines say what each task did."""
    from bounceproc import logs
    logs.quiet_libraries()
    level, fmt = logs.from_environment("info")
    if fmt == "json" and logger is not None:
        for handler in logger.handlers:
            handler.setFormatter(logs.formatter("json"))
