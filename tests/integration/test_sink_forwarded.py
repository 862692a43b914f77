"""A report forwarded as an attachment reaches the same events and suppressions as the report
itself, and the same report received both ways counts once (its own Message-ID is its key)."""
from __future__ import annotations

from pathlib import Path

from forwarding import digest, wrap
from test_sink_recovery import rows, settings, submit  # noqa: F401 - `settings` is a fixture

from bounceproc.app.intake import process_messages
from bounceproc.storage.tables import events, intake, suppressions

OWN = Path(__file__).resolve().parents[2] / "fixtures"
FBL = "fbl@example.net"


def _events(settings, intake_id):
    return sorted((e["type"], e["recipient"], e["reason"]) for e in rows(settings, events, events.c.intake_id == intake_id))


def test_forwarded_complaint_suppresses_like_the_complaint_and_counts_once(settings):
    raw = (OWN / "arf" / "abuse-report.eml").read_bytes()
    fwd = submit(settings, wrap(raw, "outlook", "abuse report"), [FBL])
    assert process_messages(settings, [fwd]) == 1
    got = _events(settings, fwd)
    assert got and {t for t, _, _ in got} >= {"complained"}
    recipient = next(r for t, r, _ in got if t == "complained")
    assert {s["reason"] for s in rows(settings, suppressions, suppressions.c.address == recipient)} >= {"complaint"}
    assert rows(settings, intake, intake.c.id == fwd)[0]["state"] == "done"

    direct = submit(settings, raw, [FBL])                      # the same report, straight from the ISP
    assert process_messages(settings, [direct]) == 1
    assert _events(settings, direct) == []                    # already recorded: same event keys
    total = [e for e in rows(settings, events, events.c.type == "complained") if e["recipient"] == recipient]
    assert len(total) == 1


def test_digest_of_a_complaint_and_a_bounce_records_both(settings):
    arf = (OWN / "arf" / "microsoft-jmrp.eml").read_bytes()
    dsn = (OWN / "dsn" / "exim-mailbox-full.eml").read_bytes()
    i = submit(settings, digest([arf, dsn]), [FBL])
    assert process_messages(settings, [i]) == 1
    types = [t for t, _, _ in _events(settings, i)]
    assert types.count("complained") == 1 and types.count("bounced") + types.count("deferred") >= 1
