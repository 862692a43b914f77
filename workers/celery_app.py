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

from celery import Celery, Task
from celery.signals import after_setup_logger, worker_init, worker_process_init, worker_ready, worker_shutdown

from bounceproc import deployment


def _worker_settings():
    from workers import celery_config      # read once, when the worker first needs it
    return celery_config._settings


class DeploymentTask(Task):
    """Every task first checks that its message comes from this deployment (deployment.py)."""

    def __call__(self, *args, **kwargs):
        deployment.refuse_foreign(self, _worker_settings())
        return super().__call__(*args, **kwargs)


app = Celery("bounceproc", include=["workers.tasks", "workers.sink_tasks", "workers.webhook_tasks"],
             task_cls=DeploymentTask)
app.config_from_object("workers.celery_config")   # imported lazily, on the first use of app.conf


@worker_init.connect
def _quiet_library_logs(**_) -> None:
    from bounceproc import logs
    logs.quiet_parser_noise()
    from bounceproc import bootstrap
    deployment.publish_as(_worker_settings(), bootstrap.engine)   # tasks this worker sends carry its id too


_heartbeat = None


@worker_ready.connect
def _start_heartbeat(sender=None, **_) -> None:
    """This worker node's heartbeat (app/heartbeats.py), from a thread of the main process."""
    global _heartbeat
    from bounceproc import bootstrap
    from bounceproc.app.heartbeats import Heartbeat
    settings = _worker_settings()
    _heartbeat = Heartbeat(settings, "celery", worker_id=getattr(sender, "hostname", None),
                           engine=bootstrap.unpooled_engine(settings)).start_thread()


@worker_shutdown.connect
def _stop_heartbeat(**_) -> None:
    if _heartbeat is not None:
        _heartbeat.stop()


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
