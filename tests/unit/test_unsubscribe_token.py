"""One-click unsubscribe tokens: round trip, forgery, expiry, scope; the header pair."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from bounceproc.domain.unsubscribe_token import (
    InvalidToken, header_pair, make_token, read_token, unsubscribe_url,
)
from bounceproc.domain.webhook_retry import SCHEDULE_SECONDS, max_attempts, next_delay, parse_retry_after

NOW = datetime(2026, 11, 25, tzinfo=timezone.utc)
LATER = NOW + timedelta(days=30)


def test_round_trip_carries_recipient_list_and_expiry():
    claims = read_token("s3cret", make_token("s3cret", "alice@example.com", "news", LATER), NOW)
    assert (claims.recipient, claims.list_id, claims.scope) == ("alice@example.com", "news", "list:news")
    assert claims.expires_at == LATER
    assert read_token("s3cret", make_token("s3cret", "bob@example.com", "", LATER), NOW).scope == "global"


def test_other_secret_or_tampered_token_is_refused():
    token = make_token("s3cret", "alice@example.com", "news", LATER)
    with pytest.raises(InvalidToken):
        read_token("other", token, NOW)
    for i in (0, 5, len(token) // 2, len(token) - 2):
        flipped = token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1:]
        with pytest.raises(InvalidToken):
            read_token("s3cret", flipped, NOW)


def test_changing_the_list_inside_the_token_breaks_the_mac():
    import base64
    token = make_token("s3cret", "alice@example.com", "news", LATER)
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    at = raw.index(b"news")
    raw[at:at + 4] = b"sale"
    forged = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    with pytest.raises(InvalidToken):
        read_token("s3cret", forged, NOW)


def test_expired_and_garbage_tokens_are_refused():
    with pytest.raises(InvalidToken):
        read_token("s3cret", make_token("s3cret", "a@example.com", "", NOW), NOW)
    for junk in ("", "x", "!!!!", "A" * 2000, "AQAAAAA"):
        with pytest.raises(InvalidToken):
            read_token("s3cret", junk, NOW)


def test_header_pair_follows_rfc_8058():
    url = unsubscribe_url("https://u.example.net/", "TOKEN")
    assert url == "https://u.example.net/u/TOKEN"
    assert header_pair(url) == {"List-Unsubscribe": "<https://u.example.net/u/TOKEN>",
                                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    assert header_pair(url, "unsub@example.net")["List-Unsubscribe"].endswith(", <mailto:unsub@example.net>")


def test_retry_schedule_has_jitter_and_ends():
    assert next_delay(1, 0.0) == pytest.approx(4.5)
    assert next_delay(1, 1.0) == pytest.approx(5.5)
    assert next_delay(9, 0.5) == pytest.approx(86400)
    assert next_delay(len(SCHEDULE_SECONDS) + 1, 0.5) is None
    assert next_delay(1, 0.5, retry_after=120) == 120
    assert next_delay(1, 0.5, retry_after=10**9) == 86400
    assert max_attempts() == 10
    assert sum(SCHEDULE_SECONDS) / 3600 == pytest.approx(75.5, abs=0.1)
    assert parse_retry_after("30") == 30 and parse_retry_after("Wed, 21 Oct 2015") is None
