"""Proof that an ESP webhook POST comes from the provider, as each provider specifies it.

Adapter layer (uses `cryptography` for RSA / ECDSA; fetches SNS certificates with httpx).
- Amazon SNS (SES notifications): the message fields in SNS's canonical order, signed with
  SHA1withRSA (SignatureVersion 1) or SHA256withRSA (2) by the certificate at `SigningCertURL`,
  which must be an https URL on an allowed host (default `sns.*.amazonaws.com`) ending in `.pem`.
  Certificates are cached by URL. The `TopicArn` must be one the operator listed: a valid SNS
  signature only proves that *some* SNS topic sent it.
- SendGrid: ECDSA P-256 / SHA-256 over `timestamp + body`, signature in
  `X-Twilio-Email-Event-Webhook-Signature`, timestamp in `...-Timestamp`; the operator pastes the
  verification key SendGrid shows (base64 DER, or PEM).
- Mailgun (webhooks v3): HMAC-SHA256 of `timestamp + token` with the webhook signing key; a
  token is accepted once.
- Postmark has no signature: HTTP basic auth on the webhook URL, or a secret path segment.
Timestamps older than `esp_max_age_seconds` (or that far in the future) are refused: a captured
POST cannot be replayed later.
"""
from __future__ import annotations

import base64
import binascii
import fnmatch
import hashlib
import hmac
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import datetime, timezone
from urllib.parse import urlsplit


class Unverified(Exception):
    """The POST is not proven to come from the provider (answered 401 or 403, nothing stored)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


# ------------------------------------------------------------------------------------ SNS

_SNS_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
}


def sns_string_to_sign(msg: dict) -> bytes:
    """SNS's canonical form: each present field as `Name\\nvalue\\n`, in its fixed order
    (Subject only when the message has one)."""
    fields = _SNS_FIELDS.get(msg.get("Type", ""))
    if fields is None:
        raise Unverified(400, f"unknown SNS message type {str(msg.get('Type'))[:40]!r}")
    out = []
    for name in fields:
        value = msg.get(name)
        if value is None:
            if name == "Subject":
                continue
            raise Unverified(400, f"SNS message has no {name}")
        out.append(f"{name}\n{value}\n")
    return "".join(out).encode("utf-8")


def url_allowed(url: str, patterns: tuple[str, ...]) -> bool:
    """`scheme://host[:port]` of `url` matches one of the glob patterns (`https://sns.*.amazonaws.com`)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if not parts.scheme or not parts.netloc or parts.username or parts.password:
        return False
    origin = f"{parts.scheme.lower()}://{parts.netloc.lower()}"
    return any(fnmatch.fnmatchcase(origin, p.lower()) for p in patterns)


FETCH_WAIT_SECONDS = 30     # a request waiting for another's certificate fetch (itself bounded: 5 s)


def _age_ok(when: datetime, max_age: int, now: float) -> bool:
    return abs(now - when.timestamp()) <= max_age


class SnsVerifier:
    def __init__(self, cert_origins: tuple[str, ...], topics: tuple[str, ...], max_age: int,
                 fetch=None, cache_size: int = 64) -> None:
        self.cert_origins = cert_origins
        self.topics = frozenset(topics)
        self.max_age = max_age
        self.fetch = fetch or _http_get
        self._keys: OrderedDict[str, object] = OrderedDict()
        self._lock = threading.Lock()
        self._flights: dict[str, Future] = {}     # URL -> the fetch in progress
        self.cache_size = cache_size

    def has_key(self, url: str) -> bool:
        return url in self._keys

    def url_ok(self, url: str) -> bool:
        return url_allowed(url, self.cert_origins) and urlsplit(url).path.endswith(".pem")

    def public_key(self, url: str):
        """The key of the certificate at `url` (an allowed URL: only those are cached).

        Fetched once per URL even when many requests need it at once (the first POSTs after a
        start, or after SNS moves to a new certificate): one thread fetches, the others wait for
        its result (or its error) instead of each fetching it again."""
        with self._lock:
            key = self._keys.get(url)
            if key is not None:
                self._keys.move_to_end(url)
                return key
            flight = self._flights.get(url)
            leader = flight is None
            if leader:
                flight = self._flights[url] = Future()
        if not leader:
            try:
                return flight.result(timeout=FETCH_WAIT_SECONDS)
            except FutureTimeout:
                raise Unverified(403, "the SNS signing certificate is still being fetched") from None
        try:
            key = self._load(url)
        except BaseException as exc:
            flight.set_exception(exc)
            raise
        else:
            flight.set_result(key)
            with self._lock:
                self._keys[url] = key
                while len(self._keys) > self.cache_size:
                    self._keys.popitem(last=False)
            return key
        finally:
            with self._lock:
                self._flights.pop(url, None)

    def _load(self, url: str):
        if not self.url_ok(url):
            raise Unverified(403, "SigningCertURL is not on an allowed host (esp_ses_cert_origins)")
        from cryptography import x509
        pem = self.fetch(url)
        try:
            cert = x509.load_pem_x509_certificate(pem)
        except ValueError as exc:
            raise Unverified(403, f"SigningCertURL is not a PEM certificate: {exc}") from None
        now = datetime.now(timezone.utc)
        if not (cert.not_valid_before_utc <= now <= cert.not_valid_after_utc):
            raise Unverified(403, "the SNS signing certificate is not valid now")
        return cert.public_key()

    def verify(self, msg: dict, now: float | None = None) -> None:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        if msg.get("TopicArn") not in self.topics:
            raise Unverified(403, "TopicArn is not one of esp_ses_topic_arns")
        url = str(msg.get("SigningCertURL") or msg.get("SigningCertUrl") or "")
        if not self.has_key(url) and not self.url_ok(url):      # a cached URL was allowed
            raise Unverified(403, "SigningCertURL is not on an allowed host (esp_ses_cert_origins)")
        version = str(msg.get("SignatureVersion", ""))
        if version not in ("1", "2"):
            raise Unverified(401, f"unsupported SignatureVersion {version[:8]!r}")
        try:
            signature = base64.b64decode(str(msg.get("Signature", "")), validate=True)
        except (binascii.Error, ValueError):
            raise Unverified(401, "Signature is not base64") from None
        when = _parse_iso(str(msg.get("Timestamp", "")))
        if when is None or not _age_ok(when, self.max_age, time.time() if now is None else now):
            raise Unverified(401, "Timestamp is missing or too old")
        data = sns_string_to_sign(msg)
        key = self.public_key(url)
        try:
            key.verify(signature, data, padding.PKCS1v15(), hashes.SHA1() if version == "1" else hashes.SHA256())
        except InvalidSignature:
            raise Unverified(401, "SNS signature does not verify") from None
        except (TypeError, AttributeError):
            raise Unverified(403, "the SNS signing certificate does not hold an RSA key") from None

    def subscribe_url_allowed(self, url: str) -> bool:
        return url_allowed(url, self.cert_origins)


def _parse_iso(text: str) -> datetime | None:
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def _http_get(url: str, max_bytes: int = 64 * 1024) -> bytes:
    import httpx
    try:
        with httpx.Client(timeout=5.0, follow_redirects=False) as client:
            r = client.get(url)
    except httpx.HTTPError as exc:
        raise Unverified(403, f"cannot fetch {url[:200]}: {type(exc).__name__}") from None
    if r.status_code != 200:
        raise Unverified(403, f"{url[:200]} answered {r.status_code}")
    return r.content[:max_bytes]


# -------------------------------------------------------------------------------- SendGrid

def load_ec_public_key(text: str):
    """SendGrid's verification key: base64 DER (as its console shows it) or PEM."""
    from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key
    text = text.strip()
    if text.startswith("-----BEGIN"):
        return load_pem_public_key(text.encode())
    return load_der_public_key(base64.b64decode(text))


def verify_sendgrid(public_key, signature_b64: str, timestamp: str, body: bytes, max_age: int,
                    now: float | None = None) -> None:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    if not signature_b64 or not timestamp:
        raise Unverified(401, "the X-Twilio-Email-Event-Webhook-Signature / -Timestamp headers are missing")
    try:
        ts = int(timestamp)
    except ValueError:
        raise Unverified(401, "the webhook timestamp is not a number") from None
    if abs((time.time() if now is None else now) - ts) > max_age:
        raise Unverified(401, "the webhook timestamp is too old")
    try:
        signature = base64.b64decode(signature_b64, validate=True)
        public_key.verify(signature, timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, binascii.Error, ValueError):
        raise Unverified(401, "SendGrid signature does not verify") from None


# --------------------------------------------------------------------------------- Mailgun

class MailgunVerifier:
    def __init__(self, signing_key: str, max_age: int, seen_size: int = 100_000) -> None:
        self.key = signing_key.encode()
        self.max_age = max_age
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()
        self.seen_size = seen_size

    def verify(self, signature: object, now: float | None = None) -> None:
        if not isinstance(signature, dict):
            raise Unverified(401, "no signature object")
        timestamp, token, given = (str(signature.get(k, "")) for k in ("timestamp", "token", "signature"))
        try:
            ts = int(timestamp)
        except ValueError:
            raise Unverified(401, "the signature timestamp is not a number") from None
        if abs((time.time() if now is None else now) - ts) > self.max_age:
            raise Unverified(401, "the signature timestamp is too old")
        want = hmac.new(self.key, (timestamp + token).encode(), hashlib.sha256).hexdigest()
        if not token or not hmac.compare_digest(want, given):
            raise Unverified(401, "Mailgun signature does not verify")
        with self._lock:
            if token in self._seen:
                raise Unverified(401, "this signature token was already used")
            self._seen[token] = None
            while len(self._seen) > self.seen_size:
                self._seen.popitem(last=False)


# -------------------------------------------------------------------------------- Postmark

def verify_postmark(credentials: str, path_secret: str, authorization: str, given_secret: str) -> None:
    """Basic auth `user:password` (esp_postmark_credentials) or the secret path segment."""
    if path_secret and given_secret:
        if hmac.compare_digest(given_secret.encode(), path_secret.encode()):
            return
        raise Unverified(403, "wrong webhook path")
    if credentials and authorization.lower().startswith("basic "):
        try:
            given = base64.b64decode(authorization[6:].strip(), validate=True)
        except (binascii.Error, ValueError):
            given = b""
        if hmac.compare_digest(given, credentials.encode()):
            return
    raise Unverified(401, "Postmark webhooks need the basic-auth credentials or the secret path")
