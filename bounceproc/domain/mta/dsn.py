"""The RFC 3464 delivery status notification sent to the envelope sender of a bounced message.

Domain layer: pure, stdlib email only. In: the original message bytes and envelope, the failed
recipients with their status and diagnostic, our host name and the time. Out: the DSN as bytes,
to be queued from the null sender (`MAIL FROM:<>`), so a DSN never causes another DSN.
Only the original headers are returned (RFC 3462 text/rfc822-headers), not the body.
"""
from __future__ import annotations

import email.utils
from dataclasses import dataclass


@dataclass(frozen=True)
class FailedRecipient:
    rcpt: str
    status: str           # "5.1.1"
    diag: str             # "smtp;550 5.1.1 no such user"
    remote_mta: str = ""  # "mx.example.net"


def _headers_of(data: bytes) -> bytes:
    end = data.find(b"\r\n\r\n")
    if end < 0:
        end = data.find(b"\n\n")
    return data if end < 0 else data[:end]


def build_dsn(original: bytes, orig_sender: str, failed: list[FailedRecipient], host_name: str,
              now: float, dsn_id: str, arrival: float) -> bytes:
    boundary = f"=_bounceproc_{dsn_id}"
    date = email.utils.formatdate(now)
    lines = [
        f"From: Mail Delivery System <MAILER-DAEMON@{host_name}>",
        f"To: <{orig_sender}>",
        "Subject: Undelivered Mail Returned to Sender",
        f"Date: {date}",
        f"Message-ID: <{dsn_id}@{host_name}>",
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"',
        "",
        f"--{boundary}",
        "Content-Type: text/plain; charset=us-ascii",
        "",
        f"This is the mail system at {host_name}.",
        "",
        "Your message could not be delivered to one or more recipients:",
        "",
    ]
    for f in failed:
        lines.append(f"<{f.rcpt}>: {f.diag.split(';', 1)[-1]}")
    lines += ["", f"--{boundary}", "Content-Type: message/delivery-status", "",
              f"Reporting-MTA: dns; {host_name}",
              f"Arrival-Date: {email.utils.formatdate(arrival)}", ""]
    for f in failed:
        diag_type, _, diag_text = f.diag.partition(";")
        lines += [f"Final-Recipient: rfc822; {f.rcpt}", "Action: failed", f"Status: {f.status}"]
        if f.remote_mta:
            lines.append(f"Remote-MTA: dns; {f.remote_mta}")
        if diag_text:
            lines.append(f"Diagnostic-Code: {diag_type}; {' '.join(diag_text.split())}")
        lines.append(f"Last-Attempt-Date: {date}")
        lines.append("")
    lines += [f"--{boundary}", "Content-Type: text/rfc822-headers", ""]
    head = "\r\n".join(lines).encode("ascii", "replace") + b"\r\n"
    orig_headers = _headers_of(original).replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    return head + orig_headers + f"\r\n\r\n--{boundary}--\r\n".encode()
