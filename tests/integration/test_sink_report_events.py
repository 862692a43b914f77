"""report_events (pure domain translation Report -> Events), without I/O.

Kept beside the other sink tests; it needs no database or network."""
from __future__ import annotations

from datetime import datetime, timezone

from bounceproc.domain.parse.message import Report, Verdict
from bounceproc.domain.parse.report_events import message_key, normalise_list_id, report_events

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)


def events_of(kind, *verdicts, key="mid:x@example.com", **kw):
    return report_events(Report(kind, tuple(verdicts)), msg_key=key, received_at=NOW, **kw)


def test_dsn_actions_map_to_event_types():
    got = events_of("dsn", Verdict(address="a@example.com", action="failed", status="5.1.1"),
                    Verdict(address="b@example.com", action="delayed", status="4.2.2"),
                    Verdict(address="c@example.com", action="relayed"),
                    Verdict(address="d@example.com", status="4.4.7"))
    assert [(e.type, e.recipient) for e in got] == [
        ("bounced", "a@example.com"), ("deferred", "b@example.com"), ("remote_status", "c@example.com"),
        ("deferred", "d@example.com")]
    assert {e.source for e in got} == {"dsn"}


def test_a_dsn_with_no_recipient_gives_nothing_and_autoreplies_give_nothing():
    assert events_of("dsn", Verdict(address="", action="failed")) == []
    assert events_of("autoreply", Verdict(address="a@example.com", reason="vacation")) == []
    assert events_of("not-bounce") == [] and events_of("unknown") == []


def test_complaint_with_list_also_unsubscribes_and_keys_are_stable():
    v = Verdict(address="A@Example.COM", feedback_type="abuse", list_id="News <news.example.net>",
                source_ip="192.0.2.1", original_mail_from="<bounces@example.net>")
    first, again = events_of("arf", v), events_of("arf", v)
    assert [(e.type, e.recipient, e.list_id) for e in first] == [
        ("complained", "a@example.com", "news.example.net"), ("unsubscribed", "a@example.com", "news.example.net")]
    assert [e.event_key for e in first] == [e.event_key for e in again]
    assert first[0].sender == "bounces@example.net" and first[0].source_ip == "192.0.2.1"
    assert events_of("arf", v, key="mid:other@example.com")[0].event_key != first[0].event_key


def test_not_spam_report_is_stored_but_unsubscribes_nobody():
    got = events_of("arf", Verdict(address="a@example.com", feedback_type="not-spam", list_id="l"))
    assert [(e.type, e.feedback_type) for e in got] == [("complained", "not-spam")]


def test_redacted_complaint_is_recovered_from_what_we_sent_or_marked_unattributed():
    v = Verdict(address="", feedback_type="abuse", original_message_id="<s-1@example.net>")
    sent = {"s-1@example.net": {"recipient": "z@example.com", "list_id": "l1", "job_id": "j1",
                                "source_ip": "192.0.2.9", "sender": "b@example.net"}}
    got = events_of("arf", v, sent=sent)
    assert [(e.type, e.recipient, e.job_id, e.list_id) for e in got] == [
        ("complained", "z@example.com", "j1", "l1"), ("unsubscribed", "z@example.com", "j1", "l1")]
    assert got[0].attrs["recovered_by"] == "message-id"
    orphan = events_of("arf", v)
    assert [(e.type, e.recipient, e.attrs.get("unattributed")) for e in orphan] == [("complained", "", True)]


def test_arrival_date_is_used_unless_it_is_absurd():
    ok = events_of("arf", Verdict(address="a@example.com", arrival_date="Wed, 25 Nov 2026 09:58:00 +0000"))
    assert ok[0].occurred_at == datetime(2026, 11, 25, 9, 58, tzinfo=timezone.utc)
    future = events_of("arf", Verdict(address="a@example.com", arrival_date="Wed, 25 Nov 2099 09:58:00 +0000"))
    assert future[0].occurred_at == NOW


def test_fields_are_bounded_and_nul_free():
    got = events_of("dsn", Verdict(address="a@example.com", action="failed", diagnostic="bad\x00text" + "x" * 5000,
                                   status="5.1.1 extra junk that is long"))
    assert "\x00" not in got[0].diagnostic and len(got[0].diagnostic) <= 2000 and len(got[0].status) <= 16


def test_message_key_prefers_the_message_id():
    assert message_key("<a@b>", b"x") == message_key("a@b", b"y") == "mid:a@b"
    assert message_key("", b"x") != message_key("", b"y")
    assert normalise_list_id("plain-id") == "plain-id"
