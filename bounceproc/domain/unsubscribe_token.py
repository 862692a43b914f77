"""One-click unsubscribe tokens (RFC 8058) and the List-Unsubscribe header pair for senders.

Domain layer: pure; stdlib, the one address normaliser (address.py) and `cryptography` (an
AEAD primitive, no I/O).
In: the server secret, a recipient, a list id ("" = every list: global scope) and an expiry.
Out: an opaque URL-safe token, and back from a token the claims it carries once it authenticates.

Version 2 (made since 2026-12-03; issue 13, item 16): the address is not readable in the URL.
Layout before base64url (no padding): version byte 2 | AES-SIV (RFC 5297, AES-256) of
`expiry (4-byte big-endian unix seconds) | recipient UTF-8 | 0x00 | list id UTF-8`, with the
version byte as associated data. AES-SIV is deterministic authenticated encryption: no nonce to
manage, and the same claims always give the same token (as the same URL would anyway); its
128-bit synthetic IV is the tag, so a token cannot be forged, altered or enumerated. The key is
64 bytes derived from the server secret for this purpose only (HMAC-SHA512 with a label), so the
same secret can sign other things. No server-side table is needed.

Version 1 (before 2026-12-03) is still read until its expiry: version byte 1 | expiry | recipient
| 0x00 | list id | first 16 bytes of HMAC-SHA256 over everything before, in plain base64url.

Only the canonical spelling of a token is accepted (issue 13, item 10): base64url without
padding, nothing outside the alphabet, the unused low bits of the last character zero; anything
else (which would decode to the same bytes) is refused, so one click cannot be replayed as many
"different" tokens. The recipient read back is normalised (address.py): a token made for
`Carol.Mixed@Example.COM` unsubscribes the key `carol.mixed@example.com` (item 4).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESSIV

from bounceproc.domain.address import AddressError, normalise_address

VERSION = 2
LEGACY_VERSION = 1
MAC_BYTES = 16            # v1 MAC, and the v2 synthetic IV
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

    @property
    def identity(self) -> str:
        """What the token says, whatever its version or spelling: the basis of its event key and
        its rate limit."""
        return f"{self.recipient}\x1f{self.list_id}\x1f{int(self.expires_at.timestamp())}"


def _raw(secret: str | bytes) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else secret


def _mac_key(secret: str | bytes) -> bytes:
    return hmac.new(_raw(secret), b"bounceproc unsubscribe token v1", hashlib.sha256).digest()


@lru_cache(maxsize=8)
def _aead(secret: str | bytes) -> AESSIV:
    return AESSIV(hmac.new(_raw(secret), b"bounceproc unsubscribe token v2 aes-siv", hashlib.sha512).digest())


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _claims_bytes(recipient: str, list_id: str, expires_at: datetime) -> bytes:
    if "\x00" in recipient or "\x00" in list_id:
        raise ValueError("recipient and list id must not contain NUL")
    return struct.pack(">I", int(expires_at.timestamp())) + recipient.encode("utf-8") + b"\x00" + list_id.encode("utf-8")


def make_token(secret: str | bytes, recipient: str, list_id: str, expires_at: datetime) -> str:
    """An opaque (v2) token for `recipient` in `list_id` ("" = global), valid until `expires_at`.
    The recipient is normalised first; AddressError (a ValueError) if it is not an address."""
    plain = _claims_bytes(normalise_address(recipient), list_id, expires_at)
    version = bytes([VERSION])
    return _b64(version + _aead(secret).encrypt(plain, [version]))


def make_legacy_token(secret: str | bytes, recipient: str, list_id: str, expires_at: datetime) -> str:
    """A version 1 token (the address readable in it), as made before 2026-12-03; for tests of
    the compatibility path only."""
    payload = bytes([LEGACY_VERSION]) + _claims_bytes(recipient, list_id, expires_at)
    return _b64(payload + hmac.new(_mac_key(secret), payload, hashlib.sha256).digest()[:MAC_BYTES])


def _decode(token: str) -> bytes:
    """The bytes of a canonically spelled base64url token; InvalidToken for any other spelling."""
    if not token or len(token) > MAX_TOKEN_CHARS or not token.isascii():
        raise InvalidToken("bad token")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (ValueError, binascii.Error) as exc:
        raise InvalidToken("bad token") from exc
    if _b64(raw) != token:      # padding, characters outside the alphabet, non-zero spare bits
        raise InvalidToken("bad token")
    return raw


def _open(secret: str | bytes, raw: bytes) -> bytes:
    """The claim bytes of an authentic token (either version); InvalidToken otherwise."""
    if raw[:1] == bytes([VERSION]) and len(raw) >= 1 + MAC_BYTES + 5:
        try:
            return _aead(secret).decrypt(raw[1:], [raw[:1]])
        except InvalidTag as exc:
            raise InvalidToken("bad token") from exc
    if raw[:1] == bytes([LEGACY_VERSION]) and len(raw) >= 1 + 5 + MAC_BYTES:
        payload, mac = raw[:-MAC_BYTES], raw[-MAC_BYTES:]
        if hmac.compare_digest(mac, hmac.new(_mac_key(secret), payload, hashlib.sha256).digest()[:MAC_BYTES]):
            return payload[1:]
    raise InvalidToken("bad token")


def read_token(secret: str | bytes, token: str, now: datetime) -> UnsubscribeClaims:
    """The claims of a genuine, unexpired, canonically spelled token; InvalidToken otherwise."""
    plain = _open(secret, _decode(token))
    (expiry,) = struct.unpack(">I", plain[:4])
    recipient_b, sep, list_b = plain[4:].partition(b"\x00")
    expires_at = datetime.fromtimestamp(expiry, tz=timezone.utc)
    if not sep or now >= expires_at:
        raise InvalidToken("bad token")
    try:
        return UnsubscribeClaims(normalise_address(recipient_b.decode("utf-8")), list_b.decode("utf-8"),
                                 expires_at)
    except (UnicodeDecodeError, AddressError) as exc:
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
