"""Sign and verify outgoing webhooks with the Standard Webhooks v1 scheme (symmetric HMAC).

Domain layer: pure; stdlib only.
In: a `whsec_` secret (or several during a rotation), the webhook-id, the unix timestamp of this
attempt and the exact body bytes. Out: the `webhook-signature` header value, or a verdict.

Standard Webhooks 1.0.0: key = base64-decode of the text after `whsec_` (the raw bytes, never the
`whsec_...` text itself); message = "{id}.{timestamp}.{body}"; signature = "v1," +
base64(HMAC-SHA256(key, message)). Several signatures are sent space-separated while a secret is
being rotated; a receiver accepts if any `v1` entry matches and skips versions it does not know.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping

SECRET_PREFIX = "whsec_"
TOLERANCE_SECONDS = 300
MIN_KEY_BYTES, MAX_KEY_BYTES = 24, 64


class WebhookVerificationError(ValueError):
    """The headers or the signature of a webhook do not verify."""


def secret_from_bytes(raw: bytes) -> str:
    """`whsec_` + standard base64 of 24..64 random bytes, shown to the endpoint owner once."""
    if not MIN_KEY_BYTES <= len(raw) <= MAX_KEY_BYTES:
        raise ValueError(f"a webhook secret must have {MIN_KEY_BYTES} to {MAX_KEY_BYTES} bytes")
    return SECRET_PREFIX + base64.b64encode(raw).decode("ascii")


def secret_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_...` secret: its base64-decoded bytes."""
    text = secret[len(SECRET_PREFIX):] if secret.startswith(SECRET_PREFIX) else secret
    try:
        return base64.b64decode(text, validate=True)
    except ValueError as exc:
        raise ValueError("a webhook secret is `whsec_` followed by standard base64") from exc


def sign(secret: str, msg_id: str, timestamp: int, body: bytes | str) -> str:
    """One `v1,<base64>` signature over `{msg_id}.{timestamp}.{body}`."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    if "." in msg_id:
        raise ValueError("a webhook-id must not contain '.'")
    message = f"{msg_id}.{int(timestamp)}.".encode("ascii") + body
    digest = hmac.new(secret_key(secret), message, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signature_header(secrets: Iterable[str], msg_id: str, timestamp: int, body: bytes | str) -> str:
    """The `webhook-signature` value: one signature per active secret, space-separated."""
    sigs = [sign(s, msg_id, timestamp, body) for s in secrets]
    if not sigs:
        raise ValueError("at least one secret is needed to sign a webhook")
    return " ".join(sigs)


def webhook_headers(secrets: Iterable[str], msg_id: str, timestamp: int, body: bytes | str) -> dict[str, str]:
    """The three Standard Webhooks headers plus the content type."""
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp)),
        "webhook-signature": signature_header(secrets, msg_id, timestamp, body),
    }


def verify(secrets: Iterable[str], headers: Mapping[str, str], body: bytes | str, now: int,
           tolerance: int = TOLERANCE_SECONDS) -> None:
    """Raise WebhookVerificationError unless a `v1` signature of one secret matches in time.

    `headers` must be keyed in lower case (webhook-id, webhook-timestamp, webhook-signature).
    """
    msg_id = headers.get("webhook-id")
    ts_text = headers.get("webhook-timestamp")
    sig_text = headers.get("webhook-signature")
    if not msg_id or not ts_text or not sig_text:
        raise WebhookVerificationError("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        timestamp = int(ts_text)
    except ValueError as exc:
        raise WebhookVerificationError("webhook-timestamp is not an integer") from exc
    if abs(now - timestamp) > tolerance:
        raise WebhookVerificationError("webhook-timestamp is outside the tolerance")
    offered = [part.split(",", 1)[1] for part in sig_text.split()
               if part.startswith("v1,")]
    for secret in secrets:
        expected = sign(secret, msg_id, timestamp, body).split(",", 1)[1]
        if any(hmac.compare_digest(expected, o) for o in offered):
            return
    raise WebhookVerificationError("no matching v1 signature")
