"""What the sending core adds to outgoing mail: VERP sender, list id, List-Unsubscribe, DKIM choice, skip records."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from hypothesis import given, strategies as st

from bounceproc.domain.mta.dkim_keys import (
    DomainKey, author_domain, choose_key, headers_to_sign, parse_domain_key,
)
from bounceproc.domain.mta.outgoing import (
    add_headers, message_headers, message_list_id, unsubscribe_fields, verp_sender,
)
from bounceproc.domain.mta.suppression_skip import SKIP_STATUS, is_skip_diag, skip_diag, suppressing
from bounceproc.domain.parse.stamp import encode_stamp
from bounceproc.domain.parse.verp import decode_verp, for_settings
from bounceproc.domain.unsubscribe_token import read_token

NOW = datetime(2026, 12, 3, 10, 0, tzinfo=timezone.utc)
MSG = (b"From: News <news@example.net>\r\nTo: alice@example.com\r\nSubject: hi\r\n"
       b"List-Id: Example News <news.example.net>\r\n\r\nbody\r\n")


def test_verp_sender_is_what_the_sink_decodes():
    s = verp_sender("bounces@bounce.example.net", "Alice.B+tag@Example.COM")
    assert s == "bounces+Alice.B+tag=Example.COM@bounce.example.net"
    assert decode_verp(s) == "Alice.B+tag@example.com"


def test_verp_with_the_settings_format_and_a_return_path():
    fmt = for_settings("+", "bounce-handler")
    s = verp_sender("news@example.net", "bob@example.org", fmt, return_path="bounce-handler@bounce.example.net")
    assert s == "bounce-handler+bob=example.org@bounce.example.net"
    assert decode_verp(s, fmt) == "bob@example.org"


def test_verp_never_rewrites_a_null_sender_or_sends_what_the_sink_cannot_read():
    assert verp_sender("", "bob@example.org") == ""
    # "-" in the sender's local part: the DEFAULT decoder would read "handler+bob" back
    assert verp_sender("bounce-handler@example.net", "bob@example.org") == "bounce-handler@example.net"


@given(local=st.from_regex(r"[a-z0-9][a-z0-9.+_-]{0,20}", fullmatch=True))
def test_verp_round_trips_or_leaves_the_sender(local):
    rcpt = f"{local}@example.org"
    s = verp_sender("bounces@bounce.example.net", rcpt)
    assert s == "bounces@bounce.example.net" or decode_verp(s) == rcpt


def test_list_id_from_list_id_header_else_our_stamp():
    assert message_list_id(message_headers(MSG)) == "news.example.net"
    stamped = f"X-Bounceproc-Ref: {encode_stamp('alice@example.com', 'weekly', 'j1')}\n\nbody".encode()
    assert message_list_id(message_headers(stamped)) == "weekly"
    assert message_list_id(message_headers(b"Subject: x\r\n\r\nbody")) == ""


def test_unsubscribe_pair_carries_the_same_token_as_unsubscribe_url():
    fields = unsubscribe_fields(message_headers(MSG), "Alice@Example.com", "news.example.net", "s3cret",
                                "https://bp.example.net/", NOW)
    d = dict(fields)
    assert d["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = d["List-Unsubscribe"].strip("<>")
    assert url.startswith("https://bp.example.net/u/")
    claims = read_token("s3cret", url.rsplit("/", 1)[1], NOW)
    assert (claims.recipient, claims.scope) == ("alice@example.com", "list:news.example.net")


def test_no_unsubscribe_pair_without_list_url_or_when_the_message_has_its_own():
    h = message_headers(MSG)
    assert unsubscribe_fields(h, "a@example.com", "", "k", "https://x.example", NOW) == []
    assert unsubscribe_fields(h, "a@example.com", "l", "k", "", NOW) == []
    own = message_headers(b"List-Unsubscribe: <mailto:u@example.net>\r\n\r\nx")
    assert unsubscribe_fields(own, "a@example.com", "l", "k", "https://x.example", NOW) == []


def test_add_headers_keeps_the_line_ending():
    out = add_headers(MSG, [("List-Unsubscribe", "<https://x/u/t>")])
    assert out.startswith(b"List-Unsubscribe: <https://x/u/t>\r\nFrom:") and out.endswith(MSG)
    assert add_headers(b"A: b\n\nx", [("C", "d")]) == b"C: d\nA: b\n\nx"


def test_domain_key_choice_most_specific_list_first_then_first_match():
    star = DomainKey("s1", "*", "/k/star")
    exact = DomainKey("s2", "example.net", "/k/net")
    assert choose_key([[], [star, exact]], "example.net") == (star, "example.net")
    assert choose_key([[exact], [star]], "example.net") == (exact, "example.net")
    assert choose_key([[exact]], "example.org") is None
    assert choose_key([[star]], "") is None


def test_domain_key_directive():
    k = parse_domain_key("s2026,Example.NET,/etc/bounceproc/s.key")
    assert (k.selector, k.domain, k.keyfile) == ("s2026", "example.net", "/etc/bounceproc/s.key")
    for bad in ("s1,example.net", "s 1,example.net,/k", "s1,no-dot,/k", ",example.net,/k"):
        with pytest.raises(ValueError, match="expected"):
            parse_domain_key(bad)


def test_author_domain_and_signed_headers():
    h = message_headers(MSG)
    assert author_domain(h) == "example.net"
    assert author_domain({"sender": ["x@Sub.Example.org"]}) == "sub.example.org"
    names = headers_to_sign(["From", "To", "Subject", "List-Unsubscribe", "List-Unsubscribe-Post", "X-Other"])
    assert names == ["from", "to", "subject", "list-unsubscribe", "list-unsubscribe-post", "from"]


def test_suppression_skip_scope_and_record():
    assert suppressing({"list:news": "unsubscribe", "global": "hard_bounce"}, "news") == ("global", "hard_bounce")
    assert suppressing({"list:news": "unsubscribe"}, "news") == ("list:news", "unsubscribe")
    assert suppressing({"list:news": "unsubscribe"}, "other") is None
    assert suppressing({"list:news": "unsubscribe"}, "") is None
    d = skip_diag("list:news", "unsubscribe")
    assert d == "x-bounceproc;suppressed (list:news: unsubscribe)" and is_skip_diag(d)
    assert not is_skip_diag("smtp;550 5.7.1 suppressed by policy") and SKIP_STATUS == "5.7.1"


def test_a_skip_record_reads_back_as_a_skipped_event_the_policy_ignores():
    from bounceproc.domain.parse.acct import parse_acct_batch
    from bounceproc.domain.policy import EMPTY, NOTHING, PolicyParams, decide
    header = ("type,timeLogged,timeQueued,orig,rcpt,orcpt,dsnAction,dsnStatus,dsnDiag,dsnMta,bounceCat,"
              "srcType,srcMta,dlvType,dlvSourceIp,dlvDestinationIp,dlvEsmtpAvailable,dlvSize,vmta,jobId,envId,"
              "queue,vmtaPool")
    row = ("b,2026-12-03 10:00:00+0000,2026-12-03 09:59:00+0000,news@example.net,alice@example.com,,failed,"
           f"\"5.7.1 (delivery not authorized, message refused)\",\"{skip_diag('global', 'hard_bounce')}\",,"
           "policy-related,smtp,,smtp,,,,,vmta1,,,example.com/vmta1,")
    events, bad = parse_acct_batch(header, (header + "\r\n" + row + "\r\n").encode())
    assert bad == [] and [e.type for e in events] == ["skipped"]
    assert events[0].recipient == "alice@example.com" and events[0].reason == ""
    assert decide(EMPTY, events[0], PolicyParams()) == (EMPTY, NOTHING)
