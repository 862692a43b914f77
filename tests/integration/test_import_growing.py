"""`bounceproc import` of an acct file that PowerMTA is still writing, cut at any byte: importing
what is there, then again once the rest is written, stores exactly the events of the whole file
(the embedded default, in process; hypothesis picks the cut, including inside a multi-line
record and inside a line)."""
from __future__ import annotations

import uuid
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from bounceproc import bootstrap
from bounceproc.entrypoints.acct_pipe import import_file
from bounceproc.storage.tables import events
from bounceproc.config import load_settings
from bounceproc.domain.parse.acct import parse_acct_batch

HEADER = "type,timeLogged,rcpt,dsnStatus,dsnDiag,bounceCat"


def _record(i: int) -> str:
    t = f"2026-03-01 10:{i % 60:02d}:00+0000"
    if i % 3 == 1:          # a diagnostic on two lines (a quoted field holding CRLF)
        return f'b,{t},m{i}@example.com,5.1.1,"smtp;550 5.1.1 user unknown\r\n  (second line)",bad-mailbox'
    return f"d,{t},r{i}@example.com,2.0.0,smtp;250 ok,"


CONTENT = ("\r\n".join([HEADER] + [_record(i) for i in range(9)]) + "\r\n").encode()
EXPECTED = {e.event_key for e in parse_acct_batch("", CONTENT, 1)[0]}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(st.integers(0, len(CONTENT)), st.integers(1, 4))
def test_a_file_imported_while_it_grows_gets_every_event_once(tmp_path: Path, cut: int, batch_lines: int):
    run = tmp_path / uuid.uuid4().hex[:8]
    run.mkdir()
    settings = load_settings(database_url=f"sqlite:///{run / 'bp.db'}", data_dir=str(run), broker_url="")
    bootstrap.migrate(settings)
    acct = run / "acct.csv"
    acct.write_bytes(CONTENT[:cut])                  # what PowerMTA has written so far (mtime: now)
    import_file(settings, acct, batch_lines=batch_lines)
    acct.write_bytes(CONTENT)                        # the rest arrives
    import_file(settings, acct, batch_lines=batch_lines)
    with bootstrap.engine(settings).connect() as conn:
        keys = list(conn.execute(select(events.c.event_key)).scalars())
    bootstrap.dispose_engine(settings)             # this example's engine only: others stay pooled
    assert len(keys) == len(set(keys)) and set(keys) == EXPECTED, (cut, CONTENT[:cut][-60:])
