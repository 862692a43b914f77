"""Backoff from classification: the reply judge and observer the engine calls for every reply.

Adapter layer: holds per-queue memory (when the last block was seen) and calls the pure rules in
bounceproc.domain.mta.backoff (smtp-pattern-list first, then the classification engine) and
.queue_state. In: replies, queue states, the clock. Out: outcome overrides and categories
(judge), new queue states (on_reply), and a `domain.blocked` notice when a queue enters backoff.

- A block (BACKOFF_REASONS, or a pattern's `mode=backoff`) puts the queue in backoff: the
  domain's `backoff-*` settings apply (queue_state.settings_in_mode); its recipient is retried,
  never bounced, until `bounce-after`.
- `mode=normal` patterns, `backoff-to-normal-after T` (from the last block) and
  `backoff-to-normal-after-delivery yes` return it to normal. A paused queue stays paused.
- `defer-queue` holds the whole queue until its next retry step (like a queue-level failure).
"""
from __future__ import annotations

import logging
from collections.abc import Callable

from bounceproc.domain.mta.backoff import BackoffExit, ReplyVerdict, judge_reply, should_leave_backoff
from bounceproc.domain.mta.config import DomainSettings, MtaConfig
from bounceproc.domain.mta.queue_state import QueueMode, QueueState, after_queue_failure, with_mode
from bounceproc.mta.hooks import QueueKey, Reply, Verdict

log = logging.getLogger("bounceproc.mta")

Blocked = Callable[[QueueKey, Reply, ReplyVerdict, float], None]


class ReplyPolicy:
    """ReplyJudge and ReplyObserver (bounceproc.mta.hooks) in one."""

    def __init__(self, config: Callable[[], MtaConfig], on_blocked: Blocked | None = None) -> None:
        self.config = config
        self.on_blocked = on_blocked
        self.last_block: dict[QueueKey, float] = {}

    def _settings(self, queue: QueueKey) -> DomainSettings:
        return self.config().effective(queue.domain, queue.vmta or None, queue.pool or None)

    def verdict(self, queue: QueueKey, reply: Reply, settings: DomainSettings | None = None) -> ReplyVerdict:
        s = settings or self._settings(queue)
        patterns = self.config().pattern_lists.get(s.get("smtp_pattern_list") or "", ())
        return judge_reply(reply.code, reply.status, reply.text, reply.stage, patterns=patterns,
                           queue_level=not reply.rcpt)

    def judge(self, queue: QueueKey, reply: Reply, settings: DomainSettings) -> Verdict | None:
        if 200 <= reply.code < 300:
            return None
        v = self.verdict(queue, reply, settings)
        action = v.queue_action if v.queue_action in ("bounce-queue", "skip-mx") else ""
        return Verdict(v.outcome, v.category, action)

    def on_reply(self, queue: QueueKey, reply: Reply, state: QueueState, now: float) -> QueueState | None:
        s = self._settings(queue)
        delivered = 200 <= reply.code < 300
        v = None if delivered else self.verdict(queue, reply, s)
        new = state
        if v is not None and v.queue_action == "defer-queue":
            new = after_queue_failure(new, reply.text, now, s)
        if new.mode is QueueMode.PAUSED:
            return new if new is not state else None
        if v is not None and v.mode == "backoff":
            self.last_block[queue] = now
            if new.mode is not QueueMode.BACKOFF:
                new = with_mode(new, QueueMode.BACKOFF, now)
                log.warning("queue %s: backoff: %s (%s)", queue, reply.text, v.cause)
                if self.on_blocked is not None:
                    self.on_blocked(queue, reply, v, now)
        elif v is not None and v.mode == "normal":
            new = with_mode(new, QueueMode.NORMAL, now)
        elif new.mode is QueueMode.BACKOFF:
            rule = BackoffExit(s.get("backoff_to_normal_after"), bool(s.get("backoff_to_normal_after_delivery")))
            if should_leave_backoff(self.last_block.get(queue, new.mode_since), now, delivered, rule):
                new = with_mode(new, QueueMode.NORMAL, now)
        return new if new is not state else None
