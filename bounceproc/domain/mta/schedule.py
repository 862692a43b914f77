"""When to try a recipient again, and when to give up: `retry-after` and `bounce-after`.

Domain layer: pure; the clock is an argument. In: when the message was queued, how many attempts
failed, now, the queue's DomainSettings. Out: the time of the next attempt, or None (expired:
bounce with 4.4.7).

`retry-after` is a list of up to 30 steps; the n-th failure waits step n, the last step repeats.
The last retry is pulled in to the `bounce-after` deadline so that the final answer comes then,
not up to one step later. Counting is per recipient (PowerMTA counts per queue and resets after a
delivery; per recipient gives the same schedule to a recipient that waits alone).
"""
from __future__ import annotations

from bounceproc.domain.mta.config import DomainSettings


def retry_delay(failures: int, retry_after: tuple[float, ...]) -> float:
    """Seconds to wait after the `failures`-th failed attempt (1-based)."""
    steps = retry_after or (600.0,)
    return steps[min(max(failures, 1), len(steps)) - 1]


def expires_at(queued_at: float, settings: DomainSettings) -> float:
    return queued_at + settings.bounce_after


def next_attempt(queued_at: float, failures: int, now: float, settings: DomainSettings) -> float | None:
    """The next attempt after `failures` failed ones, or None once `bounce-after` has passed."""
    deadline = expires_at(queued_at, settings)
    if now >= deadline:
        return None
    return min(now + retry_delay(failures, settings.retry_after), deadline)
