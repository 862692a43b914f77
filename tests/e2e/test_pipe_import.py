"""`bounceproc import` (idempotent, resumable after kill -9) and the pipe with the database down.

Real PostgreSQL; processing runs in-process (embedded mode, no broker) so the commands are the
whole system under test.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from bp_testing import bin_path, free_port, settings_env
from test_pipe_support import Pipe, db_state, intake_coverage, oracle, stream, wait_drained

from bounceproc import bootstrap

pytestmark = pytest.mark.slow


def run_import(settings, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([bin_path("bounceproc"), "import", *args], env=settings_env(settings),
                          capture_output=True, timeout=timeout)


def test_import_twice_changes_nothing(make_settings, fresh_pg_url, tmp_path):
    data = stream(3000, seed=21)
    keys, nbad = oracle(data)
    src = tmp_path / "acct-2024-03-01-0000.csv"
    src.write_bytes(data)
    s = make_settings(database_url=fresh_pg_url, broker_url="")
    r = run_import(s, str(src))
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout == b""
    first = db_state(s)
    assert first["keys"] == keys and first["pending"] == 0 and first["suppressions"]
    assert first["quarantine"] == nbad

    r = run_import(s, str(src))                     # again: the checkpoint says there is nothing new
    assert r.returncode == 0 and b"nothing new" in r.stderr
    assert db_state(s) == first

    r = run_import(s, "--restart", str(src))        # even from the start: no visible change
    assert r.returncode == 0, r.stderr.decode()
    again = db_state(s)
    assert again["intake"] > first["intake"]       # it did read the file again ...
    for k in ("events", "keys", "suppressions", "history"):
        assert again[k] == first[k], k               # ... and changed nothing that counts


def test_import_follows_a_growing_file_and_a_rotated_name(make_settings, fresh_pg_url, tmp_path):
    data = stream(2000, seed=22)
    cut = data.index(b"\r\n", len(data) // 2) + 2
    src = tmp_path / "acct.csv"
    src.write_bytes(data[:cut] + b"d,2024-03-01 10:00:00+0000,par")   # PowerMTA mid-write
    os.utime(src, (time.time(), time.time()))
    s = make_settings(database_url=fresh_pg_url, broker_url="")
    assert run_import(s, str(src)).returncode == 0
    with open(src, "r+b") as fh:                    # the rest of the file arrives
        fh.truncate(cut)
        fh.seek(cut)
        fh.write(data[cut:])
    rotated = tmp_path / "acct-2024-03-01-0000.csv"
    src.rename(rotated)                             # and PowerMTA rotates it
    r = run_import(s, str(rotated))
    assert r.returncode == 0, r.stderr.decode()
    keys, _ = oracle(data)
    got = db_state(s)
    assert got["keys"] == keys
    cover = intake_coverage(s)
    assert sum(b - a + 1 for a, b in cover) + 2 == data.count(b"\n")   # every line once (2 headers)


def test_import_resumes_from_checkpoint_after_kill9(make_settings, fresh_pg_url, tmp_path):
    data = stream(20000, seed=23)
    keys, _ = oracle(data)
    src = tmp_path / "acct-big.csv"
    src.write_bytes(data)
    os.utime(src, (time.time() - 3600, time.time() - 3600))
    s = make_settings(database_url=fresh_pg_url, broker_url="")
    proc = subprocess.Popen([bin_path("bounceproc"), "import", "--batch-lines", "500", str(src)],
                            env=settings_env(s), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if db_state(s)["intake"] >= 5:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "import finished before it could be killed; make the input larger"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    partial = db_state(s)
    assert 0 < len(partial["keys"]) < len(keys)

    r = run_import(s, str(src))
    assert r.returncode == 0, r.stderr.decode()
    got = db_state(s)
    assert got["keys"] == keys and got["pending"] == 0
    cover = intake_coverage(s)
    for (a0, a1), (b0, b1) in zip(cover, cover[1:]):        # no batch imported twice, no gap
        assert b0 in (a1 + 1, a1 + 2), (a0, a1, b0, b1)
    assert cover[0][0] == 2 and cover[-1][1] == data.count(b"\n")


def test_pipe_keeps_reading_while_the_database_is_down_then_replays(make_settings, fresh_pg_url, tmp_path):
    data = stream(4000, seed=24)
    keys, _ = oracle(data)
    dead = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nowhere"
    down = make_settings(database_url=dead, broker_url="", data_dir=str(tmp_path / "data"))
    pipe = Pipe(down, "--batch-lines", "500", "--drain-timeout", "3")
    assert pipe.feed(data, chunk=16384)            # PowerMTA is never blocked
    rc, out = pipe.close(timeout=60)
    assert rc == 0 and out == b"", pipe.stderr()
    assert "stay in the journal" in pipe.stderr()
    journal = Path(down.data_dir) / "pipe-journal" / "default"
    assert len(list(journal.glob("*.batch"))) >= 8

    up = make_settings(database_url=fresh_pg_url, broker_url="", data_dir=str(tmp_path / "data"))
    replay = Pipe(up)                              # next start (PowerMTA restarts the pipe)
    rc, _ = replay.close(timeout=120)
    assert rc == 0, replay.stderr()
    assert not list(journal.glob("*.batch"))
    got = wait_drained(up, timeout=60)
    assert got["keys"] == keys and got["pending"] == 0
    bootstrap.engine(up).dispose()


def test_sigterm_while_powermta_still_holds_the_pipe_open(make_settings, sqlite_url, tmp_path):
    data = stream(1500, seed=25)
    keys, _ = oracle(data)
    s = make_settings(database_url=sqlite_url, broker_url="")
    pipe = Pipe(s, "--batch-seconds", "0.2")
    assert pipe.feed(data)                          # stdin stays open, as PowerMTA keeps it
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and db_state(s)["keys"] != keys:
        time.sleep(0.2)
    pipe.proc.send_signal(signal.SIGTERM)           # PowerMTA stops: finish cleanly
    assert pipe.proc.wait(timeout=30) == 0, pipe.stderr()
    assert db_state(s)["keys"] == keys
    bootstrap.engine(s).dispose()


def test_batch_sent_again_after_a_crash_before_its_journal_delete_is_stored_once(make_settings, fresh_pg_url,
                                                                                  tmp_path):
    """The window between a batch's intake commit and its journal delete: the next pipe sends the
    batch again; its key makes that a no-op (no second intake row, no duplicate quarantine rows)."""
    from bounceproc.entrypoints.acct_pipe import Batcher, Journal
    from bounceproc.entrypoints.dispatch import process_now
    data = stream(600, seed=26)
    keys, nbad = oracle(data)
    assert nbad > 0
    s = make_settings(database_url=fresh_pg_url, broker_url="", data_dir=str(tmp_path / "data"))
    bootstrap.ensure_schema(s)
    journal = Journal(Path(s.data_dir) / "pipe-journal")
    batcher = Batcher()
    for b in batcher.feed(data) + batcher.finish():
        path = journal.append(b)
        meta, payload = journal.read(path)
        bootstrap.submit_intake(s, "acct", payload, inline=process_now(s), origin="pipe", header=meta["header"],
                                first_line=meta["first_line"], records=meta["lines"], batch_key=meta["key"])
    journal.close()                                  # "crash": committed, journal files still there
    first = db_state(s)
    assert first["keys"] == keys and first["quarantine"] == nbad and first["pending"] == 0

    replay = Pipe(s)                                 # the next start replays the journal
    rc, _ = replay.close(timeout=120)
    assert rc == 0, replay.stderr()
    assert not list((Path(s.data_dir) / "pipe-journal" / "default").glob("*.batch"))
    assert db_state(s) == first
    bootstrap.engine(s).dispose()
