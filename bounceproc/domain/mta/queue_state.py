"""The state machine of one delivery queue (destination domain / virtual MTA).

Domain layer: pure; the clock is an argument. In: a QueueState and what happened (a queue-level
failure such as no connection / DNS failure, a delivery, an operator or a reply pattern setting
the mode). Out: the next QueueState, and the settings that apply in its mode.

Modes (`powermta.md` §3): `normal`; `backoff` (the `backoff-*` directives replace their normal
counterparts: `backoff-max-msg-rate` for `max-msg-rate`, `backoff-retry-after` for
`retry-after`, ...); `paused` (no connections at all until resumed).
A queue-level failure holds the whole queue until `retry_at`, on the retry-after schedule.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import Enum

from bounceproc.domain.mta.config import DomainSettings
from bounceproc.domain.mta.schedule import retry_delay


class QueueMode(str, Enum):
    NORMAL = "normal"
    BACKOFF = "backoff"
    PAUSED = "paused"


@dataclass(frozen=True)
class QueueState:
    mode: QueueMode = QueueMode.NORMAL
    mode_since: float = 0.0
    failures: int = 0             # consecutive queue-level failures
    retry_at: float = 0.0         # no new connection before this
    last_error: str = ""

    def can_connect(self, now: float) -> bool:
        return self.mode is not QueueMode.PAUSED and now >= self.retry_at


def after_queue_failure(state: QueueState, error: str, now: float, settings: DomainSettings) -> QueueState:
    failures = state.failures + 1
    return dataclasses.replace(state, failures=failures, last_error=error,
                               retry_at=now + retry_delay(failures, settings.retry_after))


def after_delivery(state: QueueState) -> QueueState:
    if state.failures == 0 and state.retry_at == 0.0:
        return state
    return dataclasses.replace(state, failures=0, retry_at=0.0)


def with_mode(state: QueueState, mode: QueueMode, now: float) -> QueueState:
    if state.mode is mode:
        return state
    return dataclasses.replace(state, mode=mode, mode_since=now)


def settings_in_mode(settings: DomainSettings, mode: QueueMode) -> DomainSettings:
    """In backoff, each `backoff_<field>` extension value replaces `<field>`."""
    if mode is not QueueMode.BACKOFF:
        return settings
    fields = {f.name for f in dataclasses.fields(DomainSettings)}
    repl = dict(BACKOFF_DEFAULTS)
    repl.update({k[8:]: v for k, v in settings.extra if k.startswith("backoff_") and k[8:] in fields})
    return dataclasses.replace(settings, **repl)


# PowerMTA's defaults for the backoff set (`powermta.md` §3): backoff-retry-after 1h.
BACKOFF_DEFAULTS = {"retry_after": (3600.0,)}
