"""Acct files: PowerMTA's file naming, a header at the start of each file, rotation by max-size;
a `|command` pipe gets the header first."""
from __future__ import annotations

import csv

from mta_testing import wait_for

from bounceproc.domain.mta.acct import Outcome
from bounceproc.domain.mta.config import AcctFile
from bounceproc.mta.acct_writer import AcctWriter


def _outcome(i: int) -> Outcome:
    return Outcome("d", 1_700_000_000 + i, orig="a@s.test", rcpt=f"u{i}@y.test", time_queued=1_700_000_000,
                   status="2.0.0", diag="smtp;250 ok", queue="y.test/{default}")


def test_files_rotate_by_size_and_each_starts_with_the_header(tmp_path):
    w = AcctWriter([AcctFile(str(tmp_path / "acct.csv"), records=("d", "b"), max_size=600)]).start()
    for i in range(20):
        w.emit(_outcome(i))
    w.stop()
    files = sorted(tmp_path.glob("acct-*.csv"))
    assert len(files) > 2 and all(f.name.startswith("acct-") and f.name.endswith("-%04d.csv" % n)
                                  for n, f in enumerate(files))
    rcpts = []
    for f in files:
        rows = list(csv.reader(f.open(newline="")))
        assert rows[0][:3] == ["type", "timeLogged", "timeQueued"]
        rcpts += [r[4] for r in rows[1:]]
    assert rcpts == [f"u{i}@y.test" for i in range(20)]


def test_pipe_gets_the_header_then_the_records(tmp_path):
    out = tmp_path / "out.csv"
    w = AcctWriter([AcctFile(f"cat > {out}", pipe=True, records=("d",))]).start()
    for i in range(3):
        w.emit(_outcome(i))
    w.stop()
    lines = wait_for(lambda: (lambda t: t if t.count(b"\r\n") == 4 else None)(out.read_bytes() if out.exists() else b""),
                     what="4 lines").decode().split("\r\n")
    assert lines[0].startswith("type,timeLogged") and lines[1].startswith("d,")
