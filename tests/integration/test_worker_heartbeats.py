"""Worker heartbeats (app/heartbeats.py): a real Celery worker on Redis and the inline worker of
`bounceproc serve` record theirs; the health panel, `show status` and /metrics list every worker
and flag the ones not heard from."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from prometheus_client.parser import text_string_to_metric_families

from bounceproc import bootstrap
from bounceproc.app import heartbeats, ops_view, status_report
from bounceproc.entrypoints.http import dashboard_html, metrics
from bounceproc.storage import heartbeats as store
from bp_testing import wait_for


def _workers(settings) -> list[dict]:
    with bootstrap.engine(settings).connect() as conn:
        return heartbeats.workers(conn, datetime.now(timezone.utc))


def _families(settings) -> dict:
    with bootstrap.engine(settings).connect() as conn:
        text = metrics.render_metrics(conn).decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_a_celery_worker_beats_and_its_row_goes_when_it_stops(make_settings, fresh_pg_url, redis_url, celery_worker):
    settings = make_settings(database_url=fresh_pg_url, broker_url=redis_url)
    with celery_worker(settings) as worker:
        rows = wait_for(lambda: [w for w in _workers(settings) if w["kind"] == "celery"], 60, "the worker's heartbeat")
        assert len(rows) == 1 and rows[0]["pid"] == worker.proc.pid and not rows[0]["stale"]
        assert rows[0]["worker"].startswith("bp-")            # the node name it was started with (-n)
        with bootstrap.engine(settings).connect() as conn:
            report = status_report.status(conn)
            page = dashboard_html.page(ops_view.dashboard(conn), [])
        assert [w["worker"] for w in report["workers"]] == [rows[0]["worker"]]
        assert rows[0]["worker"] in page and "1 alive, 0 stale" in page
        fams = _families(settings)
        seen = fams["bounceproc_worker_last_seen_seconds"].samples
        assert [s.labels for s in seen] == [{"worker": rows[0]["worker"], "kind": "celery"}]
        assert {s.labels["state"]: s.value for s in fams["bounceproc_workers"].samples} == {"alive": 1, "stale": 0}
    # SIGTERM: a warm shutdown deletes the row (a stopped worker is not a stale one)
    assert worker.proc.returncode is not None
    wait_for(lambda: not _workers(settings), 30, "the heartbeat row to go")


def test_a_worker_not_heard_from_is_flagged_stale_everywhere(make_settings, fresh_pg_url):
    settings = make_settings(database_url=fresh_pg_url)
    now = datetime.now(timezone.utc)
    with bootstrap.engine(settings).begin() as conn:
        store.beat(conn, "celery@gone", "celery", "gone", 41, now - timedelta(hours=2), now - timedelta(minutes=5))
        store.beat(conn, "celery@here", "celery", "here", 42, now - timedelta(hours=2), now)
    rows = _workers(settings)
    assert [(w["worker"], w["stale"]) for w in rows] == [("celery@gone", True), ("celery@here", False)]
    assert rows[0]["age_seconds"] >= 300
    with bootstrap.engine(settings).connect() as conn:
        page = dashboard_html.page(ops_view.dashboard(conn), [])
    assert "1 alive, 1 stale" in page and "stale</strong>" in page
    fams = _families(settings)
    assert {s.labels["state"]: s.value for s in fams["bounceproc_workers"].samples} == {"alive": 1, "stale": 1}
    by_worker = {s.labels["worker"]: s.value for s in fams["bounceproc_worker_last_seen_seconds"].samples}
    assert by_worker["celery@gone"] >= 300 and by_worker["celery@here"] < heartbeats.STALE_SECONDS
    with bootstrap.engine(settings).begin() as conn:        # the hourly prune forgets it after a day
        assert heartbeats.prune(conn, now + heartbeats.FORGET_AFTER) == 1
    assert [w["worker"] for w in _workers(settings)] == ["celery@here"]


def test_the_worker_label_is_bounded(make_settings, fresh_pg_url):
    settings = make_settings(database_url=fresh_pg_url)
    now = datetime.now(timezone.utc)
    with bootstrap.engine(settings).begin() as conn:
        for i in range(metrics.MAX_SERIES + 5):
            store.beat(conn, f"inline@h:{i}", "inline", "h", i, now, now - timedelta(seconds=i))
    fams = _families(settings)
    assert len(fams["bounceproc_worker_last_seen_seconds"].samples) == metrics.MAX_SERIES
    assert sum(s.value for s in fams["bounceproc_workers"].samples) == metrics.MAX_SERIES + 5


def test_the_inline_worker_of_serve_beats_until_it_stops(make_settings, sqlite_url):
    from bounceproc.entrypoints.cli.serve import InlineWorker
    settings = make_settings(database_url=sqlite_url)
    inline = InlineWorker(settings).start()
    try:
        rows = wait_for(lambda: _workers(settings), 30, "the inline worker's heartbeat")
        assert [w["kind"] for w in rows] == ["inline"] and rows[0]["worker"].startswith("inline@")
        with bootstrap.engine(settings).connect() as conn:
            assert status_report.status(conn)["workers"][0]["worker"] == rows[0]["worker"]
    finally:
        inline.stop()
    assert _workers(settings) == []
