"""`bounceproc pipe` end to end: real PostgreSQL, real Redis, a real Celery worker process.

A PowerMTA-shaped stream goes into the pipe's stdin; the events, suppressions and history in
PostgreSQL must equal what the pure parser + policy give for the same input, whatever is killed
on the way (kill -9 of the pipe and of the worker at random points, the broker going away).
"""
from __future__ import annotations

import os
import random
import threading
import time
from pathlib import Path

import pytest
from test_pipe_support import (FIX, Pipe, PrivateRedis, db_state, intake_coverage, oracle, stream,
                               wait_drained)

from bounceproc import bootstrap

pytestmark = pytest.mark.slow


def reference_state(make_settings, sqlite_url, data: bytes, tmp_path: Path) -> dict:
    """The undisturbed result: the same input imported in-process on SQLite."""
    from bounceproc.entrypoints.acct_pipe import run_import
    from test_pipe_support import db_state as state
    src = tmp_path / "reference.csv"
    src.write_bytes(data)
    s = make_settings(database_url=sqlite_url, broker_url="", data_dir=str(tmp_path / "ref"))
    assert run_import(s, [str(src)], quiet=True) == 0
    out = state(s)
    bootstrap.engine(s).dispose()
    return out


def test_stream_through_pipe_celery_and_postgres(make_settings, fresh_pg_url, redis_url, celery_worker,
                                                 sqlite_url, tmp_path):
    data = b"".join((FIX / name).read_bytes() for name in sorted(os.listdir(FIX)) if name.endswith(".csv"))
    data += stream(3000, seed=11)
    keys, _ = oracle(data)
    ref = reference_state(make_settings, sqlite_url, data, tmp_path)
    assert ref["keys"] == keys
    s = make_settings(database_url=fresh_pg_url, broker_url=redis_url, sweep_after_seconds=5)
    with celery_worker(s):
        pipe = Pipe(s, "--batch-lines", "500")
        assert pipe.feed(data, chunk=4096)
        rc, out = pipe.close()
        assert rc == 0, pipe.stderr()
        assert out == b""                                  # nothing on stdout, ever
        assert "lines=" in pipe.stderr()                   # progress on stderr
        got = wait_drained(s)
    assert got["pending"] == 0 and got["failed"] == 0
    assert got["keys"] == keys and got["events"] == len(keys)
    assert got["suppressions"] == ref["suppressions"] and got["suppressions"]
    assert got["history"] == ref["history"] == len(ref["suppressions"])
    assert got["quarantine"] == ref["quarantine"] > 0
    assert not list((Path(s.data_dir) / "pipe-journal" / "default").glob("*.batch"))


@pytest.mark.parametrize("seed", [1, 2])
def test_kill9_pipe_and_worker_mid_stream_then_replay(make_settings, fresh_pg_url, redis_url, celery_worker,
                                                      sqlite_url, tmp_path, seed):
    rnd = random.Random(seed)
    data = stream(12000, seed=seed)
    keys, _ = oracle(data)
    ref = reference_state(make_settings, sqlite_url, data, tmp_path)
    s = make_settings(database_url=fresh_pg_url, broker_url=redis_url, sweep_after_seconds=2)

    # 1. stream slowly; kill -9 the worker, then the pipe, at random points
    with celery_worker(s) as worker:
        pipe = Pipe(s, "--batch-lines", "300", "--batch-seconds", "0.3")
        stop = threading.Event()
        writer = threading.Thread(target=pipe.feed, args=(data,), kwargs={"chunk": 8192, "pause": 0.01, "stop": stop})
        writer.start()
        # kill only once the pipe has journalled something (it may take seconds to start on a
        # loaded machine: killed before, it left nothing to replay and step 2 had nothing to check)
        journal = Path(s.data_dir) / "pipe-journal" / "default"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (db_state(s)["intake"] or list(journal.glob("*.batch"))):
            time.sleep(0.05)
        time.sleep(rnd.uniform(0.2, 1.0))
        worker.kill()
        time.sleep(rnd.uniform(0.3, 1.5))
        pipe.kill9()
        stop.set()
        writer.join(timeout=30)
    written = pipe.written

    # 2. a new pipe with no input replays the journal: every journalled batch reaches the intake
    replay = Pipe(s)
    rc, _ = replay.close()
    assert rc == 0, replay.stderr()
    assert not list((Path(s.data_dir) / "pipe-journal" / "default").glob("*.batch"))
    cover = intake_coverage(s)
    assert cover and cover[0][0] == 2                      # line 1 is the header
    for (a0, a1), (b0, b1) in zip(cover, cover[1:]):
        assert b0 == a1 + 1 or (b0 == a1 + 2), f"gap or overlap in journalled batches: {(a0, a1)} {(b0, b1)}"
    assert written > 0

    # 3. restart the worker (with the sweep), replay the whole input as PowerMTA's file would be
    with celery_worker(s, beat=True):
        again = Pipe(s, "--batch-lines", "2000")
        assert again.feed(data)
        rc, _ = again.close()
        assert rc == 0, again.stderr()
        got = wait_drained(s, timeout=180)
    assert got["pending"] == 0 and got["failed"] == 0
    assert got["keys"] == keys and got["events"] == len(keys)      # nothing lost, no duplicates
    assert got["suppressions"] == ref["suppressions"]
    assert got["history"] == ref["history"]                          # one history row per suppression


def test_broker_down_during_stream_nothing_lost(make_settings, fresh_pg_url, celery_worker, sqlite_url, tmp_path):
    data = stream(8000, seed=5)
    keys, _ = oracle(data)
    ref = reference_state(make_settings, sqlite_url, data, tmp_path)
    broker = PrivateRedis(workdir=tmp_path).start()
    try:
        s = make_settings(database_url=fresh_pg_url, broker_url=broker.url, sweep_after_seconds=2)
        with celery_worker(s, beat=True):
            pipe = Pipe(s, "--batch-lines", "300", "--batch-seconds", "0.3")
            third = len(data) // 3
            assert pipe.feed(data[:third], chunk=8192, pause=0.01)
            broker.kill()                                   # the broker goes away mid-stream
            assert pipe.feed(data[third:], chunk=8192, pause=0.005)   # ... the pipe keeps reading
            rc, _ = pipe.close(timeout=120)
            assert rc == 0, pipe.stderr()
            mid = db_state(s)
            assert mid["intake"] > 0                        # committed while the broker was down
            broker.start()                                  # it comes back on the same port
            got = wait_drained(s, timeout=180)
        assert got["pending"] == 0 and got["failed"] == 0
        assert got["keys"] == keys and got["events"] == len(keys)
        assert got["suppressions"] == ref["suppressions"]
    finally:
        broker.kill()
