"""Address normalisation: the key every suppression and event uses, and the proof that every
entry point (acct parser and its `d` row fast path, report parser, the API) gives the same key
and accepts the same addresses (one validity rule, issue 13 item 7)."""
from __future__ import annotations

import csv
import io
from unittest import mock

import pytest
from hypothesis import given, settings, strategies as st

from bounceproc.domain.address import AddressError, normalise_address
from bounceproc.domain.parse import acct
from bounceproc.domain.parse.acct import acct_address_key, parse_acct_batch
from bounceproc.domain.parse.report_events import normalise_recipient
from bounceproc.entrypoints.http.common import parse_address
from bounceproc.entrypoints.http.problems import Problem


def api_key_of(raw: str) -> str | None:
    """The key the API uses for an address in a URL or body, None when it answers 422."""
    try:
        return parse_address(raw)
    except Problem as exc:
        assert exc.status == 422
        return None


@pytest.mark.parametrize("raw,expected", [
    ("  Alice@Example.COM ", "alice@example.com"),
    ("<bob@example.net>", "bob@example.net"),
    ("rfc822; carol@EXAMPLE.org", "carol@example.org"),
    ("<mailto:Carol@example.org>", "carol@example.org"),
    ("dan@bücher.example", "dan@xn--bcher-kva.example"),
    ("dan@bücher.example\u3002", "dan@xn--bcher-kva.example"),
    ("eve@example.com.", "eve@example.com"),
    ("\u212aim@example.com", "kim@example.com"),
    ("a@[192.0.2.1]", "a@[192.0.2.1]"),
    ("A@[IPv6:2001:DB8:0:0::1]", "a@[ipv6:2001:db8::1]"),
    ("a@[x-tag:Anything]", "a@[x-tag:anything]"),
])
def test_normalises(raw, expected):
    assert normalise_address(raw) == expected


@pytest.mark.parametrize("raw", ["", "no-at-sign", "@example.com", "a@", "a b@example.com",
                                 "x" * 65 + "@example.com", "a@localhost", "a\n@example.com",
                                 "a\x85b@example.com", "a\ufffd@example.com", "a<b@example.com",
                                 "a@" + "d" * 250 + ".com", "rfc822;mailto:smtp;<rfc822;a@example.com>",
                                 "a@[", "a@[]", "a@[192.0.2.999]", "a@[ipv6:zz::1]", "a@[1.2.3.4]x",
                                 "a@x.[1.2.3.4]", "a@exa[mple.com", "a@exa]mple.com", "a@[[1.2.3.4]]",
                                 "a@[:x]"])
def test_rejects(raw):
    with pytest.raises(AddressError):
        normalise_address(raw)


# -- every entry point agrees ---------------------------------------------------------------------

HEADER = "type,timeLogged,rcpt"
WHEN = "2024-03-01 10:00:02+0000"


def acct_d_row(raw: str) -> tuple[list, list]:
    """A one-recipient `d` record through parse_acct_batch. The row before it has the same
    timestamp, so the timestamp is cached and the record can take the inline fast path."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([["d", WHEN, "warm@example.com"], ["d", WHEN, raw]])
    evs, bad = parse_acct_batch(HEADER, out.getvalue().encode("utf-8"))
    assert evs[:1] and evs[0].recipient == "warm@example.com"
    return evs[1:], bad


def assert_entry_points_agree(raw: str) -> None:
    try:
        want = normalise_address(raw)
    except AddressError:
        want = None
    assert normalise_recipient(raw) == (want or "")
    assert api_key_of(raw) == want          # the API reads and lifts exactly what the parsers store
    evs, bad = acct_d_row(raw)
    if want is None:
        assert evs == [] and len(bad) == 1
        if raw.strip().strip("<>").strip():     # blank is "no rcpt", not an error
            with pytest.raises(ValueError):
                acct_address_key(raw)
        else:
            assert acct_address_key(raw) == ""
    else:
        assert [e.recipient for e in evs] == [want] and bad == []
        assert acct_address_key(raw) == want
        assert normalise_address(want) == want          # a key normalises to itself


AWKWARD = [
    "alice@example.com", "Alice@EXAMPLE.COM", " alice@example.com", "alice@example.com ",
    "a b@example.com", "a\tb@example.com", "a@exam ple.com", "a\x00@example.com", "a\x7f@example.com",
    "a\x1f@example.com", "a\x85@example.com", "a\u00a0@example.com", "a\u2028@example.com",
    "<alice@example.com>", "< alice@example.com >", "<alice@example.com", "alice@example.com>",
    "a<b@example.com", "a>b@example.com", "<<alice@example.com>>", "<>", "", " ", "< >",
    "rfc822;alice@example.com", "RFC822; Alice@example.com", "mailto:alice@example.com",
    "smtp;alice@example.com", "<mailto:alice@example.com>", "rfc822;<alice@example.com>",
    "smtp:alice@example.com", "rfc822;", "mailto:rfc822;smtp;mailto:a@example.com",
    "alice@example.com.", "alice@example.com..", "alice@.", "alice@.example", "alice@example",
    "user@localhost", "user@[192.0.2.1]", "user@[IPv6:2001:db8::1]", "a@b@example.com",
    "@example.com", "alice@", "@", "noat", "\"a b\"@example.com", "a.b+tag@sub.example.co.uk",
    "jörg@bücher.example", "JÖRG@BÜCHER.EXAMPLE", "a@bücher.example.", "a@bücher\u3002example\u3002",
    "a@xn--bcher-kva.example", "a@XN--BCHER-KVA.EXAMPLE", "\u212a@example.com", "\u0130@example.com",
    "a@\u212a.example", "a@b\u00fccher..example", "a@" + "\u00fc" * 64 + ".example",
    "a\ufffd@example.com", "a@exa\ufffdmple.com",
    "x" * 64 + "@example.com", "x" * 65 + "@example.com", "\u0130" * 33 + "@example.com",
    "a@" + "d" * 249 + ".com", "a@" + "d" * 250 + ".com", "a@" + ("d" * 63 + ".") * 4 + "com",
    "x" * 64 + "@" + ("d" * 60 + ".") * 4 + "com", "x" * 400 + "@example.com",
    "a@example.com\r", "a\r\n@example.com", "a,b@example.com", 'a"b@example.com',
    # issue 13, item 7: the forms the API used to refuse although the parsers stored them
    "a..b@example.com", "a@b..com", "a@[192.0.2.1]", "a@-bad-.com", "a(comment)@example.com",
    "a;b@example.com", "user@exa_mple.com", "a@[", "a@[192.0.2.999]", "a@exa]mple.com", "A@[192.0.2.1]",
    "a@[IPv6:2001:db8::1]",
]


@pytest.mark.parametrize("raw", AWKWARD)
def test_entry_points_agree_on_awkward_addresses(raw):
    assert_entry_points_agree(raw)


_CHARS = st.sampled_from(list("aZz09.-_+@<>;: \t\"") + [
    "\x00", "\x1f", "\x7f", "\x85", "\u00a0", "\u2028", "\ufffd", "\u212a", "\u0130", "\u00fc",
    "\u00dc", "\u3002", "\uff0e", "\u00df", "\u4e2d"])
_LOCAL = st.one_of(st.text(_CHARS, max_size=12), st.sampled_from(["x" * 64, "X" * 65, "\u0130" * 33]),
                   st.from_regex(r"[A-Za-z0-9.+_-]{1,70}", fullmatch=True))
_DOMAIN = st.one_of(
    st.sampled_from(["example.com", "EXAMPLE.COM", "example.com.", "bücher.example", "Bücher.Example\u3002",
                     "localhost", "[192.0.2.1]", "xn--bcher-kva.example", "d" * 250 + ".com",
                     ("d" * 63 + ".") * 3 + "d" * 61, "\u00fc" * 60 + ".example", ""]),
    st.lists(st.text(_CHARS, min_size=0, max_size=8), min_size=1, max_size=4).map(".".join),
    st.from_regex(r"[A-Za-z0-9-]{1,70}(\.[A-Za-z0-9-]{1,70}){0,4}\.?", fullmatch=True))
_AROUND = st.sampled_from(["", " ", "<", ">", "\t", "rfc822;", "RFC822; ", "mailto:", "smtp;", "<mailto:", "."])


@st.composite
def addresses(draw):
    if draw(st.integers(0, 9)) == 0:      # anything at all, surrogates excluded (input is UTF-8)
        return draw(st.text(st.characters(blacklist_categories=("Cs",)), max_size=40))
    return (draw(_AROUND) + draw(_LOCAL) + draw(st.sampled_from(["@", "@", "", "@@"]))
            + draw(_DOMAIN) + draw(_AROUND))


@settings(max_examples=400, deadline=None)
@given(addresses())
def test_entry_points_agree_on_generated_addresses(raw):
    assert_entry_points_agree(raw)


@pytest.mark.parametrize("raw", ["alice@example.com", "Bob.Smith+tag@Mail.Example.co.uk",
                                 "x" * 64 + "@" + "d" * 249 + ".com"])
def test_plain_ascii_recipient_takes_the_fast_path(raw):
    # The timestamp cache is per process: read one row with this timestamp first, unpatched, or the
    # warm-up row itself takes the slow path when this test runs before any other with WHEN.
    acct_d_row("warm-up@example.com")
    with mock.patch.object(acct, "acct_address_key", side_effect=AssertionError("fell back")):
        evs, bad = acct_d_row(raw)
    assert [e.recipient for e in evs] == [raw.lower()] and bad == []
