"""Events: the facts bounceproc learns about recipients, as frozen dataclasses.

Domain layer: pure, stdlib only.
In: built by the parsers (acct records, DSNs, ARF reports) and by adapters (API, unsubscribe).
Out: consumed by policy.decide() and stored append-only by the event log.

One dataclass serves every kind of fact; `type` is the past-tense name of what happened
(`delivered`, `bounced`, `deferred`, `complained`, `unsubscribed`, `received`,
`queue_deferred`, `remote_status`, `skipped`). Fields are named after the standards they come from
(RFC 3464 status/diagnostic, RFC 5965 feedback_type, PowerMTA acct fields).
`event_key` is a deterministic hash of the source and the fact's identity, so replaying the
same input yields the same key and storage can skip it (idempotent writes).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

EVENT_TYPES = (
    "delivered",       # acct d: accepted by the remote MTA
    "bounced",         # acct b / rb, DSN failed: the message will not be delivered
    "deferred",        # acct t, DSN delayed: one failed attempt, still queued
    "queue_deferred",  # acct tq: queue-level failure, no recipient
    "received",        # acct r: accepted for injection
    "remote_status",   # acct rs / DSN delivered or relayed notices
    "complained",      # acct f / ARF report
    "unsubscribed",    # one-click, API, complaint-driven unsubscribe
    "skipped",         # our MTA did not send to a suppressed recipient (acct b, x-bounceproc;suppressed)
)

@dataclass(frozen=True, slots=True)
class Event:
    event_key: str
    type: str
    recipient: str                 # normalised address ("" for queue-level facts)
    occurred_at: datetime
    source: str                    # "acct" | "dsn" | "arf" | "api" | "unsubscribe" | "sender" | "sink"
    sender: str = ""               # envelope MAIL FROM (acct orig)
    status: str = ""               # RFC 3463 enhanced code, "5.1.1"
    reply_code: str = ""           # SMTP reply code, "550"
    diagnostic: str = ""           # remote text, as received
    remote_mta: str = ""
    reason: str = ""               # taxonomy.md vocabulary
    category: str = ""             # PowerMTA bounceCat
    hard: bool = False
    rule: str = ""                 # id of the classification rule that decided
    feedback_type: str = ""        # RFC 5965 Feedback-Type for complaints
    vmta: str = ""
    source_ip: str = ""            # our sending IP (dlvSourceIp / ARF Source-IP)
    job_id: str = ""
    list_id: str = ""              # list scope for unsubscribes / complaints
    message_id: str = ""
    intake_id: int | None = None
    attrs: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def recipient_domain(self) -> str:
        return self.recipient.rpartition("@")[2]


def timed_key(at: datetime, digest: str) -> str:
    """8 hex digits of the fact's time (epoch seconds) + 24 of its identity hash.

    The time prefix makes the unique index on event_key nearly append-only (input arrives in
    time order), which keeps it cache-friendly at hundreds of millions of rows; the key stays
    deterministic because the time is part of the fact.
    """
    return "%08x" % min(max(0, int(at.timestamp())), 0xFFFFFFFF) + digest[:24]


def event_key(*parts: object, at: datetime | None = None) -> str:
    """Deterministic 32-hex-digit key from the identity of a fact (time-prefixed when `at` is given)."""
    h = hashlib.blake2b(digest_size=16)
    for p in parts:
        h.update(str(p).encode("utf-8", "surrogatepass"))
        h.update(b"\x1f")
    return h.hexdigest() if at is None else timed_key(at, h.hexdigest())
