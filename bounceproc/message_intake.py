"""A raw message from the durable intake (received by the SMTP sink) -> events.

Adapter glue, called by service.process_intake inside its transaction for intake rows of kind
"message". It runs the classification engine (domain.parse.message.parse_message) on the stored
bytes, looks up in the event log what we know about the original messages the report refers to
(by Message-ID: recipient, list, job, virtual MTA, source IP of our send), and hands both to the
pure translation domain.parse.report_events.report_events.

The Message-ID lookup is the last resort of recipient recovery for ARF reports that redact the
recipient (after the VERP envelope, our tracking header, Original-Rcpt-To and List-Unsubscribe,
which the engine tries itself): acct `d`/`r` records carry `header_Message-ID` when PowerMTA is
configured to log it, and the sending core always records it.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from bounceproc.adapters.tables import events, quarantine
from bounceproc.domain.parse.mime import normalise_newlines, parse_headers, split_head
from bounceproc.domain.parse.report_events import message_key, normalise_message_id, report_events

SENT_TYPES = ("delivered", "received", "bounced", "deferred", "remote_status")
MAX_LOOKUP_IDS = 200
HEAD_BYTES = 64 * 1024


def message_id_of(raw: bytes) -> str:
    """The Message-ID header of the message itself (not of an enclosed original)."""
    head, _ = split_head(normalise_newlines(raw[:HEAD_BYTES]).lstrip(b"\n"))
    values = parse_headers(head).get("message-id") or [""]
    return values[0]


def lookup_sent(conn, message_ids) -> dict[str, dict[str, str]]:
    """What we recorded about our own sent messages, keyed by bracket-less Message-ID."""
    ids = [m for m in dict.fromkeys(normalise_message_id(m) for m in message_ids) if m][:MAX_LOOKUP_IDS]
    if not ids:
        return {}
    forms = ids + [f"<{m}>" for m in ids]
    rows = conn.execute(
        select(events.c.message_id, events.c.recipient, events.c.list_id, events.c.job_id,
               events.c.vmta, events.c.source_ip, events.c.sender, events.c.type)
        .where(events.c.message_id.in_(forms), events.c.type.in_(SENT_TYPES), events.c.recipient != "")
        .order_by(events.c.id)
        .limit(20 * len(ids))
    ).all()
    found: dict[str, dict[str, str]] = {}
    for r in rows:
        mid = normalise_message_id(r.message_id)
        info = found.get(mid)
        if info is None or (info["type"] != "delivered" and r.type == "delivered"):
            found[mid] = {"recipient": r.recipient, "list_id": r.list_id, "job_id": r.job_id,
                          "vmta": r.vmta, "source_ip": r.source_ip, "sender": r.sender, "type": r.type}
        elif info is not None:
            # Fill blanks from later records of the same message (acct r has the job, d the IP).
            for k in ("list_id", "job_id", "vmta", "source_ip", "sender"):
                if not info[k] and getattr(r, k):
                    info[k] = getattr(r, k)
    return found


def _received_at(meta: dict, row: Any) -> datetime:
    value = meta.get("received_at")
    if isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value)
            return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)
        except ValueError:
            pass
    created = getattr(row, "created_at", None)
    if isinstance(created, datetime):
        return created if created.tzinfo else created.replace(tzinfo=timezone.utc)
    return datetime.now(timezone.utc)


def parse_report(raw: bytes, rcpt_tos: list[str], settings=None):
    from bounceproc.domain.parse.message import parse_message
    classifier = None
    if settings is not None and getattr(settings, "rules_file", ""):
        from bounceproc.service import classifier_for
        classifier = classifier_for(settings)
    return parse_message(raw, envelope_to=list(rcpt_tos or ()), classifier=classifier, verp=None)


def quarantine_message(conn, row, reason: str) -> None:
    """Keep a message the engine could not read in the quarantine (idempotent per intake row)."""
    ins = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    raw = bytes(row.payload[:8000]).decode("utf-8", "replace")
    conn.execute(ins(quarantine).on_conflict_do_nothing(index_elements=["intake_id", "line_no"]),
                 [{"intake_id": row.id, "origin": row.origin or "sink", "line_no": 0,
                   "reason": reason[:2000], "raw": raw, "created_at": datetime.now(timezone.utc)}])


def events_from_message(conn, row, settings) -> list:
    """Events for one intake row of kind "message" (see the module docstring).

    A message the engine reports as "unknown" is quarantined with the engine's note (and gives
    []); auto-replies and non-bounces give [] and are not errors: the raw message stays in the
    intake for its retention period either way.
    """
    raw = bytes(row.payload)
    meta = dict(row.meta or {})
    rcpt_tos = [str(r) for r in meta.get("rcpt_tos") or []]
    report = parse_report(raw, rcpt_tos, settings)
    if getattr(report, "kind", "unknown") == "unknown":
        quarantine_message(conn, row, "unreadable message: " + (getattr(report, "note", "") or "unknown format"))
        return []
    mids = [getattr(v, "original_message_id", "") for v in getattr(report, "recipients", ()) or ()]
    sent = lookup_sent(conn, mids)
    return report_events(report, msg_key=message_key(message_id_of(raw), raw),
                         received_at=_received_at(meta, row), intake_id=getattr(row, "id", None),
                         sent=sent, return_path=rcpt_tos[0] if rcpt_tos else "")
