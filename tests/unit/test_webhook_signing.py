"""Standard Webhooks v1 signing against the reference test vectors and the PyPI library."""
from __future__ import annotations

import pytest

from bounceproc.domain.webhook_signing import (
    WebhookVerificationError, secret_from_bytes, sign, signature_header, verify, webhook_headers,
)

LIB_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
LIB_ID, LIB_TS, LIB_BODY = "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, '{"test": 2432232314}'
OUR_SECRET = secret_from_bytes(bytes(range(1, 33)))
OUR_ID, OUR_TS = "evt_01HZX3K9Q7T2V5", 1767225600
OUR_BODY = ('{"type":"recipient.hard_bounced","timestamp":"2026-01-01T00:00:00Z","data":{"address":'
            '"alice@example.com","reason":"hard_bounce","category":"bad-mailbox","status":"5.1.1"}}')


def test_library_vector_signs_as_expected():
    assert sign(LIB_SECRET, LIB_ID, LIB_TS, LIB_BODY) == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_our_vector_signs_as_expected():
    assert OUR_SECRET == "whsec_AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="
    assert len(OUR_BODY.encode()) == 172
    assert sign(OUR_SECRET, OUR_ID, OUR_TS, OUR_BODY) == "v1,hQnTt7war1Zj26Wo891HNdcez9SaI5AOmQ7M1ni17Q4="


def test_whsec_text_is_not_the_key():
    import base64, hashlib, hmac
    wrong = hmac.new(LIB_SECRET.encode(), f"{LIB_ID}.{LIB_TS}.{LIB_BODY}".encode(), hashlib.sha256).digest()
    assert "v1," + base64.b64encode(wrong).decode() == "v1,TcxlhK9b6UD6iVI1ZU2tTqp8PEVfYRseNNfa6b+LcUg="
    assert sign(LIB_SECRET, LIB_ID, LIB_TS, LIB_BODY) != "v1,TcxlhK9b6UD6iVI1ZU2tTqp8PEVfYRseNNfa6b+LcUg="


def _headers(ts=OUR_TS, sig=None):
    return {"webhook-id": OUR_ID, "webhook-timestamp": str(ts),
            "webhook-signature": sig or sign(OUR_SECRET, OUR_ID, ts, OUR_BODY)}


def test_verify_accepts_within_tolerance_and_rejects_stale():
    verify([OUR_SECRET], _headers(), OUR_BODY, now=OUR_TS + 300)
    with pytest.raises(WebhookVerificationError):
        verify([OUR_SECRET], _headers(), OUR_BODY, now=OUR_TS + 301)
    with pytest.raises(WebhookVerificationError):
        verify([OUR_SECRET], _headers(), OUR_BODY, now=OUR_TS - 301)


def test_one_extra_byte_fails():
    with pytest.raises(WebhookVerificationError):
        verify([OUR_SECRET], _headers(), OUR_BODY + " ", now=OUR_TS)


def test_bogus_entry_before_the_good_one_passes():
    good = sign(OUR_SECRET, OUR_ID, OUR_TS, OUR_BODY)
    verify([OUR_SECRET], _headers(sig=f"v1,Zm9vYmFy v2,abc {good}"), OUR_BODY, now=OUR_TS)


def test_rotation_sends_one_signature_per_secret():
    other = secret_from_bytes(bytes(range(33, 65)))
    header = signature_header([OUR_SECRET, other], OUR_ID, OUR_TS, OUR_BODY)
    assert len(header.split()) == 2
    verify([other], _headers(sig=header), OUR_BODY, now=OUR_TS)
    verify([OUR_SECRET], _headers(sig=header), OUR_BODY, now=OUR_TS)


def test_missing_headers_and_ids_with_dots_are_refused():
    with pytest.raises(WebhookVerificationError):
        verify([OUR_SECRET], {"webhook-id": OUR_ID}, OUR_BODY, now=OUR_TS)
    with pytest.raises(ValueError):
        sign(OUR_SECRET, "evt.1", OUR_TS, OUR_BODY)


def test_independent_library_verifies_our_headers():
    standardwebhooks = pytest.importorskip("standardwebhooks")
    import time
    now = int(time.time())
    headers = webhook_headers([OUR_SECRET], OUR_ID, now, OUR_BODY)
    assert standardwebhooks.Webhook(OUR_SECRET).verify(OUR_BODY, headers) is not None
