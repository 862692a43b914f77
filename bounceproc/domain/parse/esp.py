"""ESP event payloads (Amazon SES, SendGrid, Mailgun, Postmark) -> our events.

Domain layer: pure; stdlib only. The payloads arrive already verified (signature, timestamp:
entrypoints/http/esp.py); this module only translates.
In: the decoded JSON of one webhook POST, the provider's name, a classifier, and the time it was
received. Out: `Event`s of the same types the sink and the acct pipe produce: `bounced` and
`deferred` with the provider's diagnostic classified by OUR engine (the provider's coarse type is
kept in `attrs` only: "Permanent" does not tell a dead mailbox from a blocklisted IP, and
suppressing on the latter loses good subscribers), `complained`, `unsubscribed`, `delivered`.

Event keys come from the provider's own event ids, so a retried webhook (every provider retries
on a non-2xx) records nothing twice. An event type that says nothing about the recipient (open,
click, processed, send) gives no event. Field names follow each provider's published format:
- SES: SNS `Notification` whose `Message` is the JSON notification (`notificationType`) or the
  event-publishing record (`eventType`): Bounce, Complaint, Delivery, DeliveryDelay, Reject,
  Subscription;
- SendGrid Event Webhook: a JSON array; bounce (type bounce or blocked), dropped, deferred,
  delivered, spamreport, unsubscribe, group_unsubscribe;
- Mailgun webhooks v3: `{"signature": {...}, "event-data": {...}}`; failed (severity permanent
  or temporary), delivered, complained, unsubscribed;
- Postmark: one record per POST: Bounce, SpamComplaint, SubscriptionChange, Delivery.
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any, Callable

from bounceproc.domain.classify import find_reply_code, find_status, normalise_status, strip_type
from bounceproc.domain.events import Event, event_key
from bounceproc.domain.parse.report_events import normalise_message_id, normalise_recipient

MAX_EVENTS = 10_000           # events taken from one POST (SendGrid batches up to a few thousand)
_MAX_TEXT = 2000


class PayloadError(ValueError):
    """The payload is not the provider's format (answered 400; nothing is stored)."""


def _t(value: Any, limit: int = _MAX_TEXT) -> str:
    if value is None:
        return ""
    return str(value).replace("\x00", "")[:limit]


def _when(value: Any, default: datetime) -> datetime:
    """ISO 8601 (SES, Postmark) or epoch seconds (SendGrid, Mailgun); a time in the future or
    ten years ago is a broken clock: the time of receipt is kept instead."""
    dt = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            dt = datetime.fromtimestamp(float(value), timezone.utc)
        except (OverflowError, OSError, ValueError):
            dt = None
    elif isinstance(value, str) and value:
        text = value.strip().replace("Z", "+00:00")
        text = re.sub(r"(\.\d{6})\d+", r"\1", text)       # .NET's 7 fractional digits (Postmark)
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            dt = None
        if dt is not None and dt.tzinfo is None:
            dt = dt.replace(tzinfo=timezone.utc)
    if dt is None or dt > default or (default - dt).days > 3650:
        return default
    return dt


class Translator:
    """Builds events for one provider's payload; `classify(status, reply, diagnostic, mta, recipient)`."""

    def __init__(self, provider: str, classify: Callable[..., Any], received_at: datetime) -> None:
        self.provider = provider
        self.classify = classify
        self.received_at = received_at
        self.out: list[Event] = []
        self._seen: set[str] = set()

    def add(self, etype: str, ident: str, recipient: str, at: Any, **fields: Any) -> None:
        address = normalise_recipient(_t(recipient, 320))
        if not address or len(self.out) >= MAX_EVENTS:
            return
        key = event_key("esp", self.provider, ident, etype, address, fields.get("list_id", ""))
        if key in self._seen:
            return
        self._seen.add(key)
        attrs = {"provider": self.provider, **fields.pop("attrs", {})}
        self.out.append(Event(event_key=key, type=etype, recipient=address, source=self.provider,
                              occurred_at=_when(at, self.received_at), attrs=attrs, **fields))

    def failure(self, etype: str, ident: str, recipient: str, at: Any, *, status: str = "",
                diagnostic: str = "", remote_mta: str = "", attrs: dict | None = None, **fields: Any) -> None:
        """A bounce or deferral, classified by our engine from its status and diagnostic."""
        text = _t(diagnostic)
        status = normalise_status(status) or find_status(strip_type(text))
        reply = find_reply_code(strip_type(text))
        c = self.classify(status, reply, text, _t(remote_mta, 255), _t(recipient, 320))
        hard = bool(c.hard) and etype == "bounced"
        self.add(etype, ident, recipient, at, status=status[:16], reply_code=reply[:8], diagnostic=text,
                 remote_mta=_t(remote_mta, 255), reason=c.reason[:32], category=c.category[:32],
                 hard=hard, rule=c.rule[:64], attrs=attrs or {}, **fields)


# ------------------------------------------------------------------------------------- SES

def ses_events(notification: dict, tr: Translator) -> None:
    """One SES notification (the `Message` of an SNS Notification, decoded)."""
    kind = _t(notification.get("notificationType") or notification.get("eventType"), 64)
    mail = notification.get("mail") or {}
    mid = normalise_message_id(_t(mail.get("messageId"), 255))
    common = dict(message_id=mid, sender=_t(mail.get("source"), 320))
    tags = mail.get("tags") or {}
    if isinstance(tags, dict):
        for name, field in (("ses:source-ip", "source_ip"), ("list-id", "list_id"), ("job-id", "job_id")):
            value = tags.get(name)
            if isinstance(value, list) and value:
                common[field] = _t(value[0], 255)
    if kind == "Bounce":
        b = notification.get("bounce") or {}
        transient = _t(b.get("bounceType")) == "Transient"
        attrs = {"esp_type": _t(b.get("bounceType"), 32), "esp_subtype": _t(b.get("bounceSubType"), 64)}
        for r in _list(b.get("bouncedRecipients")):
            tr.failure("deferred" if transient else "bounced", _t(b.get("feedbackId"), 255) or mid,
                       r.get("emailAddress"), b.get("timestamp"), status=_t(r.get("status"), 32),
                       diagnostic=_t(r.get("diagnosticCode")) or _t(b.get("bounceSubType")),
                       remote_mta=_t(b.get("reportingMTA"), 255), attrs=attrs, **common)
    elif kind == "DeliveryDelay":
        d = notification.get("deliveryDelay") or {}
        for r in _list(d.get("delayedRecipients")):
            tr.failure("deferred", mid + _t(d.get("timestamp")), r.get("emailAddress"), d.get("timestamp"),
                       status=_t(r.get("status"), 32), diagnostic=_t(r.get("diagnosticCode")),
                       remote_mta=_t(d.get("reportingMTA"), 255),
                       attrs={"esp_type": _t(d.get("delayType"), 64)}, **common)
    elif kind == "Complaint":
        c = notification.get("complaint") or {}
        ftype = _t(c.get("complaintFeedbackType"), 32).lower() or "abuse"
        for r in _list(c.get("complainedRecipients")):
            tr.add("complained", _t(c.get("feedbackId"), 255) or mid, r.get("emailAddress"),
                   c.get("arrivalDate") or c.get("timestamp"), feedback_type=ftype, reason="feedback",
                   category="complaint", attrs={"user_agent": _t(c.get("userAgent"), 255)}, **common)
    elif kind == "Delivery":
        d = notification.get("delivery") or {}
        for r in _list(d.get("recipients")):
            tr.add("delivered", mid, r, d.get("timestamp"), diagnostic=_t(d.get("smtpResponse")),
                   remote_mta=_t(d.get("reportingMTA"), 255), reason="delivered", **common)
    elif kind == "Reject":
        # SES refused to send (a virus): a fact about our message, not about its recipients.
        return
    elif kind == "Subscription":
        s = notification.get("subscription") or {}
        prefs = s.get("newTopicPreferences") or {}
        if prefs.get("unsubscribeAll"):
            for r in _list(mail.get("destination")):
                tr.add("unsubscribed", mid + _t(s.get("timestamp")), r, s.get("timestamp"),
                       list_id=_t(s.get("contactList"), 255), attrs={"method": "esp"}, **common)


def ses_sns_message(envelope: dict) -> dict | None:
    """The SES notification inside an SNS `Notification` (None for other SNS message types)."""
    if envelope.get("Type") != "Notification":
        return None
    try:
        inner = json.loads(envelope.get("Message") or "")
    except (TypeError, ValueError) as exc:
        raise PayloadError(f"SNS Message is not JSON: {exc}") from None
    if not isinstance(inner, dict):
        raise PayloadError("SNS Message is not a JSON object")
    return inner


# -------------------------------------------------------------------------------- SendGrid

def sendgrid_events(items: list, tr: Translator) -> None:
    for e in items[:MAX_EVENTS]:
        if not isinstance(e, dict):
            continue
        kind = _t(e.get("event"), 32)
        ident = _t(e.get("sg_event_id"), 255) or _t(e.get("sg_message_id"), 255) + kind
        common = dict(message_id=normalise_message_id(_t(e.get("smtp-id"), 255)),
                      source_ip=_t(e.get("ip"), 64))
        if kind in ("bounce", "dropped"):
            diag = _t(e.get("reason")) or _t(e.get("response"))
            tr.failure("bounced", ident, e.get("email"), e.get("timestamp"), status=_t(e.get("status"), 32),
                       diagnostic=diag, attrs={"esp_type": _t(e.get("type") or kind, 32),
                                               "esp_class": _t(e.get("bounce_classification"), 64)}, **common)
        elif kind == "deferred":
            tr.failure("deferred", ident, e.get("email"), e.get("timestamp"), status=_t(e.get("status"), 32),
                       diagnostic=_t(e.get("response")) or _t(e.get("reason")),
                       attrs={"attempt": _t(e.get("attempt"), 16)}, **common)
        elif kind == "delivered":
            tr.add("delivered", ident, e.get("email"), e.get("timestamp"), reason="delivered",
                   diagnostic=_t(e.get("response")), **common)
        elif kind == "spamreport":
            tr.add("complained", ident, e.get("email"), e.get("timestamp"), feedback_type="abuse",
                   reason="feedback", category="complaint", **common)
        elif kind in ("unsubscribe", "group_unsubscribe"):
            group = _t(e.get("asm_group_id"), 64)
            tr.add("unsubscribed", ident, e.get("email"), e.get("timestamp"),
                   list_id=f"sendgrid-group:{group}" if kind == "group_unsubscribe" and group else "",
                   attrs={"method": "esp"}, **common)


# --------------------------------------------------------------------------------- Mailgun

def mailgun_events(body: dict, tr: Translator) -> None:
    e = body.get("event-data")
    if not isinstance(e, dict):
        raise PayloadError("no event-data object")
    kind = _t(e.get("event"), 32)
    ident = _t(e.get("id"), 255)
    msg = e.get("message") or {}
    headers = msg.get("headers") or {} if isinstance(msg, dict) else {}
    common = dict(message_id=normalise_message_id(_t(headers.get("message-id"), 255)))
    status = e.get("delivery-status") or {}
    if kind == "failed":
        temporary = _t(e.get("severity")) == "temporary"
        code = _t(status.get("code"), 8)
        text = _t(status.get("message")) or _t(status.get("description"))
        if code and not text.startswith(code):
            text = f"{code} {text}".strip()
        tr.failure("deferred" if temporary else "bounced", ident, e.get("recipient"), e.get("timestamp"),
                   status=_t(status.get("enhanced-code"), 32), diagnostic=text,
                   remote_mta=_t(status.get("mx-host"), 255),
                   attrs={"esp_type": _t(e.get("severity"), 32), "esp_reason": _t(e.get("reason"), 64)}, **common)
    elif kind == "delivered":
        tr.add("delivered", ident, e.get("recipient"), e.get("timestamp"), reason="delivered",
               diagnostic=_t(status.get("message")), **common)
    elif kind == "complained":
        tr.add("complained", ident, e.get("recipient"), e.get("timestamp"), feedback_type="abuse",
               reason="feedback", category="complaint", **common)
    elif kind == "unsubscribed":
        tr.add("unsubscribed", ident, e.get("recipient"), e.get("timestamp"), attrs={"method": "esp"}, **common)


# -------------------------------------------------------------------------------- Postmark

def postmark_events(record: dict, tr: Translator) -> None:
    kind = _t(record.get("RecordType"), 32)
    ident = _t(record.get("ID"), 64) or _t(record.get("MessageID"), 255)
    common = dict(message_id=normalise_message_id(_t(record.get("MessageID"), 255)),
                  list_id=_t(record.get("MessageStream"), 255) if kind == "SubscriptionChange" else "")
    if kind == "Bounce":
        btype = _t(record.get("Type"), 64)
        temporary = btype in ("SoftBounce", "Transient", "DnsError", "AutoResponder", "OpenRelayTest")
        diag = _t(record.get("Details")) or _t(record.get("Description"))
        tr.failure("deferred" if temporary else "bounced", ident, record.get("Email"), record.get("BouncedAt"),
                   diagnostic=diag, attrs={"esp_type": btype}, **common)
    elif kind == "SpamComplaint":
        tr.add("complained", ident, record.get("Email"), record.get("BouncedAt"), feedback_type="abuse",
               reason="feedback", category="complaint", **common)
    elif kind == "SubscriptionChange":
        if record.get("SuppressSending") and _t(record.get("SuppressionReason")) == "ManualSuppression":
            tr.add("unsubscribed", ident + _t(record.get("ChangedAt")), record.get("Recipient"),
                   record.get("ChangedAt"), attrs={"method": "esp", "origin": _t(record.get("Origin"), 32)},
                   **common)
    elif kind == "Delivery":
        tr.add("delivered", ident, record.get("Recipient"), record.get("DeliveredAt"), reason="delivered",
               diagnostic=_t(record.get("Details")), **common)


def _list(value: Any) -> list:
    if isinstance(value, list):
        return [v for v in value if isinstance(v, (dict, str))][:MAX_EVENTS]
    return []


_READERS: dict[str, tuple[type, Callable[[Any, Translator], None], str]] = {
    "ses": (dict, ses_events, "an SES notification is a JSON object"),
    "sendgrid": (list, sendgrid_events, "a SendGrid Event Webhook POST is a JSON array"),
    "mailgun": (dict, mailgun_events, "a Mailgun webhook is a JSON object"),
    "postmark": (dict, postmark_events, "a Postmark webhook is a JSON object"),
}


def esp_events(provider: str, payload: Any, classify: Callable[..., Any], received_at: datetime) -> list[Event]:
    """Events for one verified POST of `provider` (see the module docstring). Raises PayloadError
    when the payload is not that provider's shape."""
    if provider not in _READERS:
        raise PayloadError(f"unknown provider {provider!r}")
    shape, read, expected = _READERS[provider]
    if not isinstance(payload, shape):
        raise PayloadError(expected)
    tr = Translator(provider, classify, received_at)
    read(payload, tr)
    return tr.out
