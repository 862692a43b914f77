"""Received messages -> events -> suppressions, on PostgreSQL and SQLite: recipient recovery
(VERP, tracking header, Message-ID of what we sent), complaints that also unsubscribe from their
list, unattributed complaints, quarantine of unreadable messages, reprocessing."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from bounceproc import bootstrap

from bounceproc.app import service
from bounceproc.storage.complaints import complaint_rates, unattributed_complaints
from bounceproc.storage.event_counts import window_counts
from bounceproc.storage.tables import events, intake, quarantine, suppressions
from bounceproc.domain.events import Event, event_key
from bounceproc.app.message_intake import reprocess_messages
from bounceproc.app.intake import process_intake, process_messages

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "sink"
FBL = "fbl@example.net"


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request, make_settings, sqlite_url):
    if request.param == "sqlite":
        return make_settings(database_url=sqlite_url)
    return make_settings(database_url=request.getfixturevalue("fresh_pg_url"))


def submit(settings, name_or_bytes, rcpt_tos) -> int:
    raw = name_or_bytes if isinstance(name_or_bytes, bytes) else (FIXTURES / name_or_bytes).read_bytes()
    with bootstrap.engine(settings).begin() as conn:
        return bootstrap.insert_intake(conn, "message", raw, origin="sink:192.0.2.1",
                                       meta={"mail_from": "", "rcpt_tos": rcpt_tos, "peer": "192.0.2.1"})


def rows(settings, table, *where):
    with bootstrap.engine(settings).connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(table).where(*where))]


def test_complaint_with_tracking_header_suppresses_and_unsubscribes_from_its_list(settings):
    i = submit(settings, "arf-redacted-tracking-header.eml", [FBL])
    assert process_messages(settings, [i]) == 1
    evs = {e["type"]: e for e in rows(settings, events, events.c.intake_id == i)}
    assert set(evs) == {"complained", "unsubscribed"}
    c = evs["complained"]
    assert (c["recipient"], c["feedback_type"], c["source_ip"], c["job_id"]) == (
        "carol@example.com", "abuse", "192.0.2.10", "job-2026-11")
    assert c["sender"] == "news@example.net" and c["attrs"]["recovered_by"] == "stamp"
    assert evs["unsubscribed"]["list_id"] == c["list_id"] == "newsletter.example.net"
    scopes = {s["scope"]: s["reason"] for s in rows(settings, suppressions, suppressions.c.address == "carol@example.com")}
    assert scopes == {"global": "complaint", f"list:{c['list_id']}": "unsubscribe"}
    assert rows(settings, intake, intake.c.id == i)[0]["state"] == "done"


# the fixture arf-redacted-message-id.eml reports mail that arrived on 2026-11-25 10:30 UTC
SENT_AT = datetime(2026, 11, 25, 10, 0, tzinfo=timezone.utc)


def test_redacted_complaint_is_recovered_from_the_message_id_we_sent(settings):
    sent = Event(event_key=event_key("test-acct", "d", 7731), type="delivered", recipient="erin@example.com",
                 occurred_at=SENT_AT, source="acct",
                 sender="news@example.net", source_ip="192.0.2.11", job_id="spring-sale",
                 list_id="offers", message_id="<sent-7731@example.net>")
    with bootstrap.engine(settings).begin() as conn:
        service.record_events(conn, [sent], settings)
    i = submit(settings, "arf-redacted-message-id.eml", [FBL])
    assert process_messages(settings, [i]) == 1
    evs = {e["type"]: e for e in rows(settings, events, events.c.intake_id == i)}
    c = evs["complained"]
    assert (c["recipient"], c["job_id"], c["list_id"]) == ("erin@example.com", "spring-sale", "offers")
    assert c["attrs"]["recovered_by"] == "message-id"
    assert evs["unsubscribed"]["list_id"] == "offers"
    assert {s["scope"] for s in rows(settings, suppressions, suppressions.c.address == "erin@example.com")} == {
        "global", "list:offers"}
    with bootstrap.engine(settings).connect() as conn:
        # the window is fixed around the fixture's Arrival-Date, so the test holds on any calendar date
        rates = complaint_rates(conn, SENT_AT - timedelta(hours=1), SENT_AT + timedelta(days=1))
    by = {(r["dimension"], r["key"]): r for r in rates}
    assert by[("job", "spring-sale")]["complaints"] == 1 and by[("job", "spring-sale")]["delivered"] == 1
    assert by[("ip", "192.0.2.11")]["rate"] == 1.0 and by[("ip", "192.0.2.11")]["warn"]
    assert by[("domain", "example.net")]["complaints"] == 1


def test_unrecoverable_complaint_is_stored_counted_and_listed_as_unattributed(settings):
    i = submit(settings, "arf-redacted-unattributed.eml", [FBL])
    assert process_messages(settings, [i]) == 1
    evs = rows(settings, events, events.c.intake_id == i)
    assert [(e["type"], e["recipient"], e["attrs"]["unattributed"]) for e in evs] == [("complained", "", True)]
    assert rows(settings, suppressions, suppressions.c.address == "") == []
    with bootstrap.engine(settings).connect() as conn:
        listed = unattributed_complaints(conn, datetime.now(timezone.utc) - timedelta(days=1))
        # the fixture has no Arrival-Date: the complaint is dated by its arrival here, now
        rates = complaint_rates(conn, datetime.now(timezone.utc) - timedelta(days=1))
    assert [r["intake_id"] for r in listed] == [i]
    assert [(r["key"], r["complaints"], r["delivered"]) for r in rates if r["dimension"] == "ip"] == [
        ("192.0.2.12", 1, 0)]


def test_verp_envelope_names_the_recipient_of_a_garbled_dsn(settings):
    i = submit(settings, "dsn-verp-garbled.eml", ["bounces+dave=example.com@bounces.example.net"])
    assert process_messages(settings, [i]) == 1
    evs = rows(settings, events, events.c.intake_id == i)
    assert [(e["type"], e["recipient"], e["status"], e["reason"]) for e in evs] == [
        ("bounced", "dave@example.com", "5.1.1", "userunknown")]
    assert evs[0]["sender"] == "bounces+dave=example.com@bounces.example.net"
    assert rows(settings, suppressions, suppressions.c.address == "dave@example.com")[0]["reason"] == "hard_bounce"


def test_same_message_received_twice_is_recorded_once(settings):
    a = submit(settings, "dsn-verp-garbled.eml", ["bounces+dave=example.com@bounces.example.net"])
    b = submit(settings, "dsn-verp-garbled.eml", ["bounces+dave=example.com@bounces.example.net"])
    assert process_messages(settings, [a, b]) == 2
    assert len(rows(settings, events, events.c.recipient == "dave@example.com")) == 1


def test_unreadable_message_is_quarantined_not_retried(settings):
    i = submit(settings, b"", [FBL])
    j = submit(settings, "dsn-verp-garbled.eml", ["bounces+dave=example.com@bounces.example.net"])
    assert process_messages(settings, [i, j]) == 2
    q = rows(settings, quarantine, quarantine.c.intake_id == i)
    assert len(q) == 1 and "unreadable" in q[0]["reason"]
    assert {r["state"] for r in rows(settings, intake, intake.c.id.in_([i, j]))} == {"done"}


def test_service_process_intake_uses_the_same_path(settings):
    i = submit(settings, "arf-redacted-tracking-header.eml", [FBL])
    res = process_intake(settings, i)
    assert (res.events, res.new_events, res.suppressed, res.quarantined) == (2, 2, 2, 0)
    assert {e["type"] for e in rows(settings, events, events.c.intake_id == i)} == {"complained", "unsubscribed"}


def test_verp_separator_setting_reads_a_hyphenated_return_path(make_settings, sqlite_url):
    """`verp_separator = "+"`: a return path whose own local part has a hyphen still names the
    recipient (by default the hyphen would be taken for PowerMTA's separator)."""
    settings = make_settings(database_url=sqlite_url, verp_separator="+")
    i = submit(settings, "dsn-verp-garbled.eml", ["bounce-handler+dave=example.com@bounces.example.net"])
    assert process_messages(settings, [i]) == 1
    assert [(e["recipient"], e["reason"]) for e in rows(settings, events, events.c.intake_id == i)] == [
        ("dave@example.com", "userunknown")]


def test_reprocess_keeps_unchanged_events_and_reports_nothing_changed(settings):
    i = submit(settings, "dsn-verp-garbled.eml", ["bounces+dave=example.com@bounces.example.net"])
    process_messages(settings, [i])
    before = rows(settings, events, events.c.intake_id == i)
    since = datetime.now(timezone.utc) - timedelta(hours=1)
    dry = reprocess_messages(settings, since, dry_run=True)
    assert (dry["messages"], dry["changed"], dry["events_before"], dry["events_after"]) == (1, 0, 1, 1)
    done = reprocess_messages(settings, since)
    assert done["changed"] == 0
    assert rows(settings, events, events.c.intake_id == i) == before


def test_reprocess_replaces_a_verdict_that_changed(settings):
    i = submit(settings, "dsn-verp-garbled.eml", ["bounces+dave=example.com@bounces.example.net"])
    process_messages(settings, [i])
    # Pretend an older rule set had called it a mailbox-full soft bounce.
    with bootstrap.engine(settings).begin() as conn:
        conn.execute(events.update().where(events.c.intake_id == i).values(reason="mailboxfull", rule="old-rule"))
    summary = reprocess_messages(settings, datetime.now(timezone.utc) - timedelta(hours=1))
    assert summary["changed"] == 1 and "mailboxfull" in summary["changes"][0]
    evs = rows(settings, events, events.c.intake_id == i)
    assert [(e["reason"], e["rule"] != "old-rule") for e in evs] == [("userunknown", True)]
    with bootstrap.engine(settings).connect() as conn:     # replaced, not counted twice
        assert window_counts(conn, datetime.now(timezone.utc) - timedelta(hours=1), "type") == {"bounced": 1}


def test_reprocess_leaves_unattributed_complaints_in_place(settings):
    i = submit(settings, "arf-redacted-unattributed.eml", [FBL])
    process_messages(settings, [i])
    summary = reprocess_messages(settings, datetime.now(timezone.utc) - timedelta(hours=1))
    assert summary["changed"] == 0
    assert [e["recipient"] for e in rows(settings, events, events.c.intake_id == i)] == [""]
