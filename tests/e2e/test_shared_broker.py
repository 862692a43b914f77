"""Two deployments on one Redis database and queue (issue 14, item 4): a worker that receives the
other deployment's task logs an error and puts it back; the right deployment's worker then
processes it. Real PostgreSQL (two databases), Redis and Celery workers."""
from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import select

from bounceproc import bootstrap, deployment
from bounceproc.storage.tables import intake

ROOT = Path(__file__).resolve().parents[2]


def _state(settings, intake_id: int) -> str:
    with bootstrap.engine(settings).connect() as conn:
        return conn.execute(select(intake.c.state).where(intake.c.id == intake_id)).scalar_one()


def test_a_worker_puts_back_another_deployments_task(make_settings, fresh_pg_url, another_pg_url, redis_url,
                                                     celery_worker, tmp_path):
    queue = f"bp-shared-{time.monotonic_ns()}"
    ours = make_settings(database_url=fresh_pg_url, broker_url=redis_url, queue=queue,
                         data_dir=str(tmp_path / "ours"))
    theirs = make_settings(database_url=another_pg_url, broker_url=redis_url, queue=queue,
                           data_dir=str(tmp_path / "theirs"))
    from bounceproc import bootstrap
    deployment.publish_as(theirs, bootstrap.engine)        # as a process of that deployment would
    assert deployment.deployment_id(ours) != deployment.deployment_id(theirs)
    message = (ROOT / "fixtures/sink/dsn-verp-garbled.eml").read_bytes()
    with celery_worker(ours) as worker:
        their_id = bootstrap.submit_intake(theirs, "message", message, inline=None, origin="sink")   # broker: no inline
        deadline = time.monotonic() + 60
        while "belongs to deployment" not in worker.log() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert f"belongs to deployment {deployment.deployment_id(theirs)}" in worker.log(), worker.log()
        assert _state(theirs, their_id) == "pending"
    with celery_worker(theirs):
        deadline = time.monotonic() + 60
        while _state(theirs, their_id) == "pending" and time.monotonic() < deadline:
            time.sleep(0.2)
    assert _state(theirs, their_id) == "done"
