"""policy.decide(): hard bounces suppress, soft bounces count by day, blocks never suppress."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


# -- properties over any history of one recipient (hypothesis) ---------------------------------

_TABLE = policy._table()["reasons"]
_BLOCKS = sorted(r for r, a in _TABLE.items() if a == "block")
_SOFTS = sorted(r for r, a in _TABLE.items() if a == "soft")
_HARDS = sorted(r for r, a in _TABLE.items() if a == "suppress")


@st.composite
def _history(draw):
    """Time-ordered events of one recipient: deliveries, deferrals, bounces of every reason (hard
    flag either way), complaints of any feedback type, over up to 60 days."""
    out, at = [], T0
    for i in range(draw(st.integers(1, 40))):
        at += timedelta(hours=draw(st.integers(0, 72)))
        kind = draw(st.sampled_from(["delivered", "deferred", "bounced", "bounced", "complained"]))
        reason = draw(st.sampled_from(_BLOCKS + _SOFTS + _HARDS))
        out.append(Event(event_key("p", i), kind, "rcpt@example.com", at, "acct", reason=reason,
                         hard=draw(st.booleans()), feedback_type=draw(st.sampled_from(["abuse", "not-spam", "virus", ""]))))
    return out


@settings(max_examples=300, deadline=None)
@given(_history(), st.integers(1, 5), st.integers(1, 20))
def test_any_history_suppresses_exactly_when_the_address_is_at_fault(events, threshold, window):
    """Blocks never suppress; a hard reason suppresses exactly when the classifier said hard; a
    soft bounce suppresses exactly when it makes `threshold` distinct days within `window` days
    since the last delivery or soft suppression; a complaint exactly when its feedback type is
    one. Checked against a reference model kept here, independent of the policy's code."""
    params = policy.PolicyParams(threshold, window, 30)
    state, days = policy.EMPTY, set()
    for e in events:
        state, d = policy.decide(state, e, params)
        suppressed = d.action == "suppress"
        if e.type == "delivered":
            days = set()
            assert not suppressed
        elif e.type == "complained":
            assert suppressed == policy.is_complaint(e.feedback_type)
        elif e.type == "deferred" or e.reason in _BLOCKS:
            assert not suppressed, (e.type, e.reason, d)
        elif e.reason in _HARDS and e.hard:
            assert suppressed and d.suppression_reason == "hard_bounce"
        else:                                             # a soft bounce
            day = e.occurred_at.date()
            days = {x for x in days | {day} if x > day - timedelta(days=window)}
            assert suppressed == (len(days) >= threshold), (sorted(days), threshold, d)
            if suppressed:
                assert d.suppression_reason == "soft_bounce_threshold"
                days = set()


# -- issue 12: only mailbox reasons count; the safety net against hard verdicts on blocks ---------

def test_only_suspend_mailboxfull_exceedlimit_count_toward_the_threshold():
    assert set(_SOFTS) == {"suspend", "mailboxfull", "exceedlimit"}
    for reason in ("expired", "networkerror", "systemerror", "mailererror", "onhold", "undefined", "systemfull"):
        state = policy.EMPTY
        for day in range(10):
            state, d = policy.decide(state, ev(reason=reason, hard=False, at=T0 + timedelta(days=day)), P)
            assert d.action == "block_count", (reason, d)
        assert state == policy.EMPTY


def test_a_reason_missing_from_the_table_never_suppresses():
    assert policy.action_for("some-new-reason", False) == policy.BLOCK


HARD_TEXTS = ["550 5.1.1 user unknown", "553 5.1.2 host not found", "521 5.7.1 mail not accepted",
              "556 5.1.10 domain does not accept mail", "551 user has moved", "550 no such recipient"]
SENDER_SIDE = ["blocked using zen.spamhaus.org", "listed at bl.spamcop.net", "poor IP reputation",
               "rate limit exceeded", "message looks like SPAM", "rejected by policy", "DMARC policy reject",
               "SPF check failed", "DKIM signature invalid", "your IP is BLOCKED", "Barracuda Reputation",
               "on our blocklist", "in a black list at", "too many messages, rate too high", "unsolicited mail",
               "Client host rejected: Access denied", "cannot find your reverse hostname", "no PTR record",
               "Helo command rejected: Host not found", "Helo command [mx] rejected", "IP 192.0.2.1 is listed",
               "your IP address [192.0.2.1] is currently listed", "unexpected volume or user complaints",
               "message classified as bulk", "high volume of mail", "IP is rejected",
               "your IP address has been banned", "too many invalid recipients from your IP",
               "excessive bounces", "high bounce rate", "your connection has been refused",
               "your server is not welcome", "content rejected", "(content filtering)", "Junk mail rejected",
               "suspected phishing", "IP not whitelisted", "rejected by firewall", "denied by anti-abuse system",
               "spoofed sender", "untrusted sender", "looks like backscatter", "we do not accept your mail",
               "mail from you is not accepted", "Go away", "your domain has been flagged",
               "too many failed recipients", "Absender blockiert", "mauvaise réputation", "нарушение политики",
               "垃圾邮件", "invalid login", "authentication failed", "Authentifizierung erforderlich", "Contenu refusé",
               "remitente bloqueado", "mittente bloccato", "IP заблокирован", "IP已被封禁", "送信元がブロックされました",
               "발신 서버 차단", "mala reputación", "Verstoß gegen die Richtlinie", "требуется аутентификация",
               "認証が必要です", "contenido rechazado", "迷惑メールと判定", "política de seguridad", "IP 192.0.2.1 rejected",
               "IP auf der schwarzen Liste", "op een zwarte lijst", "na czarnej liście", "IP adresiniz kara listede",
               "adresa IP je na černé listině", "IP є в чорному списку",
               "verdächtiger Inhalt", "contenido sospechoso", "подозрительное содержимое",
               "SPF認証に失敗しました", "发信频率超限", "发信过于频繁", "邮件内容违规", "발신자 인증 실패",
               "Authentifizierung fehlgeschlagen", "Limite d'envoi dépassée", "Contenuto vietato", "Превышен лимит отправки",
               "please use your provider's outgoing server"]
FILLER = st.text(alphabet="abcdefghijklmnopqrstuvwxyz .,:;()[]<>0123456789-", max_size=60)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(HARD_TEXTS), st.sampled_from(SENDER_SIDE), FILLER, FILLER,
       st.sampled_from(sorted(_HARDS)), st.booleans())
def test_safety_net_never_suppresses_a_hard_verdict_with_sender_side_evidence(hard_text, evidence, a, b,
                                                                              reason, evidence_first):
    text = f"{a} {evidence} {b} {hard_text}" if evidence_first else f"{hard_text} {a} {evidence} {b}"
    state, d = policy.decide(policy.EMPTY, ev(reason=reason, hard=True, diagnostic=text), P)
    assert d.action == "block_count" and d.why.startswith("safety net"), (text, d)
    assert state == policy.EMPTY


@pytest.mark.parametrize("evidence", SENDER_SIDE)
def test_the_precedence_and_the_safety_net_see_the_same_evidence(evidence):
    # The classifier's step 1 (precedence.SENDER_SIDE) and the policy's net (actions.toml
    # [safety_net]) are two lists on purpose (the net holds when a rule or the precedence is
    # wrong); this keeps them in step.
    from bounceproc.domain.precedence import sender_side_evidence
    assert sender_side_evidence(evidence.lower())[0], evidence
    assert policy.safety_net("userunknown", True, evidence), evidence


@settings(max_examples=200, deadline=None)
@given(FILLER, FILLER, st.sampled_from(["Host not found, try again", "SERVFAIL", "temporary failure in name resolution",
                                        "lookup timed out", "Try again later", "bitte später erneut versuchen",
                                        "réessayez plus tard", "попробуйте позже", "请稍后再试",
                                        "réessayez ultérieurement", "daha sonra tekrar deneyin", "zkuste později",
                                        "försök igen senare", "prøv igjen senere", "yritä myöhemmin",
                                        "próbálja később", "încercați mai târziu", "δοκιμάστε αργότερα",
                                        "спробуйте пізніше", "thử lại sau", "다시 시도하십시오", "geçici hata",
                                        "dočasná chyba", "tillfälligt fel", "midlertidig feil", "ideiglenes hiba",
                                        "προσωρινό σφάλμα", "тимчасова помилка", "временная ошибка",
                                        "DNS: no response", "status REFUSED", "Resolver error",
                                        "DNS lookup in progress", "cannot be resolved at this time"]))
def test_safety_net_never_suppresses_a_hostunknown_that_says_try_again(a, b, dns):
    text = f"{a} Host or domain name not found. {dns} {b}"
    _, d = policy.decide(policy.EMPTY, ev(reason="hostunknown", hard=True, diagnostic=text), P)
    assert d.action == "block_count" and "safety net" in d.why, (text, d)


@pytest.mark.parametrize("text", ["The domain example.com is not reachable. Please check the domain and try again.",
                                  "Host or domain name not found. Check the address, then try again."])
def test_a_final_notice_advising_to_check_and_try_again_is_not_a_temporary_dns_failure(text):
    # "check the address and try again" is how final notices end (advice to the sender, as the
    # classifier's step 2 reads it), not a lookup that may succeed later
    assert policy.safety_net("hostunknown", True, text) == ""
    assert policy.safety_net("hostunknown", True, text.replace("try again", "try again later"))


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(HARD_TEXTS), st.text(alphabet="acdeghmnoqsuvwxyz ,.", max_size=40))
def test_a_hard_verdict_without_sender_side_evidence_still_suppresses(hard_text, filler):
    if policy.safety_net("userunknown", True, f"{hard_text} {filler}"):
        return      # the random filler spelled an evidence word ("spam", "rate", ...)
    _, d = policy.decide(policy.EMPTY, ev(reason="userunknown", hard=True, diagnostic=f"{hard_text} {filler}"), P)
    assert d.action == "suppress" and d.suppression_reason == "hard_bounce"


def test_links_are_not_evidence():
    text = "550 5.1.1 user unknown, see https://postmaster.example.com/policy/spam-faq.html"
    assert policy.safety_net("userunknown", True, text) == ""


@pytest.mark.parametrize("text", [
    "host mx1.spamexperts.net[192.0.2.1] said: 550 5.1.1 <u@example.com>: Recipient address rejected: User unknown",
    "SMTP error from remote mail server after RCPT TO:<u@example.com>: host mx.antispamcloud.com [192.0.2.1]: "
    "550 No such user here",
    "host mx.policy-filter.example[192.0.2.1] said: 550 5.1.1 User unknown (in reply to RCPT TO command)",
    "550 5.1.1 <spam@example.com>: Recipient address rejected: User unknown in virtual mailbox table",
    "550 5.1.1 <blocked.user@example.com>... User unknown",
])
def test_names_are_not_evidence(text):
    # A dead address behind a filtering MX, or whose own name holds an evidence word, still suppresses.
    assert policy.safety_net("userunknown", True, text) == ""


@pytest.mark.parametrize("text", [
    "550 5.1.1 User unknown; listed at zen.spamhaus.org",
    "550 5.1.1 user unknown, client 192.0.2.1 found in bl.spamcop.net",
    "550 5.1.1 User unknown - IP 192.0.2.1 is listed",
])
def test_a_blocklist_zone_stays_evidence(text):
    assert policy.safety_net("userunknown", True, text)


def test_safety_net_patterns_are_written_in_lower_case():
    # The text is lowercased and searched case-sensitively (alternation.py): an upper-case letter
    # outside an escape (\S, \W, \B, \D) would never match.
    import re
    net = policy._table()["safety_net"]
    for p in net["sender_side"] + net["temporary_dns"]:
        assert not re.search(r"(?<!\\)[A-Z]", p), p


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(SENDER_SIDE + HARD_TEXTS + ["not listed in", "xrbl", "Rate", "SPF", "Policies",
                                                           "HELO command rejected", "xspam", "PTR."]), max_size=6),
       FILLER)
def test_safety_net_finds_what_a_case_insensitive_search_of_its_patterns_finds(words, filler):
    import re
    net = policy._table()["safety_net"]
    reference = re.compile("|".join(f"(?:{p})" for p in net["sender_side"]), re.I)
    text = " ".join(words) + " " + filler
    # ... in the text less its addresses and host names (blocklist zones kept), which are not evidence
    expected = bool(reference.search(text) and reference.search(policy._without_names(text.lower())))
    assert bool(policy.safety_net("userunknown", True, text)) == expected, text
