"""When to try a webhook delivery again: the Standard Webhooks example schedule with jitter.

Domain layer: pure; stdlib only.
In: how many attempts have failed so far and a number in [0, 1) for the jitter.
Out: the delay in seconds before the next attempt, or None when the schedule is exhausted.

Delay after each failure: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h, each +-10 %
(the last attempt lands about 3 days 3.5 h after the first). A `Retry-After` given by the
receiver (429, 502, 503, 504) is honoured when it is longer than the schedule's delay, capped at
a day, so a slow receiver is not hammered but a hostile one cannot park the delivery forever.
"""
from __future__ import annotations

SCHEDULE_SECONDS: tuple[int, ...] = (5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
JITTER = 0.10
MAX_RETRY_AFTER = 86400
SLOW_DOWN_STATUSES = frozenset({429, 502, 503, 504})
DISABLE_AFTER_SECONDS = 5 * 86400   # an endpoint failing every attempt for this long is disabled


def next_delay(failed_attempts: int, rand: float, retry_after: float | None = None) -> float | None:
    """Seconds to wait after the `failed_attempts`-th failure (1-based); None = give up."""
    if failed_attempts < 1 or failed_attempts > len(SCHEDULE_SECONDS):
        return None
    base = SCHEDULE_SECONDS[failed_attempts - 1]
    delay = base * (1 - JITTER + 2 * JITTER * min(max(rand, 0.0), 1.0))
    if retry_after is not None and retry_after > delay:
        delay = min(float(retry_after), MAX_RETRY_AFTER)
    return delay


def max_attempts() -> int:
    """The first attempt plus one retry per step of the schedule."""
    return len(SCHEDULE_SECONDS) + 1


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a `Retry-After` header given as delta-seconds; HTTP dates are ignored."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None
