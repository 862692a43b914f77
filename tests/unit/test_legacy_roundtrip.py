"""Non-RFC 3464 bounces as qmail, Exim and Postfix (without its DSN part) write them, generated with hypothesis (several recipients,
each with its own remote answer, in varied wording, line endings and quoted originals), read back:
every failed recipient with the status and reply code of its own answer, never another
recipient's, and never the sender or the quoted original's addresses as a failure."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bounceproc.domain.parse.message import parse_message

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SENDER = "sender@example.net"
# (reply code, status, remote text)
ANSWERS = [
    ("550", "5.1.1", "550 5.1.1 <{a}>: Recipient address rejected: User unknown"),
    ("552", "5.2.2", "552 5.2.2 Mailbox full: quota exceeded"),
    ("554", "5.7.1", "554 5.7.1 Service unavailable; Client host [192.0.2.5] blocked using zen.spamhaus.org"),
    ("550", "5.2.1", "550 5.2.1 <{a}>: account disabled"),
    ("553", "5.1.3", "553 5.1.3 Bad recipient address syntax"),
]


def _original(rcpts, cut_line: str) -> str:
    return (f"{cut_line}\n\nReturn-Path: <{SENDER}>\nFrom: Sender <{SENDER}>\n"
            f"To: {', '.join(rcpts)}\nSubject: Hello\nMessage-ID: <hello-1@example.net>\n\nHello.\n")


@st.composite
def legacy(draw):
    n = draw(st.integers(1, 4))
    rcpts = [f"{draw(st.sampled_from(['bob', 'ann.c', 'x+tag', 'd-e']))}{i}@mx{i}.example.com" for i in range(n)]
    answers = [draw(st.sampled_from(ANSWERS)) for _ in rcpts]
    style = draw(st.sampled_from(["qmail", "exim", "postfix"]))
    if style == "postfix":                       # Postfix's notice without its DSN part
        blocks = [f"<{a}>: host mx.{a.split('@')[1]}[192.0.2.30] said: {text.format(a=a)} (in reply to\n"
                  f"    RCPT TO command)\n" for a, (code, status, text) in zip(rcpts, answers)]
        body = ("This is the mail system at host mx.example.net.\n\n"
                "I'm sorry to have to inform you that your message could not\n"
                "be delivered to one or more recipients. It's attached below.\n\n"
                "                   The mail system\n\n" + "\n".join(blocks) + "\n"
                + _original(rcpts, "--- Undelivered message follows ---"))
        head = (f"From: MAILER-DAEMON@mx.example.net (Mail Delivery System)\nTo: {SENDER}\n"
                f"Subject: Undelivered Mail Returned to Sender\n")
    elif style == "qmail":
        blocks = []
        for a, (code, status, text) in zip(rcpts, answers):
            blocks.append(f"<{a}>:\n192.0.2.30 does not like recipient.\nRemote host said: "
                          f"{text.format(a=a)}\nGiving up on 192.0.2.30.\n")
        body = ("Hi. This is the qmail-send program at qmail.example.net.\n"
                "I'm afraid I wasn't able to deliver your message to the following addresses.\n"
                "This is a permanent error; I've given up. Sorry it didn't work out.\n\n"
                + "\n".join(blocks) + "\n" + _original(rcpts, "--- Below this line is a copy of the message."))
        head = f"From: MAILER-DAEMON@qmail.example.net\nTo: {SENDER}\nSubject: failure notice\n"
    else:
        blocks = []
        for a, (code, status, text) in zip(rcpts, answers):
            blocks.append(f"  {a}\n    host mx.{a.split('@')[1]} [192.0.2.30]\n"
                          f"    SMTP error from remote mail server after RCPT TO:<{a}>:\n"
                          f"    {text.format(a=a)}\n")
        body = ("This message was created automatically by mail delivery software.\n\n"
                "A message that you sent could not be delivered to one or more of its\n"
                "recipients. This is a permanent error. The following address(es) failed:\n\n"
                + "\n".join(blocks) + "\n"
                + _original(rcpts, "------ This is a copy of the message, including all the headers. ------"))
        head = (f"From: Mail Delivery System <Mailer-Daemon@relay.example.net>\nTo: {SENDER}\n"
                f"Subject: Mail delivery failed: returning message to sender\nAuto-Submitted: auto-replied\n"
                + (f"X-Failed-Recipients: {', '.join(rcpts)}\n" if draw(st.booleans()) else ""))
    raw = (head + "\n" + body).encode().replace(b"\n", draw(st.sampled_from([b"\n", b"\r\n"])))
    return raw, list(zip(rcpts, answers))


@FUZZ
@given(legacy())
def test_each_recipient_gets_its_own_answer(case):
    raw, expected = case
    report = parse_message(raw)
    got = {v.address: v for v in report.recipients}
    assert set(got) == {a for a, _ in expected}, (report, expected)
    for a, (code, status, _) in expected:
        assert (got[a].reply_code, got[a].status) == (code, status), (a, got[a])
