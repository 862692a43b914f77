"""The SMTP sink is the final hop: a message read from it carries the envelope's MAIL FROM as its
Return-Path (RFC 5321 4.4), so a person's reply is not taken for an automatic message."""
from __future__ import annotations

from bounceproc.app.message_intake import as_delivered
from bounceproc.domain.parse.message import parse_message

HUMAN = (b"From: Ann <ann@example.net>\r\nTo: bounces@example.org\r\nSubject: Returned mail from your list\r\n\r\n"
         b"Hi, your newsletter could not be delivered to my old address, please use this one.\r\n")


def test_the_envelope_sender_becomes_the_return_path_only_where_the_message_has_none():
    assert as_delivered(HUMAN, "sink:192.0.2.1", {"mail_from": "ann@example.net"}).startswith(
        b"Return-Path: <ann@example.net>\r\nFrom: Ann")
    assert as_delivered(HUMAN, "sink:192.0.2.1", {"mail_from": ""}).startswith(b"Return-Path: <>\r\n")
    kept = b"Return-Path: <x@example.net>\nFrom: a@example.net\n\nbody\n"
    assert as_delivered(kept, "sink:192.0.2.1", {"mail_from": "y@example.net"}) == kept
    in_body = b"From: a@example.net\n\nReturn-Path: <q@example.net>\n"       # a field in the body is not one
    assert as_delivered(in_body, "sink:192.0.2.1", {"mail_from": "b@example.net"}).startswith(b"Return-Path: <b@")
    assert as_delivered(HUMAN, "mailbox:imap", {"mail_from": ""}) == HUMAN   # a mailbox's message has its own
    assert as_delivered(b"", "sink:192.0.2.1", {"mail_from": ""}) == b""   # still empty: unreadable


def test_a_persons_reply_received_by_the_sink_is_not_a_bounce():
    assert parse_message(as_delivered(HUMAN, "sink:192.0.2.1", {"mail_from": "ann@example.net"})).kind == "not-bounce"
    # with a null envelope sender the same words are an automatic notice's
    assert parse_message(as_delivered(HUMAN, "sink:192.0.2.1", {"mail_from": ""})).kind == "dsn"
