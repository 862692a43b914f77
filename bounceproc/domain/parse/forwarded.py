"""Reports that reach us wrapped: forwarded as an attachment, or several in a digest.

Domain layer: pure; stdlib only (and the message reader).
In: the raw bytes of one received message, and the `Report` the reader made of it.
Out: the reports it carries, each as (raw bytes of the inner message, its Report, where it was
found), so that each is processed as if it had arrived alone: its own Message-ID gives its own
event keys, and the same report arriving directly and forwarded counts once.

A person or a mailbox rule that forwards an ARF report or a bounce "as attachment" produces a
`multipart/mixed` message whose `message/rfc822` part is the report; a digest (`multipart/digest`
or a mixed message of several such parts) carries many. The wrapper itself is not a report: it is
unwrapped only when it has no delivery-status or feedback-report part of its own, and either reads
as no report at all, or has a forward subject (`Fwd:`, `Fw:`, `WG:`, `TR:`, `RV:`, `Doorst:`), or
carries more than one report. A bounce that encloses the original message it returns is never
unwrapped: that original is a normal message, not a report. Reports forwarded inline (quoted in
the body) are read by message.py itself (`read_forwarded`).
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from bounceproc.domain.parse.mime import Part, decode_header, decode_transfer, parse_message_bytes

MAX_WRAPPED = 50                     # reports taken from one wrapper (a digest); the rest are cut
REPORT_KINDS = ("dsn", "arf")
_OWN_REPORT_TYPES = ("multipart/report", "message/delivery-status", "message/global-delivery-status",
                     "message/feedback-report")
_ENCLOSED = ("message/rfc822", "message/global")
_FORWARD_SUBJECT = re.compile(r"^\s*(?:\[[^\]]*\]\s*)?(?:fwd?|fw|wg|tr|rv|enc|doorst|vs|i)\s*:", re.I)


@dataclass(frozen=True)
class Wrapped:
    raw: bytes            # the inner message, as it would have arrived on its own
    report: object        # its Report (domain.parse.message.Report)
    position: int         # 1-based, in the order the parts appear


def enclosed_messages(root: Part) -> list[bytes]:
    """Raw bytes of the message/rfc822 parts of the wrapper itself (not of parts inside them)."""
    out: list[bytes] = []
    stack = [root]
    while stack:
        p = stack.pop()
        if p.ctype in _ENCLOSED:
            if p.body.strip():
                out.append(decode_transfer(p.body, p.get("content-transfer-encoding")).lstrip(b"\n"))
            continue
        stack.extend(reversed(p.children))
    return out


def has_own_report(root: Part) -> bool:
    stack = [root]
    while stack:
        p = stack.pop()
        if p.ctype in _OWN_REPORT_TYPES:
            return True
        if p.ctype not in _ENCLOSED:
            stack.extend(p.children)
    return False


def unwrap(raw: bytes, outer, read: Callable[[bytes], object]) -> list[Wrapped]:
    """The reports `raw` wraps, or [] when it is a report itself or wraps none.

    `outer` is the Report already made of `raw`; `read(bytes) -> Report` reads one inner message
    (the caller's parse_message with its classifier, VERP format and no envelope: the wrapper's
    envelope is the forwarding mailbox, not the original return path).
    """
    root = parse_message_bytes(raw)
    if has_own_report(root):
        return []
    inner = enclosed_messages(root)
    if not inner:
        return []
    found = []
    for i, data in enumerate(inner[:MAX_WRAPPED], 1):
        report = read(data)
        if getattr(report, "kind", "") in REPORT_KINDS and getattr(report, "recipients", ()):
            found.append(Wrapped(data, report, i))
    if not found:
        return []
    forwarded = bool(_FORWARD_SUBJECT.match(decode_header(root.get("subject"))))
    if getattr(outer, "kind", "") in REPORT_KINDS and not forwarded and len(found) < 2:
        return []
    return found


_MAYBE_WRAPPED = re.compile(rb"message/(?:rfc822|global)\b", re.I)
_REPORT_HEAD = re.compile(rb"^content-type:[ \t]*multipart/report", re.I | re.M)


def _may_wrap(raw: bytes) -> bool:
    """Cheap test before a second parse: a message whose own Content-Type is multipart/report
    (every RFC 3464 DSN and RFC 5965 report) is a report itself, and one without an enclosed
    message wraps nothing."""
    end = raw.find(b"\n\n")
    if end < 0:
        end = raw.find(b"\r\n\r\n")
    head = raw[:end] if end >= 0 else raw[:65536]
    return not _REPORT_HEAD.search(head) and bool(_MAYBE_WRAPPED.search(raw))


def read_reports(raw: bytes, *, envelope_to=(), classifier=None, verp=None) -> list[Wrapped]:
    """Every report in one received message: the reports it wraps, or else the message itself
    (position 0). Never raises (parse_message does not)."""
    from bounceproc.domain.parse.message import parse_message

    outer = parse_message(raw, envelope_to=envelope_to, classifier=classifier, verp=verp)
    if isinstance(raw, bytes) and _may_wrap(raw):
        try:
            inner = unwrap(raw, outer, lambda data: parse_message(data, classifier=classifier, verp=verp))
        except RecursionError:
            inner = []
        if inner:
            return inner
    return [Wrapped(raw, outer, 0)]


def merged(found: list[Wrapped]):
    """One Report for a whole received message (for `classify`): the wrapped reports' recipients
    in order, the first one's kind, and a note saying what was unwrapped."""
    from bounceproc.domain.parse.message import Report

    if len(found) == 1 and found[0].position == 0:
        return found[0].report
    first = found[0].report
    note = "unwrapped %d forwarded report(s) from message/rfc822 part(s) %s" % (
        len(found), ", ".join(str(w.position) for w in found))
    notes = "; ".join(n for n in [note] + [w.report.note for w in found if w.report.note] if n)
    return Report(first.kind, tuple(v for w in found for v in w.report.recipients), notes)
