"""The Celery configuration, read from bounceproc's settings when Celery first needs it.

workers/celery_app.py names this module with `config_from_object`, which imports it lazily (on
the first access to `app.conf`, i.e. when a worker or beat starts), so importing the Celery app
reads no settings. There is no broker default: without BOUNCEPROC_BROKER_URL the producers
(pipe, sink, API) run embedded and send nothing, so a worker listening on a guessed Redis would
wait for work that never comes. It refuses to start instead.
"""
from __future__ import annotations

import os

from bounceproc.config import load_settings

_settings = load_settings()
if not _settings.broker_url:
    raise RuntimeError("no broker configured: set BOUNCEPROC_BROKER_URL (e.g. redis://127.0.0.1:6379/0) "
                       "for the workers and for the processes that feed them")

broker_url = _settings.broker_url
task_default_queue = _settings.queue
task_acks_late = True
task_reject_on_worker_lost = True
worker_prefetch_multiplier = 4
task_ignore_result = True
broker_connection_retry_on_startup = True
worker_hijack_root_logger = False
beat_schedule = {
    "sweep-intake": {"task": "bounceproc.sweep_intake", "schedule": 30.0,
                     "options": {"queue": _settings.queue}},
    "prune": {"task": "bounceproc.prune", "schedule": 3600.0,
              "options": {"queue": _settings.queue}},
    "retry-webhooks": {"task": "bounceproc.retry_webhooks", "schedule": 5.0,
                       "options": {"queue": _settings.queue}},
}
beat_schedule_filename = os.path.join(_settings.data_dir, "celerybeat-schedule")
