"""Pure rules of the sending core: retry / bounce-after schedule, queue states, acct records, DSN."""
from __future__ import annotations

import csv
import email
import io

from bounceproc.domain.mta.acct import Outcome, bounce_category, columns, csv_line, to_record, union_header
from bounceproc.domain.mta.config import DomainSettings
from bounceproc.domain.mta.dsn import FailedRecipient, build_dsn
from bounceproc.domain.mta.queue_state import (
    QueueMode, QueueState, after_delivery, after_queue_failure, settings_in_mode, with_mode,
)
from bounceproc.domain.mta.schedule import next_attempt, retry_delay
from bounceproc.domain.mta.units import Rate

S = DomainSettings(retry_after=(600, 3600, 4 * 3600), bounce_after=86400)


def test_retry_steps_then_the_last_repeats():
    assert [retry_delay(n, S.retry_after) for n in (1, 2, 3, 4, 9)] == [600, 3600, 14400, 14400, 14400]


def test_next_attempt_is_pulled_in_to_bounce_after_then_expires():
    assert next_attempt(0, 1, 100, S) == 700
    assert next_attempt(0, 3, 80000, S) == 86400          # not 80000 + 4h
    assert next_attempt(0, 4, 86400, S) is None           # expired


def test_queue_failures_hold_the_queue_on_the_schedule_and_a_delivery_resets():
    st = after_queue_failure(QueueState(), "no route", 1000, S)
    assert not st.can_connect(1000) and st.can_connect(1600) and st.failures == 1
    st = after_queue_failure(st, "again", 1600, S)
    assert st.retry_at == 1600 + 3600
    assert after_delivery(st).failures == 0 and after_delivery(st).can_connect(1601)


def test_modes_paused_blocks_and_backoff_swaps_in_backoff_settings():
    assert not with_mode(QueueState(), QueueMode.PAUSED, 5).can_connect(10)
    s = DomainSettings(max_msg_rate=Rate(1000, 3600),
                       extra=(("backoff_max_msg_rate", Rate(10, 3600)), ("backoff_retry_after", (3600.0,))))
    b = settings_in_mode(s, QueueMode.BACKOFF)
    assert b.max_msg_rate == Rate(10, 3600) and b.retry_after == (3600.0,)
    assert settings_in_mode(s, QueueMode.NORMAL) is s


def test_acct_records_have_powermta_columns_and_union_header():
    assert columns("d")[:5] == ("type", "timeLogged", "timeQueued", "orig", "rcpt")
    assert columns("d", "*,header_X-Tracker,!vmtaPool")[-1] == "header_X-Tracker"
    assert "vmtaPool" not in columns("d", "*,!vmtaPool")
    header = union_header(("d", "b", "r"), {})
    assert header[0] == "type" and header.count("rcpt") == 1 and "rcvSourceIp" in header
    o = Outcome("b", 1_700_000_000, orig="a@s.test", rcpt="x@y.test", time_queued=1_699_999_000,
                status="5.1.1", diag='smtp;550 5.1.1 "x" no, such user', remote_host="mx.y.test",
                remote_ip="192.0.2.1", queue="y.test/v1", vmta="v1")
    line = csv_line(header, to_record(o), columns("b"))
    row = dict(zip(header, next(csv.reader(io.StringIO(line)))))
    assert line.endswith("\r\n")
    assert row["dsnAction"] == "failed" and row["dsnStatus"] == "5.1.1 (bad destination mailbox address)"
    assert row["bounceCat"] == "bad-mailbox" and row["dsnDiag"] == 'smtp;550 5.1.1 "x" no, such user'
    assert row["dsnMta"] == "mx.y.test (192.0.2.1)" and row["timeLogged"] == "2023-11-14 22:13:20+0000"
    assert row["rcvSourceIp"] == ""            # an r column stays empty on a b row


def test_bounce_categories_from_the_code_table():
    assert [bounce_category(s) for s in ("2.0.0", "5.1.1", "5.1.2", "4.4.7", "5.2.2", "5.7.1", "5.5.0", "4.9.9")] \
        == ["success", "bad-mailbox", "bad-domain", "message-expired", "quota-issues", "policy-related",
            "protocol-errors", "other"]


def test_dsn_is_rfc3464_with_the_original_headers():
    raw = build_dsn(b"Subject: hello\r\nMessage-ID: <m1@s.test>\r\n\r\nbody\r\n", "a@s.test",
                    [FailedRecipient("x@y.test", "5.1.1", "smtp;550 5.1.1 no such user", "mx.y.test")],
                    "mta.test", 1_700_000_000, "dsn1", 1_699_999_000)
    msg = email.message_from_bytes(raw)
    assert msg.get_content_type() == "multipart/report" and msg.get_param("report-type") == "delivery-status"
    parts = msg.get_payload()
    assert [p.get_content_type() for p in parts] == ["text/plain", "message/delivery-status", "text/rfc822-headers"]
    status = parts[1].as_string()
    assert "Final-Recipient: rfc822; x@y.test" in status and "Status: 5.1.1" in status
    assert "Diagnostic-Code: smtp; 550 5.1.1 no such user" in status
    assert "Message-ID: <m1@s.test>" in parts[2].as_string() and b"body" not in raw
