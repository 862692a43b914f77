"""What a remote reply does to a recipient and to its queue: the backoff decision.

Domain layer: pure; stdlib and bounceproc.domain (classify, reply_patterns).
In: one reply (code, enhanced status, text, SMTP stage), the queue's `smtp-pattern-list`, and
the classification engine that reads bounces. Out: a ReplyVerdict: the recipient's outcome
(deliver / bounce / defer), the queue's mode change, a queue action, and the classification
the accounting records carry.

Order, as in PowerMTA: the operator's `smtp-pattern-list` first (first match wins); only when
no pattern matches does the engine decide. Every 4xx / 5xx reply (and every local failure that
has a status) is classified. A reply whose reason says the sending IP or domain is being
blocked, rate-limited or distrusted (BACKOFF_REASONS) puts the queue into backoff; such a
reply never bounces the *recipient*, even as a 5xx: the recipient is retried until
`bounce-after` (PowerMTA treats blocks so), and its records carry the block's category, which
the policy (rules/actions.toml) never suppresses for.

Leaving backoff (`should_leave_backoff`): `backoff-to-normal-after T` counts from the last reply
that put or kept the queue in backoff (a receiver still refusing keeps us slow), and
`backoff-to-normal-after-delivery yes` leaves at the first delivery.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bounceproc.domain.classify import Classification, classify as default_classify
from bounceproc.domain.mta.reply_patterns import ReplyPattern, first_match

# taxonomy.md reasons that are a verdict on our sending IP / domain, not on the recipient.
BACKOFF_REASONS = frozenset({"blocked", "speeding", "toomanyconn", "badreputation", "spamdetected",
                             "policyviolation", "authfailure", "requireptr"})

DELIVER, BOUNCE, DEFER = "deliver", "bounce", "defer"


@dataclass(frozen=True)
class ReplyVerdict:
    outcome: str                  # DELIVER | BOUNCE | DEFER for the recipient ("" for queue-level)
    mode: str = ""                # "backoff" | "normal" | "" (no change)
    queue_action: str = ""        # "skip-mx" | "bounce-queue" | "defer-queue" | ""
    reason: str = ""              # taxonomy reason of the reply ("" for 2xx)
    category: str = ""            # PowerMTA bounceCat for the records
    rule: str = ""                # classification rule id
    cause: str = ""               # why, in words: the pattern or the reason

    @property
    def enters_backoff(self) -> bool:
        return self.mode == "backoff"


def default_outcome(code: int, status: str = "") -> str:
    """By the reply code alone: 2xx delivered, 5xx bounced, 4xx / local failures retried."""
    if 200 <= code < 300:
        return DELIVER
    if code >= 500 or (code == 0 and status.startswith("5")):
        return BOUNCE
    return DEFER


def judge_reply(code: int, status: str, text: str, stage: str = "", *,
                patterns: Sequence[ReplyPattern] = (), queue_level: bool = False,
                classify: Callable[..., Classification] = default_classify) -> ReplyVerdict:
    """The verdict on one reply. `queue_level` for failures without a recipient (connect, greeting)."""
    outcome = "" if queue_level else default_outcome(code, status)
    if outcome == DELIVER:
        return ReplyVerdict(DELIVER, category="success")
    c = classify(status, str(code) if code else "", text)
    matched = first_match(patterns, text) if patterns else None
    if matched is not None:
        if matched.bounce_rcpt and outcome == DEFER and stage == "rcpt":
            outcome = BOUNCE
        if matched.queue_action in ("defer-queue", "skip-mx") and outcome:
            outcome = DEFER
        if matched.queue_action == "bounce-queue" and outcome:
            outcome = BOUNCE
        return ReplyVerdict(outcome, matched.mode, matched.queue_action, c.reason, c.category, c.rule,
                            f"pattern {matched.describe()}" + (f" at {matched.where}" if matched.where else ""))
    if c.reason in BACKOFF_REASONS:
        return ReplyVerdict(DEFER if outcome else "", "backoff", "", c.reason, c.category, c.rule,
                            f"{c.reason} ({c.category}) by rule {c.rule}")
    return ReplyVerdict(outcome, "", "", c.reason, c.category, c.rule, f"{c.reason} by rule {c.rule}")


@dataclass(frozen=True)
class BackoffExit:
    """`backoff-to-normal-after` (None = never) and `backoff-to-normal-after-delivery`."""
    after: float | None = None
    after_delivery: bool = False


def should_leave_backoff(last_block_at: float, now: float, delivered: bool, rule: BackoffExit) -> bool:
    """True when a queue in backoff returns to normal (see the module docstring)."""
    if delivered and rule.after_delivery:
        return True
    return rule.after is not None and now - last_block_at >= rule.after
