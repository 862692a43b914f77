"""Accounting input that used to stop or empty the pipe (issue 13, items 2 and 3), end to end on
real PostgreSQL: `bounceproc import` and `bounceproc pipe` as subprocesses, processing in-process.

- a NUL byte in a record line, or in the header line, is quarantined (escaped) and never blocks the
  lines after it; `import` exits 0 and the pipe stores what follows;
- a header without timeLogged dates records by timeQueued (attrs time_from), or by arrival;
- a file with no accounting record at all says so, and `import` exits 3.
"""
from __future__ import annotations

import subprocess

import pytest
from bp_testing import bin_path, settings_env
from sqlalchemy import select
from test_pipe_support import Pipe, db_state

from bounceproc import bootstrap
from bounceproc.storage.tables import events, quarantine, suppressions

pytestmark = pytest.mark.slow

HDR = b"type,timeLogged,orig,rcpt,dsnStatus,dsnDiag,vmta,jobId,bounceCat"
# the header a widely used PowerMTA bounce handler tells its users to write: no timeLogged
NO_TL = b"type,timeQueued,bounceCat,vmta,orig,rcpt,srcMta,dlvSourceIp,jobId,dsnStatus,dsnMta,dsnDiag"


def b_row(i: int) -> bytes:
    return (b"b,2026-12-01 10:00:%02d+0000,s@example.net,u%d@example.com,5.1.1,"
            b"smtp;550 5.1.1 no such user,vmta-1,job-1,bad-mailbox" % (i % 60, i))


def run_import(settings, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([bin_path("bounceproc"), "import", *args], env=settings_env(settings),
                          capture_output=True, timeout=120)


def stored(settings):
    with bootstrap.engine(settings).connect() as conn:
        rcpts = set(conn.execute(select(events.c.recipient)).scalars())
        q = conn.execute(select(quarantine.c.line_no, quarantine.c.reason, quarantine.c.raw)).all()
        sup = set(conn.execute(select(suppressions.c.address)).scalars())
    return rcpts, q, sup


@pytest.mark.parametrize("where", ["record", "header"])
def test_a_nul_byte_is_quarantined_and_the_import_goes_on(make_settings, fresh_pg_url, tmp_path, where):
    rows = [HDR, b_row(0).replace(b"no such", b"no\x00such")] + [b_row(i) for i in range(1, 102)]
    if where == "header":
        rows[0] = HDR.replace(b"dsnStatus", b"dsn\x00Status")
    src = tmp_path / "acct.csv"
    src.write_bytes(b"\n".join(rows) + b"\n")
    s = make_settings(database_url=fresh_pg_url, broker_url="")
    r = run_import(s, str(src))
    assert r.returncode == 0, r.stderr.decode()
    rcpts, q, _ = stored(s)
    assert {f"u{i}@example.com" for i in range(1, 102)} <= rcpts and "u0@example.com" not in rcpts
    nul = [x for x in q if "NUL" in x.reason]
    assert nul and all("\\x00" in x.raw and "\x00" not in x.raw for x in nul)
    assert db_state(s)["pending"] == 0 and db_state(s)["failed"] == 0
    r = run_import(s, "--restart", str(src))          # the same again: still no error
    assert r.returncode == 0, r.stderr.decode()


def test_a_nul_byte_does_not_poison_the_pipe(make_settings, fresh_pg_url):
    s = make_settings(database_url=fresh_pg_url, broker_url="")
    data = b"\n".join([HDR.replace(b"vmta", b"vm\x00ta"), b_row(0) + b"\x00"] + [b_row(i) for i in range(1, 50)]) + b"\n"
    p = Pipe(s, "--batch-lines", "10")
    assert p.feed(data)
    rc, _ = p.close(timeout=120)
    assert rc == 0, p.stderr()
    p2 = Pipe(s)                                        # a later run has nothing left to replay
    assert p2.feed(HDR + b"\n" + b_row(77) + b"\n") and p2.close(timeout=120)[0] == 0
    rcpts, q, _ = stored(s)
    assert {f"u{i}@example.com" for i in range(1, 50)} | {"u77@example.com"} <= rcpts
    assert "replaying" not in p2.stderr() and db_state(s)["pending"] == 0


def test_a_header_without_timelogged_dates_records_by_timequeued(make_settings, fresh_pg_url, tmp_path):
    rows = [NO_TL, b"b,2026-12-01 09:00:00+0000,bad-mailbox,vmta-1,s@example.net,gone@example.com,"
                   b"app,198.51.100.5,job-1,5.1.1,mx.example.com,smtp;550 5.1.1 user unknown"]
    src = tmp_path / "bounces.csv"
    src.write_bytes(b"\r\n".join(rows) + b"\r\n")
    s = make_settings(database_url=fresh_pg_url, broker_url="")
    r = run_import(s, str(src))
    assert r.returncode == 0, r.stderr.decode()
    with bootstrap.engine(s).connect() as conn:
        e = conn.execute(select(events)).one()
    assert e.recipient == "gone@example.com" and e.attrs["time_from"] == "timeQueued"
    assert e.occurred_at.isoformat().startswith("2026-12-01T09:00:00")
    assert stored(s)[2] == {"gone@example.com"}


@pytest.mark.parametrize("content", [bytes(range(256)) * 8, b"id,name,email\n1,Ann,ann@example.com\n2,Bo,bo@example.com\n"])
def test_a_file_with_no_accounting_record_says_so_and_import_fails(make_settings, fresh_pg_url, tmp_path, content):
    src = tmp_path / "not-acct.bin"
    src.write_bytes(content)
    s = make_settings(database_url=fresh_pg_url, broker_url="")
    r = run_import(s, str(src))
    assert r.returncode == 3 and b"no valid accounting record" in r.stderr, r.stderr.decode()
    p = Pipe(s)
    assert p.feed(content)
    assert p.close(timeout=120)[0] == 0 and "no valid accounting record" in p.stderr()
