"""ARF reports (RFC 5965), generated with hypothesis in the shapes feedback loops send, read back:
the feedback type, and the complainant recovered whichever way the report still names them —
Original-Rcpt-To, or (redacted) our tracking header, a VERP Original-Mail-From, or the To of the
enclosed original — never the feedback loop's own address nor our sender."""
from __future__ import annotations

import base64

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bounceproc.domain.parse.message import parse_message
from bounceproc.domain.parse.stamp import TRACKING_HEADER, encode_stamp

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FBL = "fbl@isp.example.com"


@st.composite
def arf(draw):
    rcpt = f"{draw(st.sampled_from(['henry', 'ann.b', 'c+tag', 'd-e']))}@{draw(st.sampled_from(['example.com', 'mail.example.org']))}"
    ftype = draw(st.sampled_from(["abuse", "fraud", "other", "not-spam", "virus"]))
    way = draw(st.sampled_from(["rcpt-to", "stamp", "verp", "enclosed-to"]))
    lower = draw(st.booleans())
    h = (lambda n: n.lower()) if lower else (lambda n: n)
    fields = [f"{h('Feedback-Type')}: {ftype}", f"{h('User-Agent')}: ExampleFBL/{draw(st.integers(1, 9))}.0",
              f"{h('Version')}: 1"]
    mail_from = "news@example.net"
    if way == "verp":
        local, _, dom = rcpt.partition("@")
        mail_from = f"bounces+{local}={dom}@bounce.example.net"
    fields.append(f"{h('Original-Mail-From')}: <{mail_from}>")
    if way == "rcpt-to":
        fields.append(f"{h('Original-Rcpt-To')}: <{rcpt}>")
    else:                                        # redacted: no field, or one that names nobody
        redacted = draw(st.sampled_from(["", "[redacted]", "<redacted>", "redacted"]))
        if redacted:
            fields.append(f"{h('Original-Rcpt-To')}: {redacted}")
    fields += [f"{h('Arrival-Date')}: Tue, 10 Mar 2026 10:58:00 +0000", f"{h('Source-IP')}: 192.0.2.7",
               f"{h('Reported-Domain')}: example.net"]
    if draw(st.booleans()):
        fields.reverse()
    report = "\n".join(fields) + "\n"
    if draw(st.booleans()):
        report_part = ("Content-Type: message/feedback-report\nContent-Transfer-Encoding: base64\n\n"
                       + base64.encodebytes(report.encode()).decode())
    else:
        report_part = "Content-Type: message/feedback-report\n\n" + report
    to = rcpt if way == "enclosed-to" else ("redacted@isp.example.com" if draw(st.booleans()) else "[redacted]")
    original = [f"From: News <{mail_from if way == 'verp' else 'news@example.net'}>", f"To: {to}",
                "Subject: March news", "Message-ID: <m-2026-03@example.net>"]
    if way == "stamp":
        original.append(f"{TRACKING_HEADER}: {encode_stamp(rcpt, 'news', 'job-1')}")
    if way == "verp":
        original.insert(0, f"Return-Path: <{mail_from}>")
    enclosed_type = draw(st.sampled_from(["message/rfc822", "text/rfc822-headers"]))
    msg = (f"Return-Path: <{FBL}>\nFrom: Feedback Loop <{FBL}>\nTo: fbl@example.net\n"
           f"Subject: Email Feedback Report\nMIME-Version: 1.0\n"
           f"Content-Type: multipart/report; report-type=feedback-report; boundary=\"ARF\"\n\n"
           f"--ARF\nContent-Type: text/plain\n\nThis is an abuse report.\n\n"
           f"--ARF\n{report_part}\n--ARF\nContent-Type: {enclosed_type}\n\n" + "\n".join(original)
           + "\n\nHello.\n--ARF--\n")
    raw = msg.encode().replace(b"\n", draw(st.sampled_from([b"\n", b"\r\n"])))
    return raw, rcpt, ftype, way


@FUZZ
@given(arf())
def test_generated_reports_name_the_complainant(case):
    raw, rcpt, ftype, way = case
    report = parse_message(raw, envelope_to=["fbl@example.net"])
    assert report.kind == "arf", (way, report)
    addresses = [v.address for v in report.recipients]
    assert addresses == [rcpt], (way, report)
    v = report.recipients[0]
    assert v.feedback_type == ftype
    assert FBL not in addresses and "news@example.net" not in addresses
