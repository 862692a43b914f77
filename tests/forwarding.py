"""Wrap a received report the way mail clients forward it, for the forwarded-report tests.

Shapes modelled on what the clients produce when a user forwards a message "as attachment":
Gmail (multipart/mixed: a text/plain note with the "---------- Forwarded message ---------"
line, then the message as message/rfc822 with a name), Outlook (multipart/mixed: text/plain and
text/html notes, then the message as message/rfc822, base64 when it has 8-bit bytes), Thunderbird
("Fwd:" subject, message/rfc822 with Content-Disposition: attachment; filename=...eml), and a
digest (multipart/digest of several reports, as a mailbox rule or list server bundles them).
"""
from __future__ import annotations

import base64

CLIENTS = ("gmail", "outlook", "thunderbird")


def _crlf(raw: bytes) -> bytes:
    return raw.replace(b"\r\n", b"\n")


def wrap(raw: bytes, client: str, subject: str = "report") -> bytes:
    raw = _crlf(raw)
    b = b"fwd-boundary-" + client.encode()
    head = (b"From: Postmaster Team <postmaster@sender.example.net>\n"
            b"To: fbl@bounces.example.net\nDate: Thu, 03 Dec 2026 09:00:00 +0000\n"
            b"Message-ID: <fwd-" + client.encode() + b"-" + str(abs(hash(raw)) % 10**9).encode() +
            b"@sender.example.net>\nMIME-Version: 1.0\n")
    if client == "gmail":
        return (head + b"Subject: Fwd: " + subject.encode() + b"\n"
                b"Content-Type: multipart/mixed; boundary=\"" + b + b"\"\n\n"
                b"--" + b + b"\nContent-Type: text/plain; charset=\"UTF-8\"\n\n"
                b"---------- Forwarded message ---------\nFrom: the ISP\n\n"
                b"--" + b + b"\nContent-Type: message/rfc822; name=\"report.eml\"\n"
                b"Content-Disposition: attachment; filename=\"report.eml\"\n\n" + raw + b"\n"
                b"--" + b + b"--\n")
    if client == "outlook":
        body = raw
        cte = b""
        if any(c > 127 for c in raw):
            body = base64.encodebytes(raw)
            cte = b"Content-Transfer-Encoding: base64\n"
        return (head + b"Subject: FW: " + subject.encode() + b"\n"
                b"Content-Type: multipart/mixed; boundary=\"" + b + b"\"\n\n"
                b"--" + b + b"\nContent-Type: multipart/alternative; boundary=\"alt-" + b + b"\"\n\n"
                b"--alt-" + b + b"\nContent-Type: text/plain; charset=\"us-ascii\"\n\nSee attached.\n\n"
                b"--alt-" + b + b"\nContent-Type: text/html; charset=\"us-ascii\"\n\n<p>See attached.</p>\n\n"
                b"--alt-" + b + b"--\n\n"
                b"--" + b + b"\nContent-Type: message/rfc822\n" + cte +
                b"Content-Disposition: attachment\n\n" + body + b"\n"
                b"--" + b + b"--\n")
    if client == "thunderbird":
        return (head + b"Subject: Fwd: " + subject.encode() + b"\n"
                b"Content-Type: multipart/mixed; boundary=\"" + b + b"\"\n\n"
                b"This is a multi-part message in MIME format.\n"
                b"--" + b + b"\nContent-Type: text/plain; charset=UTF-8; format=flowed\n"
                b"Content-Transfer-Encoding: 7bit\n\n\n\n"
                b"--" + b + b"\nContent-Type: message/rfc822; name=\"report.eml\"\n"
                b"Content-Disposition: attachment; filename=\"report.eml\"\n\n" + raw + b"\n"
                b"--" + b + b"--\n")
    raise ValueError(client)


def digest(raws: list[bytes]) -> bytes:
    b = b"digest-boundary"
    parts = b"".join(b"--" + b + b"\n\n" + _crlf(r) + b"\n" for r in raws)
    return (b"From: fbl-digest@isp.example\nTo: fbl@bounces.example.net\nSubject: Feedback digest\n"
            b"Message-ID: <digest-1@isp.example>\nMIME-Version: 1.0\n"
            b"Content-Type: multipart/digest; boundary=\"" + b + b"\"\n\n" + parts + b"--" + b + b"--\n")
