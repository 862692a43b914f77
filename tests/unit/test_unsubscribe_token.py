"""One-click unsubscribe tokens: round trip, forgery, expiry, scope; the header pair."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from bounceproc.domain.address import AddressError
from bounceproc.domain.unsubscribe_token import (
    InvalidToken, header_pair, make_legacy_token, make_token, read_token, unsubscribe_url,
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


def test_changing_the_list_inside_a_legacy_token_breaks_the_mac():
    import base64
    token = make_legacy_token("s3cret", "alice@example.com", "news", LATER)
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    at = raw.index(b"news")
    raw[at:at + 4] = b"sale"
    forged = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    with pytest.raises(InvalidToken):
        read_token("s3cret", forged, NOW)


def _bytes(token: str) -> bytes:
    import base64
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def test_tokens_are_opaque_and_every_bit_is_authenticated():
    """Issue 13, item 16: the address (or any part of it) is not readable in a token, and
    changing any byte of it, the version byte included, makes it invalid."""
    import base64
    token = make_token("s3cret", "alice.secret@example.com", "news", LATER)
    raw = _bytes(token)
    assert raw[0] == 2
    for part in (b"alice", b"secret", b"example", b"news", base64.b64encode(b"alice")[:4]):
        assert part not in raw and part.decode() not in token
    for i in range(len(raw)):
        for flip in (0x01, 0x80):
            tampered = bytearray(raw)
            tampered[i] ^= flip
            with pytest.raises(InvalidToken):
                read_token("s3cret", base64.urlsafe_b64encode(bytes(tampered)).rstrip(b"=").decode(), NOW)
    # a v2 body presented as a v1 token is refused too
    with pytest.raises(InvalidToken):
        read_token("s3cret", base64.urlsafe_b64encode(b"\x01" + raw[1:]).rstrip(b"=").decode(), NOW)


def test_legacy_tokens_stay_valid_until_they_expire():
    legacy = make_legacy_token("s3cret", "Alice@Example.COM", "news", LATER)
    assert b"Alice@Example.COM" in _bytes(legacy)           # the old format: readable
    claims = read_token("s3cret", legacy, NOW)
    assert (claims.recipient, claims.list_id, claims.expires_at) == ("alice@example.com", "news", LATER)
    assert claims.identity == read_token("s3cret", make_token("s3cret", "alice@example.com", "news", LATER),
                                         NOW).identity
    with pytest.raises(InvalidToken):
        read_token("s3cret", legacy, LATER)
    with pytest.raises(InvalidToken):
        read_token("other", legacy, NOW)


def test_recipient_is_normalised_both_ways():
    """Issue 13, item 4: a token for a mixed-case address unsubscribes the normalised key."""
    claims = read_token("s3cret", make_token("s3cret", "Carol.Mixed@Example.COM", "", LATER), NOW)
    assert claims.recipient == "carol.mixed@example.com" and claims.scope == "global"
    assert make_token("s3cret", "Carol.Mixed@Example.COM", "", LATER) == make_token(
        "s3cret", "carol.mixed@example.com", "", LATER)
    with pytest.raises(AddressError):
        make_token("s3cret", "not an address", "", LATER)
    with pytest.raises(InvalidToken):        # an old token for something that is no address
        read_token("s3cret", make_legacy_token("s3cret", "a@[", "", LATER), NOW)


@pytest.mark.parametrize("spell", [
    lambda t: t + "=",                       # padding
    lambda t: t + "==",
    lambda t: t + "=" * (-len(t) % 4) if len(t) % 4 else t + "====",
    lambda t: t[:5] + "\n" + t[5:],          # characters outside the alphabet are skipped by b64decode
    lambda t: t[:5] + "!" + t[5:],
    lambda t: t[:5] + "." + t[5:],
    lambda t: t.replace("-", "+").replace("_", "/") if ("-" in t or "_" in t) else t + "=",
    lambda t: " " + t,
    lambda t: t + " ",
])
def test_only_the_canonical_spelling_is_accepted(spell):
    """Issue 13, item 10: every other spelling that decodes to the same bytes is refused."""
    token = make_token("s3cret", "alice@example.com", "news", LATER)
    assert read_token("s3cret", token, NOW)
    other = spell(token)
    assert other != token
    with pytest.raises(InvalidToken):
        read_token("s3cret", other, NOW)


def test_non_canonical_last_character_is_refused():
    """The spare low bits of the last base64 character must be zero: `...Q` and `...R` would
    decode to the same bytes."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for to in ("alice@example.com", "al@example.com", "alic@example.com"):
        token = make_token("s3cret", to, "news", LATER)
        spare = {2: 15, 3: 3}.get(len(token) % 4, 0)      # 4 or 2 spare bits
        if not spare:
            continue
        last = alphabet.index(token[-1])
        assert last & spare == 0
        for bits in range(1, spare + 1):
            other = token[:-1] + alphabet[last | bits]
            assert _bytes(other) == _bytes(token)
            with pytest.raises(InvalidToken):
                read_token("s3cret", other, NOW)


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
