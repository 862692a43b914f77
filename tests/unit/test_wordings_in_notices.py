"""Every wording of reference/wordings.md, carried by the notices real MTAs write, reads as it does alone.

The table test (test_wordings_table.py) classifies each wording as a bare diagnostic. Mail from a
system the rules never saw carries the same wordings inside its own layout: a folded
`Diagnostic-Code`, CRLF and base64, no `Remote-MTA`; or no report at all, only Postfix's
"<addr>: host mx[ip] said: …", Exim's "host mx [ip] / SMTP error from remote mail server after
RCPT TO:<addr>: …", qmail's "ip does not like recipient. / Remote host said: … / Giving up on ip.",
Sendmail's and Courier's session transcripts ("<<< 550 …"), Gmail's relay notice ("The error that
the other server returned was:") and Exchange's "mx #550 … ##".
Here each permanent entry (the 4xx ones become expiries in a final report, precedence step 4) is
written into each layout and read by the message reader; its verdict must be the bare wording's
(with the RCPT stage where the layout names it), except that a codeless connection failure in a
final notice is an expiry and a wording that alone decides nothing lets the notice decide. This is what found the MTA preambles hiding
the start of the reply from anchored rules, and Gmail's own "it was rejected by the server"
deciding as a block whatever the server had said (`classify.reply_first`).
"""
from __future__ import annotations

import base64
import collections
import sys
import textwrap
from pathlib import Path

import pytest

from bounceproc.domain.classify import classify
from bounceproc.domain.parse.message import parse_message

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import wordings_table as wt  # noqa: E402

TARGET = 0.98


def _recipient(e: wt.Entry) -> str:
    return "user@" + (e.receiver or "example.com")


def _head(subject: str, content_type: str) -> str:
    return ("Return-Path: <>\nFrom: MAILER-DAEMON@mta.example.org (Mail Delivery System)\nTo: news@example.org\n"
            f"Subject: {subject}\nDate: Thu, 03 Dec 2026 10:00:00 +0000\nMessage-ID: <n1@mta.example.org>\n"
            f"MIME-Version: 1.0\nContent-Type: {content_type}\n\n")


def _wrap(text: str, width: int, indent: str) -> str:
    return f"\n{indent}".join(textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False))


def _reply(e: wt.Entry) -> str:
    """The wording as the server's reply line, with the codes the entry gives (none if it gives none)."""
    codes = " ".join(x for x in (e.reply, e.status) if x and x not in e.text)
    return f"{codes} {e.text}".strip()


def dsn(e: wt.Entry, *, fold=True, remote=True, crlf=False, b64=False) -> str:
    a = _recipient(e)
    diag = wt.as_diagnostic(e)
    if fold:
        diag = _wrap(diag, 70, "    ")
    status = e.status or (e.reply[0] + ".0.0" if e.reply else "5.0.0")
    fields = (f"Reporting-MTA: dns; mta.example.org\n\nFinal-Recipient: rfc822; {a}\nAction: failed\n"
              f"Status: {status}\n" + (f"Remote-MTA: dns; mx.{a.split('@')[1]}\n" if remote else "")
              + f"Diagnostic-Code: {diag}\n")
    encoding = ""
    if b64:
        fields, encoding = base64.encodebytes(fields.encode()).decode(), "Content-Transfer-Encoding: base64\n"
    text = _head("Undelivered Mail Returned to Sender",
                 'multipart/report; report-type=delivery-status; boundary="B"') + (
        "--B\nContent-Type: text/plain\n\nThis is the mail system at host mta.example.org.\n\n"
        "I'm sorry to have to inform you that your message could not\nbe delivered.\n\n"
        f"--B\nContent-Type: message/delivery-status\n{encoding}\n{fields}\n"
        f"--B\nContent-Type: text/rfc822-headers\n\nFrom: news@example.org\nTo: {a}\nSubject: hi\n\n--B--\n")
    return text.replace("\n", "\r\n") if crlf else text


def postfix_text(e: wt.Entry) -> str:
    a = _recipient(e)
    stage = "" if "(in reply to" in e.text else " (in reply to RCPT TO command)"
    said = _wrap(f"<{a}>: host mx.{a.split('@')[1]}[192.0.2.7] said: {_reply(e)}{stage}", 72, "    ")
    return _head("Undelivered Mail Returned to Sender", "text/plain") + (
        "This is the mail system at host mta.example.org.\n\nI'm sorry to have to inform you that your message could not\n"
        "be delivered to one or more recipients. It's attached below.\n\n"
        f"                   The mail system\n\n{said}\n\n--- original\nFrom: news@example.org\nTo: {a}\n")


def exim_text(e: wt.Entry) -> str:
    a = _recipient(e)
    return _head("Mail delivery failed: returning message to sender", "text/plain") + (
        "This message was created automatically by mail delivery software.\n\n"
        "A message that you sent could not be delivered to one or more of its\n"
        "recipients. This is a permanent error. The following address(es) failed:\n\n"
        f"  {a}\n    host mx.{a.split('@')[1]} [192.0.2.7]\n"
        f"    SMTP error from remote mail server after RCPT TO:<{a}>:\n    {_wrap(_reply(e), 70, '    ')}\n\n"
        "------ This is a copy of the message, including all the headers. ------\n\n"
        f"From: news@example.org\nTo: {a}\nSubject: hi\n\nhello\n")


def qmail_text(e: wt.Entry) -> str:
    a = _recipient(e)
    return _head("failure notice", "text/plain") + (
        "Hi. This is the qmail-send program at mta.example.org.\n"
        "I'm afraid I wasn't able to deliver your message to the following addresses.\n"
        "This is a permanent error; I've given up. Sorry it didn't work out.\n\n"
        f"<{a}>:\n192.0.2.7 does not like recipient.\nRemote host said: {_reply(e)}\nGiving up on 192.0.2.7.\n\n"
        f"--- Below this line is a copy of the message.\n\nFrom: news@example.org\nTo: {a}\nSubject: hi\n\nhello\n")


def sendmail_text(e: wt.Entry) -> str:
    a, r = _recipient(e), _reply(e)
    return _head("Returned mail: see transcript for details", "text/plain") + (
        "The original message was received at Thu, 3 Dec 2026 10:00:00 GMT\nfrom localhost [127.0.0.1]\n\n"
        f"   ----- The following addresses had permanent fatal errors -----\n<{a}>\n    (reason: {r})\n\n"
        f"   ----- Transcript of session follows -----\n... while talking to mx.{a.split('@')[1]}.:\n"
        f">>> RCPT To:<{a}>\n<<< {r}\n{r.split(' ')[0]} <{a}>... {r}\n\n"
        f"   ----- Original message follows -----\nFrom: news@example.org\nTo: {a}\n")


def gmail_text(e: wt.Entry) -> str:
    a = _recipient(e)
    domain = a.split("@")[1]
    return _head("Delivery Status Notification (Failure)", "text/plain") + (
        f"Delivery to the following recipient failed permanently:\n\n     {a}\n\nTechnical details of permanent failure:\n"
        f"Google tried to deliver your message, but it was rejected by the server for the recipient domain {domain} "
        f"by mx.{domain}. [192.0.2.7].\n\nThe error that the other server returned was:\n{_reply(e)}\n\n"
        f"----- Original message -----\n\nFrom: news@example.org\nTo: {a}\n")


def exchange_text(e: wt.Entry) -> str:
    a = _recipient(e)
    return _head("Undeliverable: hi", "text/plain") + (
        f"Delivery has failed to these recipients or groups:\n\n{a}\nThe e-mail address you entered couldn't be found.\n\n\n"
        "Diagnostic information for administrators:\n\nGenerating server: mail.example.org\n\n"
        f"{a}\nmx.{a.split('@')[1]} #{_reply(e)} ##\n\nOriginal message headers:\n\nFrom: news@example.org\nTo: {a}\n")


def courier_text(e: wt.Entry) -> str:
    a = _recipient(e)
    return _head("NOTICE: mail delivery status.", "text/plain") + (
        "This is a delivery status notification from mta.example.org,\nrunning the Courier mail server, version 1.0.\n\n"
        "---------------------------------------------------------------------------\n\n"
        "                           UNDELIVERABLE MAIL\n\n"
        f"Your message to the following recipients cannot be delivered:\n\n<{a}>:\n    mx.{a.split('@')[1]} [192.0.2.7]:\n"
        f">>> RCPT TO:<{a}>\n<<< {_reply(e)}\n\n"
        "---------------------------------------------------------------------------\n\nFrom: news@example.org\n")


# layout -> (writer, does the layout name the RCPT stage?, does it quote a server's reply line?)
LAYOUTS = {
    "dsn folded": (dsn, False, False),
    "dsn one line": (lambda e: dsn(e, fold=False), False, False),
    "dsn crlf base64": (lambda e: dsn(e, crlf=True, b64=True), False, False),
    "dsn no remote-mta": (lambda e: dsn(e, remote=False), False, False),
    "postfix text": (postfix_text, True, False),
    "exim text": (exim_text, True, False),
    "qmail text": (qmail_text, True, False),
    "sendmail transcript": (sendmail_text, True, True),
    "gmail relay notice": (gmail_text, False, True),
    "exchange ndr": (exchange_text, False, True),
    "courier transcript": (courier_text, True, True),
}


def _expected(e: wt.Entry, at_rcpt: bool):
    diag = wt.as_diagnostic(e)
    if at_rcpt and "(in reply to" not in diag:
        diag += " (in reply to RCPT TO command)"
    return classify(e.status, e.reply, diag, "", e.receiver)


def _permanent(e: wt.Entry) -> bool:
    return not (e.status.startswith("4") or (not e.status and e.reply.startswith("4")))


def _agrees(e: wt.Entry, want, got) -> bool:
    if got.hard != want.hard:
        return False
    if want.reason == "undefined":
        return True        # no verdict alone: the reader falls back on the rest of the notice
    if want.reason == "networkerror" and not (e.reply or e.status) and got.reason == "expired":
        return True        # a final notice of a codeless connection failure: retries ran out (step 4)
    return got.reason == want.reason


@pytest.fixture(scope="module")
def entries():
    out = [e for e in wt.entries_or_skip() if e.reasons and _permanent(e)]
    # A wording quoting another address than the recipient is about that address: left to the table test.
    out = [e for e in out if "@" not in e.text or _recipient(e) in e.text]
    assert len(out) > 300
    return out


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_a_wording_reads_the_same_in_every_layout(entries, layout):
    write, at_rcpt, reply_line = LAYOUTS[layout]
    same, misses = 0, []
    for e in entries:
        if at_rcpt and "in reply to end of data" in e.text.lower():
            continue
        if reply_line and not e.reply:
            continue       # a server's reply line always starts with its code: entries without one are MTA texts
        want = _expected(e, at_rcpt)
        got = parse_message(write(e).encode()).recipients
        if got and _agrees(e, want, got[0]):
            same += 1
        else:
            misses.append(f"line {e.line}: {e.text[:60]!r}: alone {want.reason}/{want.rule}, in the notice "
                          + (f"{got[0].reason}/{got[0].rule}" if got else "nothing"))
        if got:
            assert not (got[0].hard and e.soft_only), f"{layout}: soft-only wording called hard: {misses[-1:]}"
    total = same + len(misses)
    print(f"{layout}: {same}/{total} read as alone")
    assert same / total >= TARGET, "\n".join(misses)


def test_the_layouts_name_their_recipient(entries):
    counts = collections.Counter()
    for e in entries[:40]:
        for layout, (write, _, _) in LAYOUTS.items():
            got = parse_message(write(e).encode()).recipients
            counts[layout] += bool(got) and got[0].address == _recipient(e)
    assert all(n == 40 for n in counts.values()), counts
