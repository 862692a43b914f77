"""Turn the classification engine's Report on one received message into Events.

Domain layer: pure; stdlib only (and the sibling domain modules).
In: a `Report` from `parse_message` (duck-typed: `.kind`, `.recipients` of Verdicts), the
message's identity, when it was received, and what we know of our own sent messages
(`sent`, keyed by Message-ID, looked up by the adapter) and the return path the report came
back to (the bounce's envelope recipient). Out: a list of `Event`.

What each report becomes:
- DSN, Action failed (or a 5xx with no action) -> `bounced`; delayed (4xx) -> `deferred`;
  delivered -> `delivered`; relayed / expanded -> `remote_status`.
- ARF (any feedback type) -> `complained` with its `feedback_type`; the policy table decides
  which types suppress. For those that do (policy.is_complaint), an `unsubscribed` for the list
  concerned too, when the list is known (List-Id, our tracking header, or the send record).
- A complaint whose recipient was redacted and could not be recovered is still one
  `complained` event with recipient "" and attrs["unattributed"] = True: it is stored and counted
  against the sending domain / IP / job, and listed by `bounceproc sink unattributed`.
- Auto-replies, success-less non-bounces and unparseable messages give no events.

Recipients are keyed by domain/address.py, the one normaliser (acct and the API use it too); an
address it rejects (spaces, control characters, a domain without a dot, oversize) counts as no
address ("", then recovered from the send record by Message-ID when possible) rather than
failing the message.

Event keys come from the message (its Message-ID, else a hash of its bytes), the event type and
the recipient, never from the intake row: the same message delivered twice (a sender retrying
after a lost 250) or reprocessed gives the same keys, so storage skips the copy.
"""
from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Mapping

from bounceproc.domain.address import try_normalise
from bounceproc.domain.events import Event, event_key
from bounceproc.domain.policy import is_complaint

MAX_FIELD = 2000


def message_key(message_id: str, raw: bytes) -> str:
    """The identity of a received message: its Message-ID if it has one, else its bytes."""
    mid = (message_id or "").strip().strip("<>").strip()
    if mid and len(mid) <= 998:
        return "mid:" + mid
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def normalise_message_id(value: str) -> str:
    """`<abc@host>` -> `abc@host` (case kept: Message-IDs compare case-sensitively)."""
    return (value or "").strip().strip("<>").strip()


def normalise_recipient(address: str) -> str:
    """The key of an address read from a report (domain/address.normalise_address), or "" when
    it is not usable: a report's address is a clue, and a bad one must not fail the report."""
    return try_normalise(address or "") or ""


def normalise_list_id(value: str) -> str:
    """RFC 2919: `Example News <news.example.net>` -> `news.example.net` (the list identifier);
    a bare value (our tracking header, an acct job's list) is kept as it is."""
    value = (value or "").strip()
    lt, gt = value.rfind("<"), value.rfind(">")
    if 0 <= lt < gt:
        value = value[lt + 1:gt].strip()
    return value[:255]


def _s(v: Any, limit: int = MAX_FIELD) -> str:
    """A field as bounded text. NUL is dropped: PostgreSQL text cannot hold it, and an Office 365
    DSN carries one in its diagnostic (corpus lhost-office365-01)."""
    if v is None:
        return ""
    text = str(v)
    if "\x00" in text:
        text = text.replace("\x00", "")
    return text[:limit]


def _dsn_type(action: str, status: str, reply_code: str, kind: str) -> str:
    action = (action or "").strip().lower()
    if kind == "delivered" or action == "delivered":
        return "delivered"
    if action in ("relayed", "expanded"):
        return "remote_status"
    if action == "delayed":
        return "deferred"
    if action == "failed":
        return "bounced"
    first = (status or reply_code or "5")[:1]
    return "deferred" if first == "4" else "bounced"


def _arrival(value: str, default: datetime) -> datetime:
    if not value:
        return default
    try:
        dt = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return default
    if dt is None:
        return default
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    # A report dated in the future or decades ago is a broken clock, not a fact.
    if dt > default or (default - dt).days > 3650:
        return default
    return dt


def report_events(report: Any, *, msg_key: str, received_at: datetime, intake_id: int | None = None,
                  sent: Mapping[str, Mapping[str, str]] | None = None,
                  return_path: str = "") -> list[Event]:
    """Events for one received message's Report (see the module docstring)."""
    kind = getattr(report, "kind", "unknown")
    if kind not in ("dsn", "arf", "delivered"):
        return []
    sent = sent or {}
    out: list[Event] = []
    seen: set[str] = set()

    def add(ev: Event) -> None:
        if ev.event_key not in seen:
            seen.add(ev.event_key)
            out.append(ev)

    for v in getattr(report, "recipients", ()) or ():
        recipient = normalise_recipient(_s(getattr(v, "address", "")))
        mid = normalise_message_id(_s(getattr(v, "original_message_id", "")))
        known = sent.get(mid, {}) if mid else {}
        recovered_by = _s(getattr(v, "recovered_by", ""))
        if not recipient and known.get("recipient"):
            recipient = normalise_recipient(known["recipient"])
            recovered_by = "message-id"
        list_id = normalise_list_id(_s(getattr(v, "list_id", ""))) or _s(known.get("list_id", ""), 255)
        job_id = _s(getattr(v, "job_id", ""), 128) or _s(known.get("job_id", ""), 128)
        attrs: dict[str, Any] = {"report": kind, "parser": _s(getattr(v, "parser", ""), 64)}
        if recovered_by:
            attrs["recovered_by"] = recovered_by
        explain = _s(getattr(v, "explain", ""))
        if explain:
            attrs["explain"] = explain
        common = dict(
            recipient=recipient, occurred_at=received_at, intake_id=intake_id,
            status=_s(getattr(v, "status", ""), 16), reply_code=_s(getattr(v, "reply_code", ""), 8),
            diagnostic=_s(getattr(v, "diagnostic", "")), remote_mta=_s(getattr(v, "remote_mta", ""), 255),
            reason=_s(getattr(v, "reason", ""), 32), category=_s(getattr(v, "category", ""), 32),
            hard=bool(getattr(v, "hard", False)), rule=_s(getattr(v, "rule", ""), 64),
            job_id=job_id, list_id=list_id, message_id=mid[:255],
            vmta=_s(known.get("vmta", ""), 128),
        )
        if kind == "arf":
            ftype = _s(getattr(v, "feedback_type", ""), 32).strip().lower()
            sender = (_s(getattr(v, "original_mail_from", ""), 320).strip().strip("<>")
                      or _s(known.get("sender", ""), 320))
            source_ip = _s(getattr(v, "source_ip", ""), 64).strip() or _s(known.get("source_ip", ""), 64)
            occurred = _arrival(_s(getattr(v, "arrival_date", ""), 200), received_at)
            for name in ("user_agent", "arrival_date", "reported_domain"):
                value = _s(getattr(v, name, ""), 255)
                if value:
                    attrs[name] = value
            if not recipient:
                attrs["unattributed"] = True
            common.update(occurred_at=occurred, source_ip=source_ip, feedback_type=ftype,
                          reason=common["reason"] or "feedback", category=common["category"] or "complaint",
                          hard=False)
            # Whether a feedback type is a complaint is the policy's call (rules/actions.toml);
            # only complaints also unsubscribe the recipient from the list concerned.
            types = ["complained"]
            if recipient and list_id and is_complaint(ftype):
                types.append("unsubscribed")
            for etype in types:
                key = event_key("arf", msg_key, etype, recipient, list_id if etype == "unsubscribed" else "")
                add(Event(event_key=key, type=etype, source="arf", sender=sender,
                          attrs=dict(attrs), **common))
        else:
            if not recipient:
                continue        # a DSN with no recoverable recipient says nothing we can store
            etype = _dsn_type(_s(getattr(v, "action", "")), common["status"], common["reply_code"], kind)
            action = _s(getattr(v, "action", ""), 32)
            if action:
                attrs["action"] = action
            # The bounce's envelope recipient is the return path we sent with (VERP or not).
            sender = _s(known.get("sender", ""), 320) or _s(return_path, 320)
            key = event_key("dsn", msg_key, etype, recipient)
            add(Event(event_key=key, type=etype, source="dsn", sender=sender,
                      source_ip=_s(known.get("source_ip", ""), 64), attrs=attrs, **common))
    return out
