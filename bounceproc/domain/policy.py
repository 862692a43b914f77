"""Decide what an event means for its recipient: suppress, count a soft bounce, count a block, or nothing.

Domain layer: pure, stdlib only.
In: the recipient's soft-bounce state, one classified Event, the policy parameters.
Out: (the new state, a Decision). No I/O: service.record_events loads states and applies decisions.

The table of what each bounce reason does is data (rules/actions.toml):
- hard bounce of the address (userunknown, hostunknown, hasmoved, permanent notaccept) -> suppress;
- complaint (ARF abuse/fraud/...) -> suppress globally;
- unsubscribe -> suppress in the scope asked for (a list, or global);
- soft bounce (only suspend, mailboxfull, exceedlimit) -> count one per day; suppress once there are
  `threshold` distinct days within `window_days` (a burst on one day is not a dead mailbox);
- everything that says nothing about the address (reputation, spam filtering, policy, auth, rate,
  and expired / network / system / mailer errors, onhold, undefined) -> never suppress; count per
  receiving domain and virtual MTA / source IP;
- safety net, independent of the rules: a hard verdict whose text carries sender-side evidence
  (blocklists, reputation, rate, spam, policy, SPF/DKIM/DMARC, "blocked"), or a hostunknown saying
  "try again", is counted as a block instead of suppressing (`safety_net`, flagged in `why`);
- a later delivery resets the soft-bounce count.
Deferrals (one failed attempt of a message still queued) change nothing about the recipient,
but a block-type deferral is counted like a block.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from importlib import resources

from bounceproc.domain.alternation import Prefiltered, prefiltered
from bounceproc.domain.events import Event

SUPPRESS, SOFT, BLOCK = "suppress", "soft", "block"


@dataclass(frozen=True)
class PolicyParams:
    soft_bounce_threshold: int = 3
    soft_bounce_window_days: int = 15
    soft_suppression_days: int = 30      # 0: a soft-threshold suppression never expires


@dataclass(frozen=True)
class SoftState:
    """Distinct days (ISO dates) with a soft bounce, inside the window."""
    days: tuple[str, ...] = ()

    @property
    def count(self) -> int:
        return len(self.days)


EMPTY = SoftState()


@dataclass(frozen=True)
class Decision:
    action: str                        # "suppress" | "soft_count" | "block_count" | "reset" | "none"
    suppression_reason: str = ""       # hard_bounce | soft_bounce_threshold | complaint | unsubscribe
    scope: str = "global"
    origin: str = "system"             # system | recipient
    expires_at: datetime | None = None
    webhooks: tuple[str, ...] = field(default=())
    why: str = ""


NOTHING = Decision("none")


@lru_cache(maxsize=1)
def _table() -> dict:
    with resources.files("bounceproc.domain.rules").joinpath("actions.toml").open("rb") as fh:
        return tomllib.load(fh)


def action_for(reason: str, hard: bool) -> str:
    act = _table()["reasons"].get(reason, BLOCK)
    if act == SUPPRESS and not hard:
        return SOFT
    return act


# A word holding a link (only word starts are tried: `\S*` at every position cost twice as much).
_URL = re.compile(r"(?<!\S)\S*?(?:https?://|www\.)\S*")
# Names in a text: addresses and host names (a label with a letter, then dots). Their words are not
# evidence: "host mx1.spamexperts.net[…] said: 550 5.1.1 User unknown" and "<policy@example.com>:
# User unknown" are a dead address behind a filter's MX / with a name, not a refusal of our mail.
# A blocklist's zone is evidence and is kept ("listed at zen.spamhaus.org"); IP literals carry no
# words and are kept (the "IP <address> listed" phrases need them).
# Tried at word starts only (the lookbehinds), so a long run of one kind of character is read once.
_NAME = re.compile(r"(?<![^\s<>()\[\]\"',;:])[^\s<>()\[\]\"',;:]*@[^\s<>()\[\]\"',;:]*"
                   r"|(?<![\w.-])[a-z0-9_-]+(?:\.[a-z0-9_-]+)+")
_LETTER = re.compile(r"[a-z]")


@lru_cache(maxsize=1)
def _zone() -> re.Pattern:
    """What marks a host name as a blocklist's zone (actions.toml [safety_net] blocklist_zones)."""
    return re.compile("|".join(_table()["safety_net"]["blocklist_zones"]))


def _name_out(m: re.Match) -> str:
    name = m.group(0)
    if "@" not in name and (not _LETTER.search(name) or _zone().search(name)):
        return name     # an IP literal or a status code, or a blocklist zone
    return " "


def _without_names(text: str) -> str:
    return _NAME.sub(_name_out, text)


@lru_cache(maxsize=1)
def _safety_patterns() -> tuple[Prefiltered, Prefiltered]:
    # Read on every hard verdict: compiled letter-first and searched only where one of the
    # literals a match needs occurs (alternation.py), the text lowercased instead of a
    # case-insensitive search (~45 -> ~9 -> ~4 us on a 150-character diagnostic with a link).
    net = _table()["safety_net"]
    return prefiltered(net["sender_side"]), prefiltered(net["temporary_dns"])


def safety_net(reason: str, hard: bool, diagnostic: str) -> str:
    """Why a hard verdict must not suppress ("" when it may): sender-side evidence in its text, or a
    hostunknown that says "try again". Independent of the classification rules (actions.toml)."""
    if not hard or not diagnostic:
        return ""
    sender, dns = _safety_patterns()
    text = diagnostic[:4000].lower()
    # Removing links and names cannot put an anchor into the text, only take one out: a text
    # without any is left as it is (most hard verdicts: "the email account … does not exist …").
    m = sender.search(text)
    if m:
        if "http" in text or "www." in text:
            text = _URL.sub(" ", text)
        text = _without_names(text)
        m = sender.search(text)
    if m:
        return f"safety net: hard {reason} downgraded, sender-side evidence {m.group(0)!r} in the text"
    if reason == "hostunknown":
        m = dns.search(text)
        if m:
            return f"safety net: hostunknown downgraded, temporary DNS evidence {m.group(0)!r} in the text"
    return ""


def is_complaint(feedback_type: str) -> bool:
    return feedback_type.lower() in _table()["complaints"]["feedback_types"]


def _scope_of(list_id: str) -> str:
    return f"list:{list_id}" if list_id else "global"


def _add_day(state: SoftState, day: date, params: PolicyParams) -> SoftState:
    oldest = day - timedelta(days=params.soft_bounce_window_days - 1)
    days = {d for d in state.days if d and date.fromisoformat(d) >= oldest}
    days.add(day.isoformat())
    return SoftState(tuple(sorted(days)))


# Event types that decide nothing for a recipient without soft-bounce state (callers may skip
# decide() for them; test_policy checks that it would return NOTHING).
NOOP_WITHOUT_STATE = frozenset({"delivered"})


def decide(state: SoftState, event: Event, params: PolicyParams) -> tuple[SoftState, Decision]:
    t = event.type
    if t in ("complained", "unsubscribed") and not event.recipient:
        return state, NOTHING       # unattributed report: counted, never a suppression of ""
    if t == "delivered":
        return (EMPTY, Decision("reset", why="delivered: soft-bounce count reset")) if state.days else (state, NOTHING)
    if t == "complained":
        if not is_complaint(event.feedback_type):
            return state, NOTHING
        return state, Decision(SUPPRESS, "complaint", "global", "recipient",
                               webhooks=("recipient.complained",),
                               why=f"complaint (feedback type {event.feedback_type or 'unspecified'})")
    if t == "unsubscribed":
        return state, Decision(SUPPRESS, "unsubscribe", _scope_of(event.list_id), "recipient",
                               webhooks=("recipient.unsubscribed",),
                               why=f"unsubscribe via {event.source}")
    if t not in ("bounced", "deferred") or not event.recipient:
        if t == "queue_deferred" and action_for(event.reason, event.hard) == BLOCK:
            return state, Decision("block_count", why=f"{event.reason}: queue-level block")
        return state, NOTHING
    act = action_for(event.reason, event.hard)
    net = safety_net(event.reason, event.hard, event.diagnostic) if act == SUPPRESS else ""
    if net:
        return state, Decision("block_count", why=f"{net}; counted as a block, not suppressed")
    if act == BLOCK:
        return state, Decision("block_count",
                               why=f"{event.reason} ({event.category}) says nothing about the address")
    if t == "deferred":
        return state, NOTHING
    if act == SUPPRESS:
        return state, Decision(SUPPRESS, "hard_bounce", "global", "system",
                               webhooks=("recipient.hard_bounced",),
                               why=f"hard bounce: {event.reason} ({event.status or 'no status'}) by rule {event.rule}")
    new = _add_day(state, event.occurred_at.date(), params)
    if new.count >= params.soft_bounce_threshold:
        expires = (event.occurred_at + timedelta(days=params.soft_suppression_days)
                   if params.soft_suppression_days else None)
        return EMPTY, Decision(SUPPRESS, "soft_bounce_threshold", "global", "system", expires,
                               webhooks=("recipient.soft_bounced",),
                               why=(f"{new.count} days with soft bounces within "
                                    f"{params.soft_bounce_window_days} days (last: {event.reason})"))
    return new, Decision("soft_count", webhooks=("recipient.soft_bounced",),
                         why=f"soft bounce {new.count}/{params.soft_bounce_threshold}: {event.reason}")
