"""Well-formed RFC 3464 reports, generated with hypothesis in the many legal shapes real MTAs use,
read back exactly: every failed recipient with its status, reply code and Remote-MTA, no other
recipient (not the sender, not a delayed or delivered one as a failure), whatever the line
endings, header case, folding, field order, extra fields, charset of the notification, transfer
encoding of the report part, or nesting inside a forwarding message."""
from __future__ import annotations

import base64
import quopri

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bounceproc.domain.parse.message import parse_message

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# (status, reply code, diagnostic text): failures whose wording carries the status.
FAILURES = [
    ("5.1.1", "550", "550 5.1.1 <{a}>: Recipient address rejected: User unknown"),
    ("5.2.2", "552", "552 5.2.2 Mailbox full"),
    ("5.1.2", "550", "550 5.1.2 Host unknown (Name server: host not found)"),
    ("5.7.1", "554", "554 5.7.1 Service unavailable; Client host [192.0.2.7] blocked using zen.spamhaus.org"),
    ("5.2.1", "550", "550 5.2.1 The email account that you tried to reach is disabled"),
    ("4.4.7", "", "delivery expired (message too old)"),
]


def _fold(name: str, value: str, fold: bool) -> str:
    if not fold or len(value) < 30:
        return f"{name}: {value}"
    cut = value.rfind(" ", 0, len(value) // 2)
    if cut <= 0:
        return f"{name}: {value}"
    return f"{name}: {value[:cut]}\n\t{value[cut + 1:]}"


@st.composite
def dsn(draw):
    n = draw(st.integers(1, 4))
    rcpts = []
    for i in range(n):
        action = draw(st.sampled_from(["failed", "failed", "failed", "delayed", "delivered"]))
        status, reply, diag = draw(st.sampled_from(FAILURES))
        if action == "delivered":
            status, reply, diag = "2.0.0", "250", "250 2.0.0 OK"
        elif action == "delayed":
            status, reply, diag = "4.2.2", "452", "452 4.2.2 Mailbox full, try again later"
        rcpts.append((f"user{i}.{draw(st.sampled_from(['a', 'b+tag', 'c-d']))}@dest{i % 2}.example.com",
                      action, status, reply, diag, f"mx{i}.dest{i % 2}.example.com"))
    lower = draw(st.booleans())
    fold = draw(st.booleans())
    extra = draw(st.booleans())
    original_recipient = draw(st.booleans())

    def h(name: str) -> str:
        return name.lower() if lower else name

    per = []
    for addr, action, status, reply, diag, mta in rcpts:
        fields = [f"{h('Final-Recipient')}: rfc822; {addr}", f"{h('Action')}: {action}",
                  f"{h('Status')}: {status}", f"{h('Remote-MTA')}: dns; {mta}",
                  _fold(h("Diagnostic-Code"), "smtp; " + diag.format(a=addr), fold)]
        if original_recipient:
            fields.insert(0, f"{h('Original-Recipient')}: rfc822;{addr}")
        if extra:
            fields.append(f"{h('Last-Attempt-Date')}: Tue, 3 Mar 2026 10:15:02 +0000")
            fields.append("X-Vendor-Field: anything")
        tail = fields[2:]
        if draw(st.booleans()):
            tail.reverse()
        per.append("\n".join(fields[:2] + tail))
    report = (f"{h('Reporting-MTA')}: dns; mx.example.net\n"
              + (f"{h('Arrival-Date')}: Tue, 3 Mar 2026 10:15:01 +0000\n" if extra else "")
              + "\n" + "\n\n".join(per) + "\n")
    cte = draw(st.sampled_from(["7bit", "quoted-printable", "base64"]))
    if cte == "base64":
        body = base64.encodebytes(report.encode()).decode()
    elif cte == "quoted-printable":
        body = quopri.encodestring(report.encode()).decode()
    else:
        body = report
    charset = draw(st.sampled_from(["us-ascii", "utf-8", "iso-8859-1"]))
    note = "Délivrance impossible." if charset != "us-ascii" else "Delivery failed."
    note_bytes = note.encode("utf-8" if charset == "utf-8" else "latin-1" if charset != "us-ascii" else "ascii")
    sender = "news@example.net"
    msg = (f"From: MAILER-DAEMON@mx.example.net\nTo: {sender}\nSubject: Undelivered Mail Returned to Sender\n"
           f"MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status;\n"
           f"\tboundary=\"BOUND\"\n\nThis is a MIME-encapsulated message.\n\n"
           f"--BOUND\nContent-Type: text/plain; charset={charset}\nContent-Transfer-Encoding: 8bit\n\n").encode()
    msg += note_bytes + (f"\n\n--BOUND\nContent-Type: message/delivery-status\n"
                         f"Content-Transfer-Encoding: {cte}\n\n{body}\n"
                         f"--BOUND\nContent-Type: text/rfc822-headers\n\nFrom: News <{sender}>\n"
                         f"To: {rcpts[0][0]}\nSubject: news\nMessage-ID: <m1@example.net>\n\n"
                         f"--BOUND--\n").encode()
    if draw(st.booleans()):                      # a helpdesk forwarded it as an attachment
        msg = (b"From: helpdesk@example.net\nTo: postmaster@example.net\nSubject: Fwd: bounce\n"
               b"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"OUTER\"\n\n"
               b"--OUTER\nContent-Type: text/plain\n\nsee attached\n\n--OUTER\n"
               b"Content-Type: message/rfc822\n\n" + msg + b"\n--OUTER--\n")
    ending = draw(st.sampled_from([b"\n", b"\r\n"]))
    return msg.replace(b"\n", ending), rcpts


@FUZZ
@given(dsn())
def test_generated_reports_are_read_back_exactly(case):
    raw, rcpts = case
    report = parse_message(raw)
    failed = [(a, st_, rc, mta) for a, action, st_, rc, _, mta in rcpts if action == "failed"]
    got = {v.address: v for v in report.recipients}
    for addr, status, reply, mta in failed:
        assert addr in got, (addr, report)
        v = got[addr]
        assert (v.status, v.reply_code, v.action) == (status, reply, "failed"), v
        assert v.remote_mta.endswith(mta), v
    assert "news@example.net" not in got
    for addr, action, *_ in rcpts:
        if action != "failed" and addr in got:
            assert got[addr].action == action, got[addr]          # never reported as a failure
    if failed:
        assert report.kind == "dsn", report


def _one_field_block(fields: str) -> bytes:
    return ("From: MAILER-DAEMON@mx.example.net\nTo: bounce@example.com\nSubject: Delivery failure\n"
            "MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary=b1\n\n"
            "--b1\nContent-Type: text/plain\n\nDelivery failed.\n\n--b1\nContent-Type: message/delivery-status\n\n"
            f"{fields}\n--b1--\n").encode()


def test_a_comment_after_the_address_and_an_indented_block_are_read():
    """Gateways write "Final-Recipient: rfc822; u@example.org (Jane)" and quote the whole block
    indented; both still name the recipient and its status."""
    commented = _one_field_block("Reporting-MTA: dns; mx.example.net\n\nFinal-Recipient: rfc822; u@example.org (Jane)\n"
                                 "Action: failed\nStatus: 5.1.1\n")
    indented = _one_field_block("  Reporting-MTA: dns; mx.example.net\n\n  Final-Recipient: rfc822; u@example.org\n"
                                "  Action: failed\n  Status: 5.1.1\n  Diagnostic-Code: smtp; 550 5.1.1\n"
                                "    User unknown\n")
    for raw in (commented, indented):
        (r,) = parse_message(raw).recipients
        assert (r.address, r.status, r.reason) == ("u@example.org", "5.1.1", "userunknown"), r
    (r,) = parse_message(indented).recipients
    assert "User unknown" in r.diagnostic      # the further-indented line continues the field


def test_encoded_words_and_html_entities_in_a_diagnostic_code_are_decoded():
    for diag, said in (("smtp; 550 =?UTF-8?Q?Empf=C3=A4nger_unbekannt?=", "550 Empfänger unbekannt"),
                       ("smtp; 550 Mailbox &quot;u@example.org&quot; does not exist",
                        '550 Mailbox "u@example.org" does not exist'),
                       ("smtp; 550 R&D mailbox unavailable", "550 R&D mailbox unavailable")):
        raw = _one_field_block("Reporting-MTA: dns; mx.example.net\n\nFinal-Recipient: rfc822; u@example.org\n"
                               f"Action: failed\nStatus: 5.0.0\nDiagnostic-Code: {diag}\n")
        (r,) = parse_message(raw).recipients
        assert r.diagnostic == said, r
    (r,) = parse_message(_one_field_block("Final-Recipient: rfc822; u@example.org\nAction: failed\nStatus: 5.0.0\n"
                                          "Diagnostic-Code: smtp; 550 =?UTF-8?Q?Empf=C3=A4nger_unbekannt?=\n")).recipients
    assert r.reason == "userunknown"


def test_a_diagnostic_code_continued_on_unindented_lines_is_read_whole():
    """The folding lost on the way: the rest of the reply is still the reply (here it is the cause)."""
    raw = _one_field_block("Reporting-MTA: dns; mx.example.net\n\nFinal-Recipient: rfc822; u@example.org\n"
                           "Action: failed\nStatus: 5.0.0\nDiagnostic-Code: smtp; 550 Message rejected:\n"
                           "your IP is listed at zen.spamhaus.org\n")
    (r,) = parse_message(raw).recipients
    assert (r.diagnostic, r.reason, r.hard) == ("550 Message rejected: your IP is listed at zen.spamhaus.org",
                                                "blocked", False), r
