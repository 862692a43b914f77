"""One-click unsubscribe tokens (RFC 8058) and the List-Unsubscribe header pair for senders.

Domain layer: pure; stdlib only.
In: the server secret, a recipient, a list id ("" = every list: global scope) and an expiry.
Out: an opaque URL-safe token, and back from a token the claims it carries once its MAC checks.

Layout (before base64url, no padding): version byte 1 | expiry as 4-byte big-endian unix seconds |
recipient UTF-8 | 0x00 | list id UTF-8 | first 16 bytes of HMAC-SHA256 over everything before.
The HMAC key is derived from the server secret for this purpose only, so the same secret can sign
other things. A 128-bit MAC cannot be forged or enumerated; the recipient is inside the token
(it already is in the message the token was mailed in) so no server-side lookup table is needed.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import struct
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

VERSION = 1
MAC_BYTES = 16
MAX_TOKEN_CHARS = 1024
DEFAULT_LIFETIME = timedelta(days=365)
ONE_CLICK_BODY = "List-Unsubscribe=One-Click"


class InvalidToken(ValueError):
    """The token is malformed, forged, or expired (the caller must not say which)."""


@dataclass(frozen=True)
class UnsubscribeClaims:
    recipient: str
    list_id: str          # "" means global scope
    expires_at: datetime

    @property
    def scope(self) -> str:
        return f"list:{self.list_id}" if self.list_id else "global"


def _key(secret: str | bytes) -> bytes:
    raw = secret.encode("utf-8") if isinstance(secret, str) else secret
    return hmac.new(raw, b"bounceproc unsubscribe token v1", hashlib.sha256).digest()


def make_token(secret: str | bytes, recipient: str, list_id: str, expires_at: datetime) -> str:
    """A token for `recipient` in `list_id` ("" = global), valid until `expires_at`."""
    if "\x00" in recipient or "\x00" in list_id:
        raise ValueError("recipient and list id must not contain NUL")
    expiry = int(expires_at.timestamp())
    payload = (bytes([VERSION]) + struct.pack(">I", expiry) + recipient.encode("utf-8")
               + b"\x00" + list_id.encode("utf-8"))
    mac = hmac.new(_key(secret), payload, hashlib.sha256).digest()[:MAC_BYTES]
    return base64.urlsafe_b64encode(payload + mac).rstrip(b"=").decode("ascii")


def read_token(secret: str | bytes, token: str, now: datetime) -> UnsubscribeClaims:
    """The claims of a genuine, unexpired token; InvalidToken otherwise."""
    if not token or len(token) > MAX_TOKEN_CHARS:
        raise InvalidToken("bad token")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (ValueError, TypeError) as exc:
        raise InvalidToken("bad token") from exc
    if len(raw) < 1 + 4 + 1 + MAC_BYTES or raw[0] != VERSION:
        raise InvalidToken("bad token")
    payload, mac = raw[:-MAC_BYTES], raw[-MAC_BYTES:]
    expected = hmac.new(_key(secret), payload, hashlib.sha256).digest()[:MAC_BYTES]
    if not hmac.compare_digest(mac, expected):
        raise InvalidToken("bad token")
    (expiry,) = struct.unpack(">I", payload[1:5])
    recipient_b, sep, list_b = payload[5:].partition(b"\x00")
    if not sep:
        raise InvalidToken("bad token")
    expires_at = datetime.fromtimestamp(expiry, tz=timezone.utc)
    if now >= expires_at:
        raise InvalidToken("bad token")
    try:
        return UnsubscribeClaims(recipient_b.decode("utf-8"), list_b.decode("utf-8"), expires_at)
    except UnicodeDecodeError as exc:
        raise InvalidToken("bad token") from exc


def unsubscribe_url(public_url: str, token: str) -> str:
    """The https URL of the one-click endpoint for a token: `{public_url}/u/{token}`."""
    return f"{public_url.rstrip('/')}/u/{token}"


def header_pair(url: str, mailto: str | None = None) -> dict[str, str]:
    """`List-Unsubscribe` (one https URI, optionally a mailto next to it) and `List-Unsubscribe-Post`.

    Both headers must be covered by the message's DKIM signature (h=) for mailbox providers to
    offer the one-click button.
    """
    value = f"<{url}>" + (f", <mailto:{mailto}>" if mailto else "")
    return {"List-Unsubscribe": value, "List-Unsubscribe-Post": ONE_CLICK_BODY}
