"""policy.decide(): hard bounces suppress, soft bounces count by day, blocks never suppress."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from bounceproc.domain import policy
from bounceproc.domain.events import Event, event_key

T0 = datetime(2026, 1, 1, 12, tzinfo=timezone.utc)
P = policy.PolicyParams(soft_bounce_threshold=3, soft_bounce_window_days=15, soft_suppression_days=30)


def ev(type_="bounced", reason="userunknown", hard=True, at=T0, **kw) -> Event:
    return Event(event_key=event_key(type_, reason, at, kw), type=type_, recipient="a@example.com",
                 occurred_at=at, source="acct", reason=reason, hard=hard, **kw)


def test_hard_bounce_suppresses_globally():
    _, d = policy.decide(policy.EMPTY, ev(), P)
    assert (d.action, d.suppression_reason, d.scope) == ("suppress", "hard_bounce", "global")
    assert "recipient.hard_bounced" in d.webhooks


def test_soft_notaccept_is_only_counted():
    _, d = policy.decide(policy.EMPTY, ev(reason="notaccept", hard=False), P)
    assert d.action == "soft_count"


def test_block_never_suppresses_the_recipient():
    for reason in ("blocked", "spamdetected", "policyviolation", "authfailure", "speeding", "badreputation"):
        state, d = policy.decide(policy.EMPTY, ev(reason=reason, hard=False), P)
        assert d.action == "block_count" and state == policy.EMPTY


def test_soft_bounces_suppress_after_threshold_distinct_days():
    state = policy.EMPTY
    for day in (0, 0, 0, 5):  # three on one day count once
        state, d = policy.decide(state, ev(reason="mailboxfull", hard=False, at=T0 + timedelta(days=day)), P)
        assert d.action == "soft_count"
    state, d = policy.decide(state, ev(reason="mailboxfull", hard=False, at=T0 + timedelta(days=9)), P)
    assert (d.action, d.suppression_reason) == ("suppress", "soft_bounce_threshold")
    assert d.expires_at == T0 + timedelta(days=39)


def test_soft_bounces_outside_the_window_are_forgotten():
    state = policy.EMPTY
    for day in (0, 20, 40):
        state, d = policy.decide(state, ev(reason="mailboxfull", hard=False, at=T0 + timedelta(days=day)), P)
        assert d.action == "soft_count"
    assert state.count == 1


def test_delivery_resets_the_soft_count():
    state, _ = policy.decide(policy.EMPTY, ev(reason="mailboxfull", hard=False), P)
    state, d = policy.decide(state, ev(type_="delivered", reason="", hard=False), P)
    assert d.action == "reset" and state == policy.EMPTY


def test_deferral_is_not_a_bounce():
    state, d = policy.decide(policy.EMPTY, ev(type_="deferred", reason="mailboxfull", hard=False), P)
    assert d.action == "none" and state == policy.EMPTY


def test_complaint_suppresses_but_not_spam_does_not():
    _, d = policy.decide(policy.EMPTY, ev(type_="complained", reason="feedback", hard=False, feedback_type="abuse"), P)
    assert (d.action, d.suppression_reason, d.origin) == ("suppress", "complaint", "recipient")
    _, d = policy.decide(policy.EMPTY, ev(type_="complained", reason="feedback", hard=False, feedback_type="not-spam"), P)
    assert d.action == "none"


def test_unsubscribe_is_scoped_to_its_list():
    _, d = policy.decide(policy.EMPTY, ev(type_="unsubscribed", reason="", hard=False, list_id="news"), P)
    assert (d.scope, d.suppression_reason) == ("list:news", "unsubscribe")


def test_unattributed_complaint_suppresses_nobody():
    e = Event(event_key="k", type="complained", recipient="", occurred_at=T0, source="acct", feedback_type="abuse")
    assert policy.decide(policy.EMPTY, e, P)[1].action == "none"


def test_auth_failure_and_virus_reports_are_not_complaints():
    for ft in ("auth-failure", "virus"):
        _, d = policy.decide(policy.EMPTY, ev(type_="complained", reason="feedback", hard=False, feedback_type=ft), P)
        assert d.action == "none"


def test_noop_types_decide_nothing_without_state():
    for t in policy.NOOP_WITHOUT_STATE:
        e = Event(event_key=event_key(t), type=t, recipient="a@example.com", occurred_at=T0, source="acct")
        assert policy.decide(policy.EMPTY, e, P) == (policy.EMPTY, policy.NOTHING)
