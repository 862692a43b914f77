"""End to end over real parts: corpus messages sent by real SMTP clients to the sink, committed to
PostgreSQL, processed by a real Celery worker on Redis, checked as events and suppressions.

The crash test kills the sink (a `bounceproc sink` subprocess) with SIGKILL right after it has
answered 250s, and the worker mid-task, restarts both, and checks that every message that was
answered 250 is processed exactly once into events.
"""
from __future__ import annotations

import json
import os
import queue
import signal
import smtplib
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bp_testing import settings_env

from bounceproc import bootstrap
from bounceproc.entrypoints import smtp_sink
from bounceproc.storage.tables import events, intake, suppressions
from bounceproc.domain.parse.report_events import message_key, report_events
from bounceproc.app.message_intake import message_id_of, parse_report

BOUNCE_ADDR = "bounces@bounces.example.net"
FBL = "fbl@example.net"
ACCEPT = ("bounces.example.net", FBL)


def bin_path(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def corpus_messages(corpus_dir, limit: int | None = None) -> list[tuple[str, bytes, list[str]]]:
    """(name, raw with CRLF line endings, envelope recipients) of the labelled corpus messages."""
    labels = json.loads((corpus_dir / "labels.json").read_text())
    out = []
    for item in labels[:limit]:
        raw = (corpus_dir / item["file"]).read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        out.append((item["file"], raw, [FBL if item["family"] == "arf" else BOUNCE_ADDR]))
    return out


def expected_keys(raw: bytes, rcpt_tos: list[str]) -> set[str]:
    report = parse_report(raw, rcpt_tos)
    evs = report_events(report, msg_key=message_key(message_id_of(raw), raw),
                        received_at=datetime.now(timezone.utc), return_path=rcpt_tos[0])
    return {e.event_key for e in evs}


def send_all(port_of, items, connections: int, stop_after_accepted: int = 0, on_stop=None):
    """Send items [(n, raw, rcpt_tos)] over `connections` sessions. Returns ({n: intake_id}, [n not
    accepted]). After `stop_after_accepted` 250s, `on_stop()` is called once (e.g. kill -9)."""
    work: queue.Queue = queue.Queue()
    for it in items:
        work.put(it)
    accepted: dict[int, int] = {}
    failed: list[int] = []
    lock = threading.Lock()
    fired = threading.Event()

    def worker() -> None:
        c = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                n, raw, rcpts = work.get_nowait()
            except queue.Empty:
                break
            try:
                if c is None:
                    c = smtplib.SMTP("127.0.0.1", port_of(), timeout=30)
                    c.ehlo("mta.example.com")
                c.mail("<>")
                for r in rcpts:
                    c.rcpt(r)
                code, text = c.data(raw)
            except (OSError, smtplib.SMTPException):
                with lock:
                    failed.append(n)
                c = None
                continue
            with lock:
                if code == 250:
                    accepted[n] = int(text.rsplit(b" ", 1)[1])
                    if stop_after_accepted and len(accepted) >= stop_after_accepted and not fired.is_set():
                        fired.set()
                        on_stop()
                else:
                    failed.append(n)
        if c is not None:
            try:
                c.quit()
            except (OSError, smtplib.SMTPException):
                pass

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    return accepted, failed


def wait_until_processed(settings, timeout: float = 120.0, on_poll=None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with bootstrap.engine(settings).connect() as conn:
            pending = conn.execute(select(func.count()).select_from(intake)
                                   .where(intake.c.state == "pending")).scalar()
        if not pending:
            return
        if on_poll:
            on_poll()
        time.sleep(0.2)
    raise AssertionError(f"{pending} intake rows still pending after {timeout} s")


def event_keys_in_db(settings) -> list[str]:
    with bootstrap.engine(settings).connect() as conn:
        return list(conn.execute(select(events.c.event_key).where(events.c.source.in_(("dsn", "arf")))).scalars())


@pytest.fixture
def pg_settings(make_settings, fresh_pg_url, redis_url):
    return make_settings(database_url=fresh_pg_url, broker_url=redis_url, sink_accept=ACCEPT,
                         sweep_after_seconds=1)


def test_corpus_over_smtp_becomes_events_and_suppressions(pg_settings, corpus_dir, celery_worker):
    items = corpus_messages(corpus_dir)
    sink = smtp_sink.start_sink(pg_settings, "127.0.0.1:0")
    try:
        with celery_worker(pg_settings) as w:
            accepted, failed = send_all(lambda: sink.port, [(n, raw, r) for n, (_, raw, r) in enumerate(items)], 4)
            assert not failed and len(accepted) == len(items)
            wait_until_processed(pg_settings)
    finally:
        sink.stop()
    expected = set().union(*(expected_keys(raw, r) for _, raw, r in items))
    stored = event_keys_in_db(pg_settings)
    assert set(stored) == expected and len(stored) == len(expected)
    with bootstrap.engine(pg_settings).connect() as conn:
        types = dict(conn.execute(select(events.c.type, func.count()).group_by(events.c.type)).all())
        sup = dict(conn.execute(select(suppressions.c.reason, func.count()).group_by(suppressions.c.reason)).all())
    assert types.get("bounced", 0) > 200 and types.get("complained", 0) >= 10
    assert sup.get("hard_bounce", 0) > 50 and sup.get("complaint", 0) >= 10


class SinkProcess:
    """`bounceproc sink` as a subprocess on a free port; kill() is SIGKILL by PID."""

    def __init__(self, settings, log_path):
        self._log = open(log_path, "ab")
        self.proc = subprocess.Popen(
            [bin_path("bounceproc"), "sink", "--listen", "127.0.0.1:0", "--accept", *ACCEPT],
            env=settings_env(settings), stdout=subprocess.PIPE, stderr=self._log)
        line = b""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and b"listening on" not in line:
            line = self.proc.stdout.readline()
            if not line and self.proc.poll() is not None:
                raise RuntimeError(f"sink exited: {log_path.read_text()[-2000:]}")
        self.port = int(line.split(b"listening on ", 1)[1].split(b",", 1)[0].rsplit(b":", 1)[1])

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


def test_kill_9_of_sink_and_worker_loses_nothing_and_duplicates_nothing(pg_settings, corpus_dir, celery_worker,
                                                                         tmp_path):
    base = [(name, raw, r) for name, raw, r in corpus_messages(corpus_dir) if b"Content-Type" in raw]
    items = []
    for n in range(400):                   # unique messages: our own Message-ID first
        _, raw, rcpts = base[n % len(base)]
        items.append((n, f"Message-ID: <crash-{n}@mx.example.com>\r\n".encode() + raw, rcpts))
    by_n = {n: (raw, r) for n, raw, r in items}

    first = SinkProcess(pg_settings, tmp_path / "sink.log")
    accepted1, failed1 = send_all(lambda: first.port, items, 8, stop_after_accepted=60, on_stop=first.kill)
    first.stop()
    assert 60 <= len(accepted1) < len(items), "the sink was not killed mid-stream"
    # A real MTA retries what was not answered 250; so do we, against the restarted sink.
    second = SinkProcess(pg_settings, tmp_path / "sink.log")
    try:
        retry = [it for it in items if it[0] not in accepted1]
        accepted2, failed2 = send_all(lambda: second.port, retry, 4)
    finally:
        second.stop()
    assert not failed2
    accepted = {**accepted1, **accepted2}
    assert len(accepted) == len(items)

    # Every id answered 250 is in the durable intake (committed before the answer).
    with bootstrap.engine(pg_settings).connect() as conn:
        ids = set(conn.execute(select(intake.c.id)).scalars())
    assert set(accepted.values()) <= ids

    # Worker killed mid-task, then restarted; the sweep re-enqueues what its lost tasks held.
    # Tasks carry batches of ids, each processed in one transaction: kill as soon as the first
    # batch is committed, while the worker is busy with the next ones.
    with celery_worker(pg_settings) as w:
        deadline = time.monotonic() + 60
        done = 0
        while time.monotonic() < deadline and not done:
            with bootstrap.engine(pg_settings).connect() as conn:
                done = conn.execute(select(func.count()).select_from(intake).where(intake.c.state == "done")).scalar()
            time.sleep(0.005)
        w.kill()
    with bootstrap.engine(pg_settings).connect() as conn:
        left = conn.execute(select(func.count()).select_from(intake).where(intake.c.state == "pending")).scalar()
    assert done and left, "the worker was not killed mid-stream"
    with celery_worker(pg_settings):
        def sweep() -> None:
            from bounceproc.app.intake import pending_intake_ids
            from bounceproc.entrypoints.dispatch import process_now
            bootstrap.enqueue_intake(pg_settings, pending_intake_ids(pg_settings, 1), process_now(pg_settings))
        sweep()
        wait_until_processed(pg_settings, timeout=180, on_poll=sweep)

    expected_accepted = set().union(*(expected_keys(*by_n[n]) for n in accepted))
    stored = event_keys_in_db(pg_settings)
    assert len(stored) == len(set(stored))                     # exactly once
    assert expected_accepted <= set(stored)                   # nothing accepted was lost
    assert set(stored) == expected_accepted                   # and nothing else appeared
