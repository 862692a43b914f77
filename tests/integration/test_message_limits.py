"""Issue 13, item 14: what the message reader's limits leave unread goes to the quarantine, with
the reason, and shows in `bounceproc show status` (SQLite file, embedded: processed in-process)."""
from __future__ import annotations

import subprocess

from bp_testing import bin_path, settings_env, text_notice
from sqlalchemy import func, select

from bounceproc import bootstrap
from bounceproc.domain.parse import legacy
from bounceproc.entrypoints.dispatch import process_now
from bounceproc.storage.tables import events, quarantine



def test_recipients_past_the_limit_are_quarantined_with_the_reason_and_counted(make_settings, sqlite_url):
    s = make_settings(database_url=sqlite_url, broker_url="")
    iid = bootstrap.submit_intake(s, "message", text_notice(legacy.MAX_RECIPIENTS + 20), origin="sink:192.0.2.9",
                                  inline=process_now(s),
                                  meta={"mail_from": "", "rcpt_tos": ["bounces@bounces.example.net"]})
    with bootstrap.engine(s).connect() as conn:
        n = conn.execute(select(func.count()).select_from(events).where(events.c.intake_id == iid)).scalar_one()
        q = conn.execute(select(quarantine).where(quarantine.c.intake_id == iid)).all()
    assert n == legacy.MAX_RECIPIENTS                     # what was read is stored ...
    assert len(q) == 1 and q[0].reason.startswith("partly read:") and "not read" in q[0].reason
    out = subprocess.run([bin_path("bounceproc"), "show", "status"], env=settings_env(s), capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "Quarantined lines/messages: 1 in all" in out.stdout and "partly read" in out.stdout
