"""Which deployment a Celery task belongs to, so that two deployments sharing a broker database and
queue do not process each other's intake ids (issue 14, item 4).

Wiring layer. Tasks carry only intake ids, which mean something only in the database that holds
them. Every task a bounceproc process publishes carries a `bounceproc_deployment` message header:
the `deployment_id` setting, or by default the identity of its database (PostgreSQL: the
cluster's system identifier and the database name; SQLite: host and file). A worker whose own id
differs logs an error and puts the task back (Reject with requeue), so the right deployment's
workers still get it; the fix is a queue (`BOUNCEPROC_QUEUE`) or Redis database number per
deployment (docs/configuration.md).
"""
from __future__ import annotations

import logging
import socket
import threading
import time

from bounceproc.config import Settings

log = logging.getLogger("bounceproc.deployment")

HEADER = "bounceproc_deployment"
REQUEUE_PAUSE_SECONDS = 1.0      # a worker that keeps receiving foreign tasks does not spin

_ids: dict[str, str] = {}
_by_queue: dict[str, Settings] = {}
_lock = threading.Lock()
_connected = False


def deployment_id(settings: Settings) -> str:
    """The setting, else the database's identity (computed once per database URL)."""
    if settings.deployment_id:
        return settings.deployment_id
    url = settings.db_url
    with _lock:
        known = _ids.get(url)
    if known:
        return known
    ident = _database_identity(settings)
    with _lock:
        _ids[url] = ident
    return ident


def _engine_for(settings):   # replaced by publish_as; deployment_id needs a database identity
    raise RuntimeError("deployment.publish_as(settings, engine) was not called in this process")


def _database_identity(settings: Settings) -> str:
    if settings.sqlite_file is not None:
        return f"sqlite:{socket.gethostname()}:{settings.sqlite_file.resolve()}"
    from sqlalchemy import text

    with _engine_for(settings).connect() as conn:
        return conn.execute(text(
            "SELECT (SELECT system_identifier FROM pg_control_system())::text || '/' || current_database()"
        )).scalar_one()


def publish_as(settings: Settings, engine) -> None:
    """Stamp every task later published to `settings.queue` from this process with its id;
    `engine(settings)` is the caller's engine factory (bootstrap.engine: wiring passes it in)."""
    global _connected, _engine_for
    _engine_for = engine
    with _lock:
        _by_queue[settings.queue] = settings
        if _connected:
            return
        _connected = True
    from celery.signals import before_task_publish
    before_task_publish.connect(_stamp, weak=False)


def _stamp(sender=None, headers=None, routing_key=None, **_) -> None:
    settings = _by_queue.get(routing_key or "")
    if settings is not None and headers is not None and HEADER not in headers:
        headers[HEADER] = deployment_id(settings)


def sent_by(request) -> str | None:
    """The deployment id a running task's message carries (None: sent by an older version)."""
    value = getattr(request, HEADER, None)
    if value is None:
        value = (getattr(request, "headers", None) or {}).get(HEADER)
    return value


def refuse_foreign(task, settings: Settings) -> None:
    """In a worker, before a task runs: put another deployment's task back (celery Reject)."""
    sent = sent_by(task.request)
    if sent is None:
        return
    own = deployment_id(settings)
    if sent == own:
        return
    from celery.exceptions import Reject
    log.error("task %s (%s) belongs to deployment %s, not this one (%s): put back on queue %r. Two "
              "deployments share this broker database and queue; give each its own BOUNCEPROC_QUEUE "
              "or Redis database number", task.name, task.request.id, sent, own, settings.queue)
    time.sleep(REQUEUE_PAUSE_SECONDS)
    raise Reject(f"task of deployment {sent}", requeue=True)
