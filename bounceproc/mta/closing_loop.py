"""Wire part 2 into the MTA: the hooks that close the loop with the rest of bounceproc.

Adapter layer (wiring only). In: bounceproc's settings and a way to reach the running engine.
Out: Hooks(filters=[suppressions], preparers=[VERP, List-Unsubscribe, DKIM], judges and
observers=[backoff policy]) plus the Activity log they share; `domain.blocked` notices go to the
webhook outbox. See docs/sending-core.md, "Closing the loop".
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone

from bounceproc.domain.parse.verp import for_settings
from bounceproc.mta.activity import Activity
from bounceproc.mta.hooks import Hooks
from bounceproc.mta.outgoing_preparer import OutgoingPreparer
from bounceproc.mta.reply_policy import ReplyPolicy
from bounceproc.mta.suppression_cache import SuppressionCache, SuppressionFilter, sql_fetch

log = logging.getLogger("bounceproc.mta")


@dataclass
class LoopParts:
    hooks: Hooks
    activity: Activity
    suppressions: SuppressionCache | None
    preparer: OutgoingPreparer
    policy: ReplyPolicy

    def counters(self) -> dict:
        """Part 2's counters for `mta show status` and /metrics."""
        c = {"dkim_signed": self.preparer.signed, "dkim_errors": self.preparer.unsigned_errors,
             "skipped_suppressed": self.activity.totals.get("skipped", 0),
             "backoff_entered": self.activity.totals.get("backoff", 0)}
        if self.suppressions is not None:
            c["suppression_lookups"] = self.suppressions.lookups
        return c


def build_hooks(settings, mta, *, check_suppressions: bool = True) -> LoopParts:
    """`mta()` returns the running engine (it exists only once the service has started)."""
    activity = Activity()
    from bounceproc import bootstrap
    engine = bootstrap.engine(settings)

    def blocked(queue, reply, verdict, now):
        activity.add("backoff", str(queue), "", f"{reply.text} ({verdict.cause})", now)
        _notify_blocked(engine, queue, reply, verdict, now)

    policy = ReplyPolicy(lambda: mta().config, on_blocked=blocked)
    preparer = OutgoingPreparer(lambda: mta().config,
                                verp_format=for_settings(settings.verp_separator, settings.verp_prefix),
                                public_url=settings.public_url, secret=settings.secret())
    cache = None
    hooks = Hooks(preparers=[preparer], observers=[policy], judges=[policy])
    if check_suppressions:
        cache = SuppressionCache(sql_fetch(engine), lambda: mta().clock.now(),
                                 ttl=lambda: mta().config.suppression_cache_ttl)
        sfilter = SuppressionFilter(cache, mta, activity)
        hooks.filters.append(sfilter)
        hooks.observers.append(sfilter)
    return LoopParts(hooks, activity, cache, preparer, policy)


def _notify_blocked(engine, queue, reply, verdict, now: float) -> None:
    """A `domain.blocked` webhook (outbox row) for a queue entering backoff; best effort, in a thread."""
    import threading

    def write():
        from bounceproc.storage import suppression_store as store
        at = datetime.fromtimestamp(now, timezone.utc)
        data = {"recipient_domain": queue.domain, "vmta": queue.vmta, "queue": str(queue), "mode": "backoff",
                "reason": verdict.reason, "category": verdict.category, "rule": verdict.rule,
                "cause": verdict.cause, "diagnostic": reply.text[:1000], "remote_mta": reply.remote_host,
                "source": "mta"}
        try:
            with engine.begin() as conn:
                store.insert_outbox(conn, [store.outbox_row(store.new_webhook_id(), "domain.blocked", at, data,
                                                            datetime.now(timezone.utc))])
        except Exception:  # noqa: BLE001 - a notice must never stop deliveries
            log.exception("domain.blocked notice for %s not written", queue)
    threading.Thread(target=write, name="mta-blocked-notice", daemon=True).start()
