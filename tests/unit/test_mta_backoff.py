"""The backoff decision from a reply: smtp-pattern-list first, then the classification engine."""
from __future__ import annotations

import pytest

from bounceproc.domain.mta.backoff import (
    BACKOFF_REASONS, BOUNCE, DEFER, DELIVER, BackoffExit, judge_reply, should_leave_backoff,
)
from bounceproc.domain.mta.reply_patterns import first_match, parse_reply_pattern


@pytest.mark.parametrize("code,status,text,reason", [
    (421, "4.7.0", "421 4.7.0 [TS01] Messages from 192.0.2.1 temporarily deferred - blocked", "badreputation"),   # Yahoo TS01: reputation (wordings.md)
    (550, "5.7.1", "550 5.7.1 Client host [192.0.2.1] blocked using zen.spamhaus.org", "blocked"),
    (421, "4.7.28", "421 4.7.28 rate limited, try again later", "speeding"),
    (421, "4.2.1", "421 4.2.1 too many connections", "toomanyconn"),
    (550, "5.7.1", "550 5.7.1 message rejected as spam", "spamdetected"),
])
def test_block_replies_put_the_queue_in_backoff_and_never_bounce_the_recipient(code, status, text, reason):
    v = judge_reply(code, status, "smtp;" + text, "rcpt")
    assert (v.reason, v.mode, v.outcome) == (reason, "backoff", DEFER)
    assert v.reason in BACKOFF_REASONS and v.category and v.rule


def test_a_bad_mailbox_bounces_and_leaves_the_mode_alone():
    v = judge_reply(550, "5.1.1", "smtp;550 5.1.1 <a@example.com>: user unknown", "rcpt")
    assert (v.outcome, v.mode, v.reason, v.category) == (BOUNCE, "", "userunknown", "bad-mailbox")


def test_a_mailbox_full_deferral_is_retried_without_backoff():
    v = judge_reply(452, "4.2.2", "smtp;452 4.2.2 mailbox full", "rcpt")
    assert (v.outcome, v.mode, v.reason) == (DEFER, "", "mailboxfull")


def test_delivery_is_delivery():
    assert judge_reply(250, "2.0.0", "smtp;250 ok").outcome == DELIVER


def test_queue_level_block_has_no_recipient_outcome_but_backs_off():
    v = judge_reply(421, "4.7.0", "smtp;421 4.7.0 too many connections from your IP", "connect", queue_level=True)
    assert (v.outcome, v.mode) == ("", "backoff")


def test_the_pattern_list_is_honoured_before_the_engine_first_match_wins():
    pats = [parse_reply_pattern("/spamhaus/ mode=normal"), parse_reply_pattern("/blocked/ mode=backoff")]
    v = judge_reply(550, "5.7.1", "smtp;550 5.7.1 blocked, listed at Spamhaus", "rcpt", patterns=pats)
    assert v.mode == "normal" and "spamhaus" in v.cause
    # the engine would have said backoff; the pattern said normal, and the default outcome stands
    assert v.outcome == BOUNCE and v.reason == "blocked"


@pytest.mark.parametrize("line,code,stage,outcome,mode,qa", [
    ("/try later/ mode=backoff", 451, "rcpt", DEFER, "backoff", ""),
    ("/over quota/ bounce-rcpt", 452, "rcpt", BOUNCE, "", ""),
    ("/over quota/ bounce-rcpt", 452, "data", DEFER, "", ""),     # bounce-rcpt: 4xx to RCPT only
    ("/no route/ skip-mx", 451, "rcpt", DEFER, "", "skip-mx"),
    ("/gone away/ bounce-queue", 451, "rcpt", BOUNCE, "", "bounce-queue"),
    ("/hold on/ defer-queue mode=backoff", 554, "rcpt", DEFER, "backoff", "defer-queue"),
])
def test_each_pattern_action(line, code, stage, outcome, mode, qa):
    text = {"/try later/ mode=backoff": "try later", "/over quota/ bounce-rcpt": "user over quota",
            "/no route/ skip-mx": "no route here", "/gone away/ bounce-queue": "domain gone away",
            "/hold on/ defer-queue mode=backoff": "hold on"}[line]
    v = judge_reply(code, f"{str(code)[0]}.0.0", f"smtp;{code} {text}", stage, patterns=[parse_reply_pattern(line)])
    assert (v.outcome, v.mode, v.queue_action) == (outcome, mode, qa)


def test_patterns_are_case_insensitive_unless_asked():
    assert first_match([parse_reply_pattern("/BLOCKED/ mode=backoff")], "550 blocked")
    assert not first_match([parse_reply_pattern("/(?-i)BLOCKED/ mode=backoff")], "550 blocked")
    assert first_match([parse_reply_pattern("/(?-i)BLOCKED/ mode=backoff")], "550 BLOCKED")


@pytest.mark.parametrize("bad,says", [
    ("blocked mode=backoff", "expected /REGEX/"),
    ("/blocked/", "at least one action"),
    ("/blocked/ mode=slow", "mode=backoff or mode=normal"),
    ("/blocked/ disable-everything", "unknown action"),
    ("/(unclosed/ mode=backoff", "bad regex"),
    ("/x/ skip-mx bounce-queue", "one queue action"),
])
def test_bad_pattern_lines_say_what_was_expected(bad, says):
    with pytest.raises(ValueError, match=says):
        parse_reply_pattern(bad)


def test_leaving_backoff():
    never = BackoffExit()
    assert not should_leave_backoff(0.0, 1e9, True, never)
    after_hour = BackoffExit(after=3600.0)
    assert not should_leave_backoff(100.0, 3699.0, False, after_hour)
    assert should_leave_backoff(100.0, 3700.0, False, after_hour)
    on_delivery = BackoffExit(after_delivery=True)
    assert should_leave_backoff(100.0, 101.0, True, on_delivery)
    assert not should_leave_backoff(100.0, 101.0, False, on_delivery)
